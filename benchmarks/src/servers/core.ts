import { createServer } from 'node:http'
import { createPipeline } from '@ri/core'
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

/** `riPipeline` with @ri/metrics + @ri/slowlog (to /dev/null), as in metrics-slowlog.bench.ts. */
export async function riMetricsSlowlog() {
  const { createMetrics } = await import('@ri/metrics')
  const { createSlowLog } = await import('@ri/slowlog')
  const { pino } = await import('pino')
  const metrics = createMetrics({ defaultMetrics: false })
  const slowlog = createSlowLog({ logger: pino(pino.destination({ dest: '/dev/null', sync: false })) as never, thresholdMs: 500 })
  metrics.observe(slowlog.events)
  return createServer(
    createNodeHandler(createPipeline([metrics.feature(), slowlog.feature()]), [
      { method: 'GET', path: '/users/:id', handler: (_q, _s, ctx) => ctx.json(200, { id: 1, name: 'Ada' }) },
    ]),
  )
}
