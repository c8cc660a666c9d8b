// Chaos under load: three reference-app instances behind scale/lb.ts on one throwaway Redis and a
// PostgreSQL primary + replica; while a load loop runs through the balancer, one fault at a time:
// Redis killed and restarted, the replica stopped and started, the primary paused (SIGSTOP) and
// resumed, the cache bus's pub/sub connections killed. Then the same three instances on a 3-master
// Redis Cluster with one replica per master: one master SIGKILLed (its replica takes over) and
// restarted (it rejoins as a replica), and the bus disconnected on every node. Per fault: error
// rate and p99 during and after, time to recover, stale reads once recovered (must be 0), lost
// requests (must be 0).
//   pnpm --filter reference-app scale:chaos              both fleets (RI_CHAOS_FAULT_MS=2000 RI_CHAOS_CONNECTIONS=16)
//   pnpm --filter reference-app scale:chaos --single     one Redis only
//   pnpm --filter reference-app scale:chaos --cluster    Redis Cluster only (RI_CHAOS_CLUSTER_REPLICAS=0: masters without replicas)
// Prints a table and writes it as JSON under the OS temp dir.
import type { RedisServer } from '@ri/testing'
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
  /**
   * A product written just before the fault and not read since: reads of its old value after
   * recovery (an invalidation lost with the fault would resurrect a cached old value): must be 0.
   */
  stalePreFault: number
  /** Requests with no HTTP answer at all: must be 0. */
  lost: number
  /** What happened inside the fault (cluster: which node, failover and rejoin times). */
  detail?: string
}

export interface ChaosOptions {
  faultMs?: number
  connections?: number
  /** Length of the "after" window (default 2 000 ms). */
  afterMs?: number
  /** Only these faults (default all). */
  faults?: string[]
}

/** Per-fault state: the product written just before the fault, the node it targets, notes. */
interface FaultContext {
  probe: number
  target?: RedisServer
  /** The target's replica took its slots while it was down (it must come back as a replica). */
  promoted?: boolean
  detail: string[]
}

interface Fault {
  name: string
  /** Which fleets it applies to. */
  topology: 'single' | 'cluster' | 'any'
  /** Before the probe write: choose the probe product / target (default: probe = 491 + fault index). */
  prepare?(fleet: Fleet, ctx: FaultContext): Promise<void>
  inject(fleet: Fleet, ctx: FaultContext): Promise<void>
  /** Holds the fault (default: `faultMs`). */
  hold?(fleet: Fleet, ctx: FaultContext, faultMs: number): Promise<void>
  clear(fleet: Fleet, ctx: FaultContext): Promise<void>
}

/** Products the load never reads (it reads 1..PROBE_FIRST-1): probes of "written, not read since". */
const PROBE_FIRST = 491
const PRODUCTS = 500

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Every node of the fleet's Redis (one, or every cluster node that is running). */
const redisNodes = (f: Fleet): RedisServer[] => (f.redis ? [f.redis] : f.redisCluster!.nodes.filter((n) => n.running))

async function onNode<T>(node: RedisServer, fn: (r: Redis) => Promise<T>): Promise<T> {
  const admin = new Redis(node.url, { maxRetriesPerRequest: 1, lazyConnect: true })
  admin.on('error', () => {})
  await admin.connect()
  try {
    return await fn(admin)
  } finally {
    admin.disconnect()
  }
}

/** The cluster node holding the cached response of `GET /products/<id>` (scans every master). */
async function entryNodeOf(f: Fleet, id: number): Promise<RedisServer | undefined> {
  const masters = (await f.redisCluster!.topology()).filter((s) => s.role === 'master' && !s.failed)
  for (const m of masters) {
    const keys = await onNode(m.node, (r) => r.keys(`*products/${id}*`))
    if (keys.some((k) => new RegExp(`products/${id}(?!\\d)`).test(k))) return m.node
  }
  return undefined
}

export const FAULTS: readonly Fault[] = [
  { name: 'redis killed + restarted', topology: 'single', inject: (f) => f.redis!.kill(), clear: (f) => f.redis!.restart() },
  { name: 'replica stopped + started', topology: 'single', inject: (f) => f.pg.replicas[0]!.stop(), clear: (f) => f.pg.replicas[0]!.restart() },
  { name: 'primary paused (SIGSTOP/SIGCONT)', topology: 'single', inject: async (f) => f.pg.primary.pause(), clear: async (f) => f.pg.primary.resume() },
  {
    name: 'cluster master SIGKILLed + restarted',
    topology: 'cluster',
    // The master holding the probe product's tag version, with the cached response on another
    // master where possible: losing the tag's bump while the entry survives is the case to catch.
    async prepare(f, ctx) {
      const c = f.redisCluster!
      let fallback: { probe: number; target: RedisServer } | undefined
      for (let id = PROBE_FIRST; id <= PRODUCTS; id++) {
        // The app's cache uses the default prefix 'ri:'; tag keys are `ri:t:{<tag>}`.
        const tagMaster = await c.masterOf(`ri:t:{product:${id}}`)
        await fetch(`${f.instances[0]!.url}/products/${id}`).then((r) => r.arrayBuffer())
        let entry: RedisServer | undefined
        await waitUntil(`product ${id} stored in L2`, async () => (entry = await entryNodeOf(f, id)) !== undefined, 5_000, 50).catch(() => {})
        fallback ??= { probe: id, target: tagMaster }
        if (entry !== undefined && entry !== tagMaster) {
          ctx.probe = id
          ctx.target = tagMaster
          ctx.detail.push(`killed :${tagMaster.port} (tag product:${id}; entry on :${entry.port})`)
          return
        }
      }
      ctx.probe = fallback!.probe
      ctx.target = fallback!.target
      ctx.detail.push(`killed :${ctx.target.port} (tag and entry of product ${ctx.probe})`)
    },
    inject: (_f, ctx) => ctx.target!.kill(),
    async hold(f, ctx, faultMs) {
      const started = Date.now()
      const topology = await f.redisCluster!.topology()
      const hasReplica = topology.some((s) => s.role === 'replica' && s.masterPort === ctx.target!.port)
      await sleep(faultMs)
      if (!hasReplica) {
        ctx.detail.push('no replica: its slots unserved until the restart, which brings it back empty')
        return
      }
      // Keep it down until its replica has taken over (cluster-node-timeout 2 s + election).
      await f.redisCluster!.waitUntilOk({ timeoutMs: 30_000 })
      ctx.promoted = true
      ctx.detail.push(`replica promoted after ${Date.now() - started} ms`)
    },
    async clear(f, ctx) {
      const started = Date.now()
      await ctx.target!.restart()
      await f.redisCluster!.waitUntilOk({ timeoutMs: 30_000 })
      let back = (await f.redisCluster!.topology()).find((s) => s.node === ctx.target)
      // A failed-over master restarts believing it is still a master and turns into a replica only
      // when gossip tells it about the newer epoch: cluster_state can read ok a moment before that.
      for (const until = Date.now() + 15_000; ctx.promoted && back?.role !== 'replica' && Date.now() < until; ) {
        await sleep(100)
        back = (await f.redisCluster!.topology()).find((s) => s.node === ctx.target)
      }
      ctx.detail.push(`restarted, cluster ok after ${Date.now() - started} ms, back as ${back?.role ?? '?'}`)
    },
  },
  {
    name: 'bus disconnected (CLIENT KILL TYPE pubsub)',
    topology: 'any',
    async inject(f) {
      for (const node of redisNodes(f)) await onNode(node, (r) => r.client('KILL', 'TYPE', 'pubsub'))
    },
    clear: async () => {},
  },
]

const metricsText = async (url: string) => (await fetch(`${url}/metrics`)).text()
const busUp = async (url: string) => /^ri_cache_bus_connected\{[^}]*\} 1$/m.test(await metricsText(url))

/**
 * Before the fault: `GET /products/<id>` cached by every instance (L1 and L2), then a price write
 * through one instance, and no read of it after that. Returns the new price.
 */
async function probeWrite(fleet: Fleet, id: number): Promise<number> {
  for (const i of fleet.instances) for (let k = 0; k < 2; k++) await priceOf(i.url, id)
  const want = (await priceOf(fleet.instances[0]!.url, id)) + 1
  const write = await fetch(`${fleet.instances[0]!.url}/products/${id}/price`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': `198.51.100.${id % 250}` },
    body: JSON.stringify({ priceCents: want }),
  })
  if (write.status !== 200) throw new Error(`probe price write: ${write.status} ${await write.text()}`)
  return want
}

/** After recovery: reads of a probe's old price, 3 rounds over every instance. */
async function probeStale(fleet: Fleet, id: number, want: number): Promise<number> {
  let stale = 0
  for (let round = 0; round < 3; round++) {
    for (const i of fleet.instances) {
      const got = await priceOf(i.url, id)
      if (got !== want) {
        stale++
        console.error(`stale: ${i.name} served product ${id} at ${got}, written ${want} before the fault`)
      }
    }
  }
  return stale
}

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
    for (const i of fleet.instances) console.error(`--- ${i.name} log tail:\n${i.output().slice(-2_500)}`)
    return { convergedMs: null, stale: fleet.instances.length }
  }
  let stale = 0
  for (let round = 0; round < 3; round++) for (const i of fleet.instances) if ((await priceOf(i.url, id)) !== want) stale++
  return { convergedMs, stale }
}

export async function runChaos(fleet: Fleet, options: ChaosOptions = {}): Promise<{ rows: ChaosRow[]; samples: Sample[] }> {
  const faultMs = options.faultMs ?? 2_000
  const afterMs = options.afterMs ?? 2_000
  const topology = fleet.redisCluster ? 'cluster' : 'single'
  const faults = FAULTS.filter((f) => (f.topology === 'any' || f.topology === topology) && (!options.faults || options.faults.includes(f.name)))
  // Reads of 490 products (491..500 are the probes) and a few listings, from 250 client addresses
  // (the per-ip limit is 100/s).
  const load = startLoad(fleet.lb.url, {
    concurrency: options.connections ?? 16,
    maxMs: faults.length * (faultMs + afterMs + 90_000) + 60_000,
    next: (n) => ({
      path: n % 5 === 0 ? `/products?limit=5&offset=${n % 100}` : `/products/${1 + ((n * 7919) % (PROBE_FIRST - 1))}`,
      headers: { 'x-forwarded-for': `203.0.113.${n % 250}` },
    }),
  })
  const rows: ChaosRow[] = []
  try {
    await new Promise((r) => setTimeout(r, 1_000)) // baseline traffic, warm caches
    for (const [k, fault] of faults.entries()) {
      const ctx: FaultContext = { probe: PROBE_FIRST + (k % (PRODUCTS - PROBE_FIRST + 1)), detail: [] }
      await fault.prepare?.(fleet, ctx)
      const probeWant = await probeWrite(fleet, ctx.probe)
      // Let the write's purges (at once, after replication, 1 s later) all land before the fault:
      // the probe is "invalidated a while ago, not read since", not a purge racing the fault.
      await sleep(Number(process.env.RI_CHAOS_PROBE_SETTLE_MS ?? 1_500))
      const injectedAt = load.now()
      await fault.inject(fleet, ctx)
      await (fault.hold ? fault.hold(fleet, ctx, faultMs) : sleep(faultMs))
      await fault.clear(fleet, ctx)
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
      const stalePreFault = await probeStale(fleet, ctx.probe, probeWant)
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
        stalePreFault,
        lost: windowStats(load.samples, injectedAt, load.now()).lost,
        ...(ctx.detail.length > 0 ? { detail: ctx.detail.join('; ') } : {}),
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
    ['stale pre', (r) => String(r.stalePreFault)],
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

/** Runs the faults that apply to one fleet topology; the fleet is started and stopped here. */
export async function chaosOn(topology: 'single' | 'cluster', options: ChaosOptions & { clusterReplicas?: number } = {}): Promise<{ rows: ChaosRow[]; totalRequests: number; balancer: unknown }> {
  const fleet = await startFleet({ redis: topology, clusterReplicas: options.clusterReplicas })
  try {
    const redis = fleet.redis ? `Redis ${fleet.redis.url}` : `Redis Cluster ${fleet.redisCluster!.nodes.length} nodes (${fleet.redisCluster!.nodes.map((n) => n.port).join(',')})`
    console.log(`3 instances behind ${fleet.lb.url}; ${redis}; PostgreSQL ${fleet.pg.primary.url} + replica`)
    const { rows, samples } = await runChaos(fleet, options)
    const label = topology === 'cluster' ? `[cluster${options.clusterReplicas === 0 ? ', no replicas' : ''}] ` : ''
    return { rows: rows.map((r) => ({ ...r, fault: `${label}${r.fault}` })), totalRequests: samples.length, balancer: { ...fleet.lb.stats, perUpstream: undefined } }
  } finally {
    await fleet.stop()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2)
  const topologies = args.includes('--cluster') ? (['cluster'] as const) : args.includes('--single') ? (['single'] as const) : (['single', 'cluster'] as const)
  const options: ChaosOptions & { clusterReplicas?: number } = {
    faultMs: Number(process.env.RI_CHAOS_FAULT_MS ?? 2_000),
    faults: process.env.RI_CHAOS_FAULTS ? process.env.RI_CHAOS_FAULTS.split(',').map((f) => FAULTS.find((x) => x.name.startsWith(f.trim()))?.name ?? f) : undefined,
    connections: Number(process.env.RI_CHAOS_CONNECTIONS ?? 16),
    clusterReplicas: Number(process.env.RI_CHAOS_CLUSTER_REPLICAS ?? 1),
  }
  const rows: ChaosRow[] = []
  const runs: unknown[] = []
  for (const topology of topologies) {
    const run = await chaosOn(topology, options)
    rows.push(...run.rows)
    runs.push({ topology, totalRequests: run.totalRequests, balancer: run.balancer })
    console.log(`${topology}: requests ${run.totalRequests}, balancer ${JSON.stringify(run.balancer)}`)
  }
  console.log(formatTable(rows))
  for (const r of rows) if (r.detail) console.log(`  ${r.fault}: ${r.detail}`)
  console.log(`JSON: ${writeReport('chaos', { rows, runs })}`)
  process.exitCode = rows.some((r) => r.lost > 0 || r.staleReads > 0 || r.stalePreFault > 0 || r.recoveryMs === null) ? 1 : 0
}
