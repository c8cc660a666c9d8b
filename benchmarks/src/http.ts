import autocannon from 'autocannon'

/** One autocannon run; returns req/s and latency percentiles (ms). */
export async function autocannonRun(url: string, seconds: number, options: { connections?: number; pipelining?: number } = {}) {
  const result = await autocannon({ url, duration: seconds, connections: options.connections ?? 50, pipelining: options.pipelining ?? 1 })
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  return { opsPerSec: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99 }
}
