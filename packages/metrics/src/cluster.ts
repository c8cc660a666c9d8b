import cluster from 'node:cluster'
import { AggregatorRegistry, Counter, Registry } from 'prom-client'
import { PROMETHEUS_CONTENT_TYPE } from './exposition.js'

export interface ClusterScraper {
  /** True in the cluster primary: `scrape()` answers with the workers' aggregated metrics. */
  readonly isPrimary: boolean
  scrape(): Promise<{ status: number; headers: Record<string, string>; body: string }>
}

// prom-client keeps the list of registries a worker reports in module state; we keep ours
// so several createMetrics() in one worker all report.
const workerRegistries = new Set<Registry<any>>()
let aggregator: AggregatorRegistry<any> | undefined

/**
 * Node `cluster` aggregation on prom-client's AggregatorRegistry. In a worker, the registry is
 * added to the set the worker reports when the primary asks. In the primary, `scrape()` asks
 * every worker, sums their metrics, and gives up after `timeoutMs`: the failure is counted in
 * `ri_metrics_cluster_scrape_failures_total` and answered with 503 (so `up` drops), never
 * left hanging. The aggregated output is always the Prometheus text format (prom-client
 * aggregates into a Prometheus registry; exemplars do not survive aggregation).
 */
export function createClusterScraper(registry: Registry<any>, prefix: string, timeoutMs: number): ClusterScraper {
  aggregator ??= new AggregatorRegistry()
  if (cluster.isWorker) {
    workerRegistries.add(registry)
    AggregatorRegistry.setRegistries([...workerRegistries])
    return { isPrimary: false, scrape: () => Promise.reject(new Error('not the cluster primary')) }
  }
  const own = new Registry()
  const failures = new Counter({
    name: `${prefix}ri_metrics_cluster_scrape_failures_total`,
    help: 'Cluster scrapes that failed or timed out waiting for workers.',
    labelNames: ['reason'],
    registers: [own],
  })
  const headers = { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' }
  return {
    isPrimary: true,
    async scrape() {
      let timer: NodeJS.Timeout | undefined
      const pending = aggregator!.clusterMetrics()
      // clusterMetrics() rejects on its own (fixed 5 s) timeout too; never leave that unhandled.
      pending.catch(() => {})
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs)
        timer.unref()
      })
      let result: string | 'timeout'
      try {
        result = await Promise.race([pending, timeout])
      } catch (error) {
        failures.inc({ reason: 'error' })
        return { status: 503, headers, body: `${await own.metrics()}# cluster scrape failed: ${oneLine(error)}\n` }
      } finally {
        clearTimeout(timer)
      }
      if (result === 'timeout') {
        failures.inc({ reason: 'timeout' })
        return { status: 503, headers, body: `${await own.metrics()}# cluster scrape timed out after ${timeoutMs} ms\n` }
      }
      const ownText = await own.metrics()
      return { status: 200, headers, body: result.endsWith('\n') || result === '' ? result + ownText : `${result}\n${ownText}` }
    },
  }
}

function oneLine(error: unknown): string {
  return String(error instanceof Error ? error.message : error).replace(/[\r\n]+/g, ' ').slice(0, 200)
}
