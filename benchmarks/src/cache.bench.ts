/**
 * @ri/cache against lru-cache, bentocache, cacheable, cache-manager and async-cache-dedupe, all
 * measured in the same run on the same value shape. Ratios, not absolute numbers, are the result.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createCache as createRiCache } from '@ri/cache'
import { execFileSync } from 'node:child_process'
import net from 'node:net'
import { createCache as createAsyncDedupe } from 'async-cache-dedupe'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisDriver } from 'bentocache/drivers/redis'
import { createCache as createCacheManager } from 'cache-manager'
import { Cacheable } from 'cacheable'
import { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import { median } from './http.js'
import type { BenchComparison, BenchContext, BenchFile, BenchSubject } from './types.js'

interface RedisServer {
  readonly url: string
  stop(): Promise<void>
}

/**
 * A throwaway redis-server on a free loopback port. (@ri/testing imports vitest, which cannot be
 * loaded outside a test run, so the bench starts its own.) Undefined when redis-server is absent.
 */
async function startRedis(): Promise<RedisServer | undefined> {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
  } catch {
    return undefined
  }
  const port = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(p))
    })
  })
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${port}`
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 50 })
  probe.on('error', () => {})
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect()
      await probe.ping()
      break
    } catch {
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  probe.disconnect()
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

const KEYS = Array.from({ length: 1_000 }, (_, i) => `user:${i}`)
const value = (i: number) => ({ id: i, name: `user ${i}`, email: `u${i}@example.com`, roles: ['reader', 'writer'], active: true, score: i * 1.5 })

type Op = (i: number) => unknown

/** Sequential awaited ops for `ms`; median ops/s over `rounds` interleaved rounds. */
async function measureAll(subjects: Array<[string, Op]>, ms: number, rounds: number): Promise<Map<string, number>> {
  const samples = new Map<string, number[]>(subjects.map(([n]) => [n, []]))
  for (const [, op] of subjects) for (let i = 0; i < 20_000; i++) await op(i) // warm-up (JIT)
  for (let r = 0; r < rounds; r++) {
    for (const [name, op] of subjects) {
      let n = 0
      const start = performance.now()
      const end = start + ms
      while (performance.now() < end) {
        for (let i = 0; i < 1_000; i++) await op(n + i)
        n += 1_000
      }
      samples.get(name)!.push(n / ((performance.now() - start) / 1000))
    }
  }
  return new Map([...samples].map(([k, v]) => [k, median(v)]))
}

/** `concurrency` callers in parallel, each awaiting its op in a loop, for `ms`. */
async function measureConcurrent(op: Op, concurrency: number, ms: number): Promise<number> {
  let n = 0
  const end = performance.now() + ms
  const start = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      let i = w
      while (performance.now() < end) {
        await op(i)
        i += concurrency
        n++
      }
    }),
  )
  return n / ((performance.now() - start) / 1000)
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

async function l1(ctx: BenchContext): Promise<BenchComparison[]> {
  ctx.progress('cache: L1 hit (get / getOrSet)')
  const ri = createRiCache({ l1: { max: 10_000 } })
  const lru = new LRUCache<string, object>({ max: 10_000 })
  const bento = new BentoCache({ default: 'mem', stores: { mem: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000 })) } })
  const cacheable = new Cacheable()
  const manager = createCacheManager()
  const dedupe = createAsyncDedupe({ ttl: 3600, storage: { type: 'memory', options: { size: 10_000 } } }).define('user', async (k: string) => value(Number(k.slice(5))))
  for (let i = 0; i < KEYS.length; i++) {
    const k = KEYS[i]!
    lru.set(k, value(i))
    await ri.set(k, value(i))
    await bento.set({ key: k, value: value(i), ttl: '1h' })
    await cacheable.set(k, value(i))
    await manager.set(k, value(i))
    await dedupe.user(k)
  }
  const key = (i: number) => KEYS[i % 1_000]!
  const load = () => value(0)
  const ms = ctx.quick ? 50 : 300
  const rounds = ctx.quick ? 5 : 21
  const get = await measureAll(
    [
      ['raw lru-cache.get (awaited)', async (i) => lru.get(key(i))],
      ['ri get', (i) => ri.get(key(i))],
      ['bentocache get', (i) => bento.get({ key: key(i) })],
      ['cacheable get', (i) => cacheable.get(key(i))],
      ['cache-manager get', (i) => manager.get(key(i))],
    ],
    ms,
    rounds,
  )
  const gos = await measureAll(
    [
      ['raw lru-cache.get (awaited)', async (i) => lru.get(key(i))],
      ['ri getOrSet', (i) => ri.getOrSet(key(i), load)],
      ['bentocache getOrSet', (i) => bento.getOrSet({ key: key(i), factory: load, ttl: '1h' })],
      ['cacheable getOrSet', (i) => cacheable.getOrSet(key(i), async () => load())],
      ['cache-manager wrap', (i) => manager.wrap(key(i), load)],
      ['async-cache-dedupe (memory)', (i) => dedupe.user(key(i))],
    ],
    ms,
    rounds,
  )
  await ri.close()
  await bento.disconnectAll()
  const rows = (m: Map<string, number>): BenchSubject[] => [...m].map(([name, opsPerSec]) => ({ name, opsPerSec: Math.round(opsPerSec) }))
  const verdict = (m: Map<string, number>, ours: string) => {
    const raw = m.get('raw lru-cache.get (awaited)')!
    const mine = m.get(ours)!
    const costRatio = raw / mine
    const slowestRival = Math.max(...[...m].filter(([n]) => /bentocache|cacheable|cache-manager/.test(n)).map(([, v]) => v))
    const faster = mine / slowestRival
    return {
      text: `${ours}: cost <= 3x awaited raw lru-cache.get (measured ${costRatio.toFixed(2)}x) and >= 5x faster than bentocache, cacheable, cache-manager (measured ${faster.toFixed(1)}x vs the fastest of them)`,
      met: costRatio <= 3 && faster >= 5,
    }
  }
  return [
    { id: 'cache.l1-hit.get', title: 'L1 hit: get', baseline: 'raw lru-cache.get (awaited)', subjects: rows(get), target: verdict(get, 'ri get') },
    { id: 'cache.l1-hit.getOrSet', title: 'L1 hit: getOrSet', baseline: 'raw lru-cache.get (awaited)', subjects: rows(gos), target: verdict(gos, 'ri getOrSet') },
  ]
}

async function l2(ctx: BenchContext, redis: RedisServer): Promise<BenchComparison[]> {
  ctx.progress('cache: L2 hit at 100 concurrent callers')
  const raw = new Redis(redis.url, { enableAutoPipelining: true })
  const prefix = 'bench-l2:'
  const ri = createRiCache({ l1: false, l2: redis.url, prefix })
  const riScript = createRiCache({ l1: false, l2: redis.url, bus: false, prefix })
  for (let i = 0; i < 100 && ri.stats().bus?.connected !== true; i++) await new Promise((r) => setTimeout(r, 20))
  const bentoConn = new Redis(redis.url, { enableAutoPipelining: true })
  const bento = new BentoCache({ default: 'r', stores: { r: bentostore().useL2Layer(redisDriver({ connection: bentoConn })) } })
  const dedupeConn = new Redis(redis.url, { enableAutoPipelining: true })
  const dedupe = createAsyncDedupe({ ttl: 3600, storage: { type: 'redis', options: { client: dedupeConn } } }).define('user', async (k: string) => value(Number(k.slice(5))))
  for (let i = 0; i < KEYS.length; i++) {
    const k = KEYS[i]!
    await raw.set(`raw:${k}`, JSON.stringify(value(i)))
    await ri.set(k, value(i))
    await bento.set({ key: k, value: value(i), ttl: '1h' })
    await dedupe.user(k)
  }
  const key = (i: number) => KEYS[i % 1_000]!
  const ms = ctx.quick ? 150 : 500
  const subjects: Array<[string, Op]> = [
    ['raw ioredis GET + JSON.parse (auto-pipelining)', async (i) => JSON.parse((await raw.get(`raw:${key(i)}`))!)],
    ['ri get (L1 off)', (i) => ri.get(key(i))],
    ['ri get (L1 off, no bus: read script)', (i) => riScript.get(key(i))],
    ['bentocache get (L2 only)', (i) => bento.get({ key: key(i) })],
    ['async-cache-dedupe (redis)', (i) => dedupe.user(key(i))],
  ]
  const result = new Map<string, number[]>()
  for (const [, op] of subjects) await measureConcurrent(op, 100, 200) // warm-up
  // Many short interleaved rounds, median per subject: the ratio survives a noisy machine.
  for (let r = 0; r < (ctx.quick ? 6 : 15); r++) {
    for (const [n, op] of subjects) {
      const v = await measureConcurrent(op, 100, ms)
      result.set(n, [...(result.get(n) ?? []), v])
    }
  }
  // async-cache-dedupe keeps an in-process dedupe map only for in-flight calls; reads hit Redis.
  const med = new Map([...result].map(([k, v]) => [k, median(v)]))
  const base = med.get(subjects[0]![0])!
  const mine = med.get('ri get (L1 off)')!
  // Each round measures ri right after the baseline: the median of those paired ratios is not
  // moved by load that comes and goes between rounds (another process on the machine), which a
  // ratio of the two medians is.
  const rawRounds = result.get(subjects[0]![0])!
  const paired = median(result.get('ri get (L1 off)')!.map((v, r) => v / rawRounds[r]!))
  raw.disconnect()
  await ri.close()
  await riScript.close()
  await bento.disconnectAll()
  dedupeConn.disconnect()
  bentoConn.disconnect()
  return [
    {
      id: 'cache.l2-hit',
      title: 'L2 hit (Redis), 100 concurrent callers',
      baseline: subjects[0]![0],
      subjects: [...med].map(([name, opsPerSec]) => ({ name, opsPerSec: Math.round(opsPerSec) })),
      target: { text: `ri L2 hit >= 0.8x raw ioredis GET + JSON.parse (measured ${paired.toFixed(2)}x, median of per-round ratios; ${(mine / base).toFixed(2)}x as a ratio of medians)`, met: paired >= 0.8 },
      notes:
        'With the bus connected, ri validates tags against versions the bus keeps current: an L2 hit is a plain GET. Without a bus it reads value and tag versions in one Lua script (EVALSHA), shown separately.',
    },
  ]
}

async function roundTrips(ctx: BenchContext, redis: RedisServer): Promise<BenchComparison> {
  ctx.progress('cache: Redis round trips per operation')
  const admin = new Redis(redis.url)
  const commands = async () => Number(/total_commands_processed:(\d+)/.exec(await admin.info('stats'))![1])
  const count = async (fn: () => Promise<unknown>, rt: () => number) => {
    const c0 = await commands()
    const r0 = rt()
    await fn()
    return { roundTrips: rt() - r0, commands: (await commands()) - c0 - 1 }
  }
  const ri = createRiCache({ l2: redis.url, prefix: 'bench-rt:' })
  const locked = createRiCache({ l2: redis.url, prefix: 'bench-rt:', lock: true })
  const other = createRiCache({ l2: redis.url, prefix: 'bench-rt:' })
  await new Promise((r) => setTimeout(r, 200)) // bus subscriptions
  const rt = (c: typeof ri) => () => c.stats().l2.requests
  await ri.set('hit', value(1), { tags: ['users'] })
  await ri.set('hit2', value(2), { tags: ['users'] })
  await ri.get('hit')
  const l1hit = await count(() => ri.get('hit'), rt(ri))
  const l2first = await count(() => other.get('hit2'), rt(other))
  const l2hit = await count(() => other.get('hit'), rt(other))
  const miss = await count(() => ri.getOrSet('miss', async () => value(2), { tags: ['users'] }), rt(ri))
  const missLocked = await count(() => locked.getOrSet('miss-locked', async () => value(3), { tags: ['users'] }), rt(locked))
  await ri.setMany(KEYS.slice(0, 10).map((key, i) => ({ key, value: value(i) })))
  const many = await count(() => other.getMany(KEYS.slice(0, 10)), rt(other))
  await Promise.all([ri.close(), locked.close(), other.close()])
  admin.disconnect()
  const row = (name: string, r: { roundTrips: number; commands: number }): BenchSubject => ({ name, extra: { roundTrips: r.roundTrips, redisCommands: r.commands } })
  return {
    id: 'cache.round-trips',
    title: 'Redis round trips per operation (ri)',
    baseline: 'L1 hit',
    subjects: [row('L1 hit', l1hit), row('L2 hit (tagged, tag versions known)', l2hit), row('L2 hit (first sight of its tags)', l2first), row('full miss (getOrSet, tagged)', miss), row('full miss with distributed lock', missLocked), row('getMany(10) from L2', many)],
    target: {
      text: 'L1 hit 0, L2 hit 1, full miss <= 3, getMany 1',
      met: l1hit.roundTrips === 0 && l2hit.roundTrips === 1 && miss.roundTrips <= 3 && missLocked.roundTrips <= 3 && many.roundTrips === 1,
    },
    notes: 'Round trips counted by the driver (one per command, script or pipeline); Redis commands from INFO total_commands_processed. Bus messages are published from the same scripts.',
  }
}

// ---- multi-process --------------------------------------------------------------------------

const WORKER = `
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'
const url = process.env.REDIS_URL
const kind = process.env.KIND
const counter = new Redis(url)
let getOrSet, invalidate, onInvalidation, close
if (kind === 'bentocache') {
  const { BentoCache, bentostore } = await import('bentocache')
  const { redisDriver, redisBusDriver } = await import('bentocache/drivers/redis')
  const { memoryDriver } = await import('bentocache/drivers/memory')
  const bento = new BentoCache({ default: 'c', stores: { c: bentostore().useL1Layer(memoryDriver({})).useL2Layer(redisDriver({ connection: { host: new URL(url).hostname, port: Number(new URL(url).port) } })).useBus(redisBusDriver({ connection: { host: new URL(url).hostname, port: Number(new URL(url).port) } })) } })
  getOrSet = (key, loader) => bento.getOrSet({ key, factory: loader, ttl: '1m' })
  close = () => bento.disconnectAll()
} else {
  const { createCache } = await import('@ri/cache')
  const cache = createCache({ l2: url, prefix: process.env.PREFIX, lock: kind === 'ri-lock' ? { lease: '10s', wait: '5s' } : false })
  const deadline = Date.now() + 5000
  while (!cache.stats().bus?.connected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  getOrSet = (key, loader) => cache.getOrSet(key, loader, { tags: ['t'] })
  invalidate = (tags) => cache.invalidateTags(tags)
  onInvalidation = (fn) => cache.events.on('cache.bus.message', (e) => { if (e.direction === 'in' && e.type === 'i') fn() })
  close = () => cache.close()
}
// CLOCK_MONOTONIC is system-wide on Linux: comparable across processes on one machine.
const now = () => Number(process.hrtime.bigint()) / 1e6
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n')
onInvalidation?.(() => out({ event: 'invalidated', at: now() }))
createInterface({ input: process.stdin }).on('line', async (line) => {
  const cmd = JSON.parse(line)
  try {
    if (cmd.op === 'stampede') {
      const loader = async () => { await counter.incr(cmd.counter); await new Promise((r) => setTimeout(r, 50)); return 'v' }
      await Promise.all(Array.from({ length: cmd.n }, () => getOrSet(cmd.key, loader)))
      out({ id: cmd.id, ok: true })
    } else if (cmd.op === 'invalidate') {
      const at = now()
      await invalidate(cmd.tags)
      out({ id: cmd.id, at })
    } else if (cmd.op === 'close') {
      await close(); counter.disconnect(); out({ id: cmd.id }); process.exit(0)
    } else out({ id: cmd.id, ready: true })
  } catch (e) { out({ id: cmd.id, error: String(e) }) }
})
out({ event: 'up' })
`

interface Proc {
  send(cmd: Record<string, unknown>): Promise<Record<string, unknown>>
  events: Array<Record<string, unknown>>
  close(): Promise<void>
}

function startProc(env: Record<string, string>): Promise<Proc> {
  const cwd = fileURLToPath(new URL('..', import.meta.url))
  const child = spawn(process.execPath, ['--input-type=module', '-e', WORKER], { cwd, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] })
  const waiting = new Map<number, (m: Record<string, unknown>) => void>()
  const events: Array<Record<string, unknown>> = []
  let id = 0
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)))
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as Record<string, unknown>
      if (m.event === 'up') {
        resolve({
          events,
          send(cmd) {
            const n = ++id
            return new Promise((r) => {
              waiting.set(n, r)
              child.stdin!.write(`${JSON.stringify({ id: n, ...cmd })}\n`)
            })
          },
          async close() {
            const exited = new Promise((r) => child.once('exit', r))
            child.stdin!.write(`${JSON.stringify({ id: 0, op: 'close' })}\n`)
            const t = setTimeout(() => child.kill('SIGKILL'), 3_000)
            await exited
            clearTimeout(t)
          },
        })
      } else if (typeof m.id === 'number' && waiting.has(m.id)) {
        waiting.get(m.id)!(m)
        waiting.delete(m.id)
      } else events.push(m)
    })
  })
}

async function stampede(ctx: BenchContext, redis: RedisServer): Promise<BenchComparison> {
  ctx.progress('cache: stampede, 1,000 concurrent misses across 4 processes')
  const admin = new Redis(redis.url)
  const subjects: BenchSubject[] = []
  for (const kind of ['ri-lock', 'ri', 'bentocache']) {
    const procs = await Promise.all(Array.from({ length: 4 }, () => startProc({ REDIS_URL: redis.url, KIND: kind, PREFIX: `bench-st-${kind}:` })))
    const counterKey = `bench-loads:${kind}`
    const t0 = performance.now()
    await Promise.all(procs.map((p) => p.send({ op: 'stampede', key: `hot-${kind}`, n: 250, counter: counterKey })))
    const ms = performance.now() - t0
    subjects.push({ name: kind === 'ri-lock' ? 'ri (distributed lock)' : kind === 'ri' ? 'ri (in-process single-flight only)' : 'bentocache', extra: { loaderCalls: Number(await admin.get(counterKey)), wallMs: Math.round(ms) } })
    await Promise.all(procs.map((p) => p.close()))
  }
  admin.disconnect()
  const ours = subjects[0]!.extra!.loaderCalls
  return {
    id: 'cache.stampede',
    title: 'Stampede: loader calls for 1,000 concurrent misses across 4 processes (50 ms loader)',
    baseline: 'bentocache',
    subjects,
    target: { text: `exactly one loader call with the distributed lock (measured ${ours})`, met: ours === 1 },
  }
}

async function propagation(ctx: BenchContext, redis: RedisServer): Promise<BenchComparison> {
  ctx.progress('cache: tag invalidation propagation across two processes')
  const [a, b] = await Promise.all([0, 1].map(() => startProc({ REDIS_URL: redis.url, KIND: 'ri', PREFIX: 'bench-prop:' })))
  const n = ctx.quick ? 100 : 500
  const lat: number[] = []
  for (let i = 0; i < n; i++) {
    const before = b!.events.length
    const r = await a!.send({ op: 'invalidate', tags: [`tag${i % 10}`] })
    const deadline = Date.now() + 1_000
    while (b!.events.length === before && Date.now() < deadline) await new Promise((res) => setImmediate(res))
    const ev = b!.events[b!.events.length - 1]
    if (ev && b!.events.length > before) lat.push((ev.at as number) - (r.at as number))
  }
  await Promise.all([a!.close(), b!.close()])
  return {
    id: 'cache.invalidation-propagation',
    title: 'Tag invalidation propagation: invalidateTags() call in process A to bus receipt in process B',
    baseline: 'ri',
    subjects: [{ name: 'ri', p50Ms: Number(pct(lat, 50).toFixed(3)), p99Ms: Number(pct(lat, 99).toFixed(3)), extra: { samples: lat.length, lost: n - lat.length } }],
    notes: 'Measured with process.hrtime (system-wide monotonic clock) in both processes on one machine. The message is published by the invalidation script itself, so it leaves Redis in the same round trip.',
  }
}

const bench: BenchFile = async (ctx) => {
  const out: BenchComparison[] = [...(await l1(ctx))]
  const redis = await startRedis()
  if (redis === undefined) {
    ctx.progress('cache: redis-server not found; L2, round-trip, stampede and propagation comparisons skipped')
    return out
  }
  try {
    out.push(...(await l2(ctx, redis)))
    out.push(await roundTrips(ctx, redis))
    out.push(await stampede(ctx, redis))
    out.push(await propagation(ctx, redis))
  } finally {
    await redis.stop()
  }
  return out
}

export default bench
