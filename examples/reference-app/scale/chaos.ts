// Chaos under load: three reference-app instances behind scale/lb.ts on one throwaway Redis and a
// PostgreSQL primary + replica; while a load loop runs through the balancer, one fault at a time:
// Redis killed and restarted, the replica stopped and started, the primary paused (SIGSTOP) and
// resumed, the cache bus's pub/sub connections killed. Per fault: error rate and p99 during and
// after, time to recover, stale reads once recovered (must be 0), lost requests (must be 0).
//   pnpm --filter reference-app scale:chaos            (RI_CHAOS_FAULT_MS=2000 RI_CHAOS_CONNECTIONS=16)
// Prints a table and writes it as JSON under the OS temp dir.
import { Redis } from 'ioredis'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { type Fleet, startFleet, waitUntil } from './fleet.js'
import { recoveredAfter, type Sample, startLoad, windowStats } from './load.js'

export interface ChaosRow {
  fault: string
  requestsDuring: number
  errorRateDuring: number
  p99DuringMs: number
  /** ms from the fault being cleared until requests succeeded again (1 s without a 5xx). */
  recoveryMs: number | null
  /** ms from the fault being cleared until every instance was ready with its cache bus connected. */
  instancesReadyMs: number
  requestsAfter: number
  errorRateAfter: number
  p99AfterMs: number
  /** ms until a write through one instance was read back by every instance. */
  invalidationConvergedMs: number | null
  /** Reads of the old value once every instance had converged (or never converging): must be 0. */
  staleReads: number
  /** Requests with no HTTP answer at all: must be 0. */
  lost: number
}

export interface ChaosOptions {
  faultMs?: number
  connections?: number
  /** Length of the "after" window (default 2 000 ms). */
  afterMs?: number
  /** Only these faults (default all). */
  faults?: string[]
}

interface Fault {
  name: string
  inject(fleet: Fleet): Promise<void>
  clear(fleet: Fleet): Promise<void>
}

export const FAULTS: readonly Fault[] = [
  { name: 'redis killed + restarted', inject: (f) => f.redis.kill(), clear: (f) => f.redis.restart() },
  { name: 'replica stopped + started', inject: (f) => f.pg.replicas[0]!.stop(), clear: (f) => f.pg.replicas[0]!.restart() },
  { name: 'primary paused (SIGSTOP/SIGCONT)', inject: async (f) => f.pg.primary.pause(), clear: async (f) => f.pg.primary.resume() },
  {
    name: 'bus disconnected (CLIENT KILL TYPE pubsub)',
    async inject(f) {
      const admin = new Redis(f.redis.url, { maxRetriesPerRequest: 1, lazyConnect: true })
      await admin.connect()
      try {
        await admin.client('KILL', 'TYPE', 'pubsub')
      } finally {
        admin.disconnect()
      }
    },
    clear: async () => {},
  },
]

const metricsText = async (url: string) => (await fetch(`${url}/metrics`)).text()
const busUp = async (url: string) => /^ri_cache_bus_connected\{[^}]*\} 1$/m.test(await metricsText(url))

async function priceOf(url: string, id: number): Promise<number> {
  const res = await fetch(`${url}/products/${id}`)
  if (res.status !== 200) throw new Error(`GET ${url}/products/${id}: ${res.status}`)
  return ((await res.json()) as { priceCents: number }).priceCents
}

/**
 * A write through one instance, then every instance's next reads: how long until all of them show
 * it, and how many reads of the old value once they had (a cache that un-purges, an L2 refilled
 * from a lagging replica ...).
 */
async function invalidationCheck(fleet: Fleet, id: number, via: number): Promise<{ convergedMs: number | null; stale: number }> {
  // Warm every instance's cache with the current value first, so the write has something to purge.
  for (const i of fleet.instances) for (let k = 0; k < 2; k++) await priceOf(i.url, id)
  const before = await priceOf(fleet.instances[0]!.url, id)
  const want = before + 1
  const write = await fetch(`${fleet.instances[via]!.url}/products/${id}/price`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': `198.51.100.${id % 250}` },
    body: JSON.stringify({ priceCents: want }),
  })
  if (write.status !== 200) throw new Error(`price write: ${write.status} ${await write.text()}`)
  const started = Date.now()
  let convergedMs: number | null = null
  try {
    await waitUntil(`every instance reads product ${id} at ${want}`, async () => {
      for (const i of fleet.instances) if ((await priceOf(i.url, id)) !== want) return false
      return true
    }, 10_000, 50)
    convergedMs = Date.now() - started
  } catch {
    const seen = await Promise.all(fleet.instances.map(async (i) => {
      const res = await fetch(`${i.url}/products/${id}`)
      return `${i.name}: ${((await res.json()) as { priceCents: number }).priceCents} (x-cache ${res.headers.get('x-cache')})`
    }))
    console.error(`invalidation of product ${id} (want ${want}, written via ${fleet.instances[via]!.name}) did not converge in 10 s: ${seen.join(', ')}`)
    return { convergedMs: null, stale: fleet.instances.length }
  }
  let stale = 0
  for (let round = 0; round < 3; round++) for (const i of fleet.instances) if ((await priceOf(i.url, id)) !== want) stale++
  return { convergedMs, stale }
}

export async function runChaos(fleet: Fleet, options: ChaosOptions = {}): Promise<{ rows: ChaosRow[]; samples: Sample[] }> {
  const faultMs = options.faultMs ?? 2_000
  const afterMs = options.afterMs ?? 2_000
  const faults = FAULTS.filter((f) => !options.faults || options.faults.includes(f.name))
  // Reads of 500 products and a few listings, from 250 client addresses (the per-ip limit is 100/s).
  const load = startLoad(fleet.lb.url, {
    concurrency: options.connections ?? 16,
    maxMs: faults.length * (faultMs + afterMs + 40_000) + 60_000,
    next: (n) => ({
      path: n % 5 === 0 ? `/products?limit=5&offset=${n % 100}` : `/products/${1 + ((n * 7919) % 500)}`,
      headers: { 'x-forwarded-for': `203.0.113.${n % 250}` },
    }),
  })
  const rows: ChaosRow[] = []
  try {
    await new Promise((r) => setTimeout(r, 1_000)) // baseline traffic, warm caches
    for (const [k, fault] of faults.entries()) {
      const injectedAt = load.now()
      await fault.inject(fleet)
      await new Promise((r) => setTimeout(r, faultMs))
      await fault.clear(fleet)
      const clearedAt = load.now()
      const readyStart = Date.now()
      let notYet: string[] = []
      await waitUntil(`after "${fault.name}": every instance ready with its bus connected`, async () => {
        notYet = []
        for (const i of fleet.instances) {
          const ok = await fetch(`${i.url}/health/ready`).then(async (r) => r.status === 200 && (await busUp(i.url)), () => false)
          if (!ok) notYet.push(`${i.name} (exit code ${i.child.exitCode}): ${i.output().slice(-300)}`)
        }
        return notYet.length === 0
      }, 60_000, 100).catch((error: Error) => {
        throw new Error(`${error.message}; not ready: ${notYet.join('; ')}`)
      })
      const instancesReadyMs = Date.now() - readyStart
      const afterFrom = load.now()
      await new Promise((r) => setTimeout(r, afterMs))
      const check = await invalidationCheck(fleet, 20 + k, k % fleet.instances.length)
      const during = windowStats(load.samples, injectedAt, clearedAt)
      const after = windowStats(load.samples, afterFrom, afterFrom + afterMs)
      const recovery = recoveredAfter(load.samples, clearedAt, load.now())
      rows.push({
        fault: fault.name,
        requestsDuring: during.requests,
        errorRateDuring: round(during.errorRate),
        p99DuringMs: during.p99Ms,
        recoveryMs: recovery ?? null,
        instancesReadyMs,
        requestsAfter: after.requests,
        errorRateAfter: round(after.errorRate),
        p99AfterMs: after.p99Ms,
        invalidationConvergedMs: check.convergedMs,
        staleReads: check.stale,
        lost: windowStats(load.samples, injectedAt, load.now()).lost,
      })
    }
  } finally {
    await load.stop()
  }
  return { rows, samples: load.samples }
}

const round = (x: number) => Math.round(x * 10_000) / 10_000

export function formatTable(rows: readonly ChaosRow[]): string {
  const cols: Array<[string, (r: ChaosRow) => string]> = [
    ['fault', (r) => r.fault],
    ['req during', (r) => String(r.requestsDuring)],
    ['err% during', (r) => (r.errorRateDuring * 100).toFixed(2)],
    ['p99 during ms', (r) => String(r.p99DuringMs)],
    ['recovery ms', (r) => String(r.recoveryMs ?? 'never')],
    ['ready ms', (r) => String(r.instancesReadyMs)],
    ['err% after', (r) => (r.errorRateAfter * 100).toFixed(2)],
    ['p99 after ms', (r) => String(r.p99AfterMs)],
    ['inval. ms', (r) => String(r.invalidationConvergedMs ?? 'never')],
    ['stale', (r) => String(r.staleReads)],
    ['lost', (r) => String(r.lost)],
  ]
  const cells = [cols.map(([h]) => h), ...rows.map((r) => cols.map(([, f]) => f(r)))]
  const widths = cols.map((_, c) => Math.max(...cells.map((row) => row[c]!.length)))
  return cells.map((row, i) => {
    const line = row.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join(' | ')
    return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}` : line
  }).join('\n')
}

export function writeReport(name: string, data: unknown): string {
  const file = join(tmpdir(), `ri-${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(data, null, 2))
  return file
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const fleet = await startFleet()
  try {
    console.log(`3 instances behind ${fleet.lb.url}; Redis ${fleet.redis.url}; PostgreSQL ${fleet.pg.primary.url} + replica`)
    const { rows, samples } = await runChaos(fleet, {
      faultMs: Number(process.env.RI_CHAOS_FAULT_MS ?? 2_000),
      faults: process.env.RI_CHAOS_FAULTS ? process.env.RI_CHAOS_FAULTS.split(',').map((f) => FAULTS.find((x) => x.name.startsWith(f.trim()))?.name ?? f) : undefined,
      connections: Number(process.env.RI_CHAOS_CONNECTIONS ?? 16),
    })
    console.log(formatTable(rows))
    console.log(`requests: ${samples.length}, balancer: ${JSON.stringify({ ...fleet.lb.stats, perUpstream: undefined })}`)
    console.log(`JSON: ${writeReport('chaos', { rows, balancer: fleet.lb.stats, totalRequests: samples.length })}`)
    process.exitCode = rows.some((r) => r.lost > 0 || r.staleReads > 0 || r.recoveryMs === null) ? 1 : 0
  } finally {
    await fleet.stop()
  }
}
