// Soak: the reference app under steady load for a long time (default 10 minutes, RI_SOAK_MS), on a
// cached route keyed by a path segment drawn from 1e6 distinct keys (GET /lookup/:key) while price
// writes churn the product tags those entries carry. Samples heap, RSS, event-loop delay and active
// handles once a second in the app's process (scale/soak-app.ts) and reports heap and RSS slopes
// after warm-up, the longest event-loop stall and handle growth.
//   pnpm --filter reference-app scale:soak                  (RI_SOAK_MS=600000 RI_SOAK_CONNECTIONS=16)
//   pnpm --filter reference-app scale:soak --services       on a throwaway Redis + PostgreSQL primary/replica
// Embedded defaults (PGlite, in-process cache) unless REDIS_URL / DATABASE_URL are set or --services.
import { getFreePort, startPostgres, startRedis } from '@ri/testing'
import { pathToFileURL } from 'node:url'
import { writeReport } from './chaos.js'
import { startInstance, stopInstance, waitUntil } from './fleet.js'
import { percentile, type RequestSpec, type Sample, startLoad } from './load.js'

export interface SoakSample {
  t: number
  heapUsed: number
  rss: number
  eldMaxMs: number
  eldP99Ms: number
  handles: number
  timers: number
  /** GC pause time, longest single pause, and major (mark-compact) pause time in the second. */
  gcMs?: number
  gcMaxMs?: number
  gcMajorMs?: number
  /** CPU ms the app process used in the second. */
  cpuMs?: number
  /** ms the app's main thread waited for a CPU in the second (Linux schedstat). */
  runqueueMs?: number
}

export interface SoakReport {
  durationMs: number
  requests: number
  requestsPerSecond: number
  distinctKeys: number
  writes: number
  /** Responses with no answer at all, and 5xx: both must be 0. */
  lost: number
  serverErrors: number
  /** The first 5xx answers (method, path, body) and the app's first warn/error log lines (RI_SOAK_LOG_LEVEL). */
  serverErrorExamples: string[]
  appLogTail: string[]
  p99Ms: number
  /** Least-squares slope over the samples after warm-up (the first `warmupShare` of the run), MB per minute. */
  heapSlopeMbPerMin: number
  rssSlopeMbPerMin: number
  /** RSS slope over the per-window medians (RSS has no GC sawtooth; the floor follows page-release dips). */
  rssMedianSlopeMbPerMin: number
  /** Heap after warm-up and at the end (the floor of the GC sawtooth: minimum per window of a tenth of the steady phase), MB. */
  heapStartMb: number
  heapEndMb: number
  rssEndMb: number
  /** Longest event-loop stall after startup (the first 2 s), ms (monitorEventLoopDelay, 10 ms resolution). */
  maxStallMs: number
  /** p99 over the seconds of each second's p99 delay. */
  stallP99Ms: number
  /** p99 and median over the seconds of each second's longest stall. */
  stallMaxP99Ms: number
  stallMaxP50Ms: number
  /** Seconds (after startup) whose longest stall exceeded 100 ms, and how many of them had a GC pause of at least half that stall. */
  stallSecondsOver100: number
  stallSecondsOver100WithGc: number
  /** Longest single GC pause after startup, ms; GC share of wall time, %. */
  gcMaxPauseMs: number
  gcSharePct: number
  /** Mean CPU of the app process, % of one core. */
  appCpuPct: number
  /** Mean ms per second the app's main thread waited for a CPU, overall and in the seconds with a stall over 100 ms (Linux). */
  runqueueMsPerS: number
  runqueueMsPerSInStalls: number
  /** Active handles (sockets, servers, ...; timers counted apart) after warm-up and at the end. */
  handlesStart: number
  handlesEnd: number
  handlesMax: number
  timersStart: number
  timersEnd: number
}

const MB = 2 ** 20

/** Slope of y over t (ms) by least squares, per minute. */
function slopePerMin(points: ReadonlyArray<{ t: number; y: number }>): number {
  if (points.length < 2) return 0
  const n = points.length
  const mt = points.reduce((s, p) => s + p.t, 0) / n
  const my = points.reduce((s, p) => s + p.y, 0) / n
  let num = 0
  let den = 0
  for (const p of points) {
    num += (p.t - mt) * (p.y - my)
    den += (p.t - mt) ** 2
  }
  return den === 0 ? 0 : (num / den) * 60_000
}

/** The sawtooth's floor: the minimum of each `windowMs` window (what survived the last GC). */
function floors(samples: readonly SoakSample[], key: 'heapUsed' | 'rss', windowMs: number): Array<{ t: number; y: number }> {
  const byWindow = new Map<number, { t: number; y: number }>()
  for (const s of samples) {
    const w = Math.floor(s.t / windowMs)
    const cur = byWindow.get(w)
    if (!cur || s[key] < cur.y) byWindow.set(w, { t: s.t, y: s[key] })
  }
  return [...byWindow.values()]
}

/** Median of each `windowMs` window. */
function medians(samples: readonly SoakSample[], key: 'rss', windowMs: number): Array<{ t: number; y: number }> {
  const byWindow = new Map<number, SoakSample[]>()
  for (const s of samples) {
    const w = Math.floor(s.t / windowMs)
    byWindow.set(w, [...(byWindow.get(w) ?? []), s])
  }
  return [...byWindow.values()].map((ws) => ({ t: ws[Math.floor(ws.length / 2)]!.t, y: percentile(ws.map((s) => s[key]), 50) }))
}

export async function runSoak(options: { durationMs: number; connections?: number; warmupShare?: number; env?: Record<string, string> }): Promise<{ report: SoakReport; samples: SoakSample[] }> {
  const port = await getFreePort()
  const app = await startInstance('soak', port, { ORDERS_SEED: '2000', ...options.env }, [], 'scale/soak-app.ts')
  const samples: SoakSample[] = []
  const appLog: string[] = []
  let stderr = ''
  app.child.stderr!.on('data', (c: Buffer) => {
    if (stderr.length < 4_000) stderr += c
  })
  let buf = ''
  app.child.stdout!.on('data', (c: Buffer) => {
    buf += c
    let i: number
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      if (line.startsWith('SOAK ')) samples.push(JSON.parse(line.slice(5)) as SoakSample)
      else if (/^\{.*"level":(40|50|60)/.test(line) && appLog.length < 50) appLog.push(line.slice(0, 1_000))
    }
  })
  const keys = new Set<number>()
  let writes = 0
  // xorshift: deterministic key sequence, spread over 1e6 keys.
  let x = 2463534242
  const rnd = () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 4294967296
  }
  let load: ReturnType<typeof startLoad> | undefined
  let results: Sample[] = []
  try {
    // On a real primary + replica the seed is written on the primary: reads routed to a replica
    // that has not replayed it yet fail ("relation does not exist"). Start once the replica has it.
    if ({ ...process.env, ...options.env }.DATABASE_REPLICA_URLS) {
      await waitUntil('replica has the seed', async () => (await fetch(`${app.url}/products/500`)).status === 200, 60_000)
    }
    load = startLoad(app.url, {
      concurrency: options.connections ?? 16,
      maxMs: options.durationMs,
      next: (n): RequestSpec => {
        // Addresses only as X-Forwarded-For values (the app trusts its loopback "proxy"): the per-client limits apply per address.
        const ip = `198.18.${(n >> 8) & 255}.${n & 255}`
        if (n % 20 === 19) {
          writes++
          return { path: `/products/${1 + Math.floor(rnd() * 500)}/price`, method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': ip }, body: JSON.stringify({ priceCents: 100 + Math.floor(rnd() * 10_000) }) }
        }
        const key = Math.floor(rnd() * 1_000_000)
        keys.add(key)
        return { path: `/lookup/sku-${key}`, headers: { 'x-forwarded-for': ip } }
      },
    })
    await new Promise((r) => setTimeout(r, options.durationMs))
    results = await load.stop()
    await new Promise((r) => setTimeout(r, 1_100)) // one more sample after the load
  } finally {
    await load?.stop()
    await stopInstance(app)
  }
  if (samples.length < 3) throw new Error(`soak: only ${samples.length} samples from the app:\n${app.output()}`)
  const warm = samples[samples.length - 1]!.t * (options.warmupShare ?? 0.3)
  const steady = samples.filter((s) => s.t >= warm)
  // Windows of a tenth of the steady phase (at least 5 s): long enough to contain a major GC.
  const windowMs = Math.max(5_000, (steady[steady.length - 1]!.t - steady[0]!.t) / 10)
  const heap = floors(steady, 'heapUsed', windowMs)
  const rss = floors(steady, 'rss', windowMs)
  const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d
  const afterStartup = samples.filter((s) => s.t >= 2_000)
  const over100 = afterStartup.filter((s) => s.eldMaxMs > 100)
  const report: SoakReport = {
    durationMs: options.durationMs,
    requests: results.length,
    requestsPerSecond: Math.round(results.length / (options.durationMs / 1000)),
    distinctKeys: keys.size,
    writes,
    lost: results.filter((r) => r.status === 0).length,
    serverErrors: results.filter((r) => r.status >= 500).length,
    serverErrorExamples: results.filter((r) => r.status >= 500).slice(0, 5).map((r) => `${Math.round(r.at / 1000)} s: ${r.status} ${r.error ?? ''}`),
    appLogTail: [...appLog.slice(0, 10), ...(stderr ? [`stderr: ${stderr.slice(0, 4_000)}`] : [])],
    p99Ms: round(percentile(results.map((r) => r.ms), 99), 1),
    heapSlopeMbPerMin: round(slopePerMin(heap) / MB),
    rssSlopeMbPerMin: round(slopePerMin(rss) / MB),
    rssMedianSlopeMbPerMin: round(slopePerMin(medians(steady, 'rss', windowMs)) / MB),
    heapStartMb: round(heap[0]!.y / MB, 1),
    heapEndMb: round(heap[heap.length - 1]!.y / MB, 1),
    rssEndMb: round(steady[steady.length - 1]!.rss / MB, 1),
    // Startup (Nest bootstrap, PGlite seeding) stalls by design: the first 2 s are left out.
    maxStallMs: round(Math.max(...samples.filter((s) => s.t >= 2_000).map((s) => s.eldMaxMs)), 1),
    stallP99Ms: round(percentile(samples.filter((s) => s.t >= 2_000).map((s) => s.eldP99Ms), 99), 1),
    stallMaxP99Ms: round(percentile(afterStartup.map((s) => s.eldMaxMs), 99), 1),
    stallMaxP50Ms: round(percentile(afterStartup.map((s) => s.eldMaxMs), 50), 1),
    stallSecondsOver100: over100.length,
    stallSecondsOver100WithGc: over100.filter((s) => (s.gcMaxMs ?? 0) >= s.eldMaxMs / 2).length,
    gcMaxPauseMs: round(Math.max(0, ...afterStartup.map((s) => s.gcMaxMs ?? 0)), 1),
    gcSharePct: round((afterStartup.reduce((n, s) => n + (s.gcMs ?? 0), 0) / Math.max(1, afterStartup.length * 1000)) * 100, 1),
    appCpuPct: round((afterStartup.reduce((n, s) => n + (s.cpuMs ?? 0), 0) / Math.max(1, afterStartup.length * 1000)) * 100, 0),
    runqueueMsPerS: round(afterStartup.reduce((n, s) => n + (s.runqueueMs ?? 0), 0) / Math.max(1, afterStartup.length), 0),
    runqueueMsPerSInStalls: round(over100.reduce((n, s) => n + (s.runqueueMs ?? 0), 0) / Math.max(1, over100.length), 0),
    handlesStart: steady[0]!.handles,
    handlesEnd: steady[steady.length - 1]!.handles,
    handlesMax: Math.max(...steady.map((s) => s.handles)),
    timersStart: steady[0]!.timers,
    timersEnd: steady[steady.length - 1]!.timers,
  }
  return { report, samples }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const durationMs = Number(process.env.RI_SOAK_MS ?? 600_000)
  const services = process.argv.includes('--services')
  const [redis, pg] = services ? await Promise.all([startRedis(), startPostgres({ replicas: 1 })]) : []
  const env: Record<string, string> = redis && pg ? { REDIS_URL: redis.url, DATABASE_URL: pg.primary.url, DATABASE_REPLICA_URLS: pg.replicas[0]!.url } : {}
  console.log(`soak: ${Math.round(durationMs / 1000)} s, ${process.env.RI_SOAK_CONNECTIONS ?? 16} connections, 1e6 keys on GET /lookup/:key, 5% price writes${services ? ', on Redis + PostgreSQL (primary + replica)' : ''}`)
  try {
    const { report, samples } = await runSoak({ durationMs, connections: Number(process.env.RI_SOAK_CONNECTIONS ?? 16), env })
    for (const [k, v] of Object.entries(report)) console.log(`  ${k.padEnd(26)} ${v}`)
    console.log(`JSON: ${writeReport(services ? 'soak-services' : 'soak', { report, samples })}`)
    process.exitCode = report.lost > 0 || report.serverErrors > 0 ? 1 : 0
  } finally {
    await Promise.allSettled([redis?.stop(), pg?.stop()])
  }
}
