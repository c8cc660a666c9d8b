import cluster, { type Worker } from 'node:cluster'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { createMetrics } from './index.js'

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'testing/fixtures/cluster-worker.ts')

async function forkWorkers(count: number, env: Record<string, string> = {}): Promise<Worker[]> {
  cluster.setupPrimary({ exec: WORKER, execArgv: ['--import', 'tsx'], silent: false })
  const workers = Array.from({ length: count }, () => cluster.fork(env))
  await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
    w.once('message', (m) => (m === 'ready' ? resolve() : undefined))
    w.once('exit', (code) => reject(new Error(`worker exited with ${code}`)))
  })))
  return workers
}

describe('Node cluster aggregation', () => {
  let workers: Worker[] = []
  afterEach(async () => {
    await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
      if (w.isDead()) return resolve()
      w.once('exit', () => resolve())
      w.kill()
    })))
    workers = []
  })

  it('the primary serves the sum of its workers', async () => {
    const metrics = createMetrics({ cluster: { timeout: '10s' }, defaultMetrics: false })
    workers = await forkWorkers(2)
    const res = await metrics.handler()('application/openmetrics-text')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toContain('text/plain; version=0.0.4')
    expect(res.body).toContain('http_server_request_duration_seconds_count{method="GET",route="/jobs/:id",status_code="200"} 2')
    expect(res.body).toContain('# TYPE ri_metrics_cluster_scrape_failures_total counter')
  }, 30_000)

  it('a worker that never answers costs a timeout, a 503 and a failure count, not a hang', async () => {
    const metrics = createMetrics({ cluster: { timeout: 300 }, defaultMetrics: false })
    workers = await forkWorkers(1, { RI_SILENT_WORKER: '1' })
    const started = Date.now()
    const res = await metrics.handler()()
    expect(Date.now() - started).toBeLessThan(3000)
    expect(res.status).toBe(503)
    expect(res.body).toContain('ri_metrics_cluster_scrape_failures_total{reason="timeout"} 1')
  }, 30_000)
})
