import { createServer } from 'node:http'
import { createPipeline, type Feature } from '@ri/core'
import { createNodeHandler } from '@ri/core/node'

// Both handlers serialise the same object per request: the comparison is the pipeline's cost,
// not JSON.stringify's.
export function bare() {
  return createServer((_req, res) => {
    res.setHeader('content-type', 'application/json; charset=utf-8')
    res.end(JSON.stringify({ id: 1, name: 'Ada' }))
  })
}

export function riPipeline() {
  return createServer(
    createNodeHandler(createPipeline([]), [{ method: 'GET', path: '/users/:id', handler: (_q, _s, ctx) => ctx.json(200, { id: 1, name: 'Ada' }) }]),
  )
}

/**
 * The features metrics-slowlog.bench.ts measures: @ri/metrics (no default process metrics) and
 * @ri/slowlog (threshold 500 ms, to /dev/null through pino's asynchronous destination).
 */
export async function metricsAndSlowlog(): Promise<Feature[]> {
  const { createMetrics } = await import('@ri/metrics')
  const { createSlowLog } = await import('@ri/slowlog')
  const { pino } = await import('pino')
  const metrics = createMetrics({ defaultMetrics: false })
  const slowlog = createSlowLog({ logger: pino(pino.destination({ dest: '/dev/null', sync: false })) as never, thresholdMs: 500 })
  metrics.observe(slowlog.events)
  return [metrics.feature(), slowlog.feature()]
}

/** `riPipeline` with `metricsAndSlowlog()`. */
export async function riMetricsSlowlog() {
  return createServer(
    createNodeHandler(createPipeline(await metricsAndSlowlog()), [
      { method: 'GET', path: '/users/:id', handler: (_q, _s, ctx) => ctx.json(200, { id: 1, name: 'Ada' }) },
    ]),
  )
}
