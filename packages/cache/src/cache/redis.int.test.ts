import { describeWithRedis, type RedisCluster, type RedisServer, startRedis, startRedisCluster } from '@ri/testing'
import { Cluster, Redis } from 'ioredis'
import { Packr } from 'msgpackr'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type Cache, type CacheOptions, createCache } from '../index.js'
import { keySlot } from '../l2/slot.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(fn: () => boolean | Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(10)
  }
}

describeWithRedis('cache over real Redis (L1 + L2 + bus)', () => {
  let redis: RedisServer
  let admin: Redis
  const open: Cache[] = []
  let prefixN = 0
  let prefix = ''

  beforeAll(async () => {
    redis = await startRedis()
    admin = new Redis(redis.url)
    admin.on('error', () => {})
  })
  afterAll(async () => {
    admin?.disconnect()
    await redis?.stop()
  })
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()))
  })

  /** A cache on its own connections: one "instance". Each test gets its own key prefix. */
  const instance = async (options: CacheOptions = {}): Promise<Cache> => {
    const cache = createCache({ l2: redis.url, prefix, timeouts: { l2: 300 }, ...options })
    open.push(cache)
    if (options.bus !== false) await until(() => cache.stats().bus?.connected === true)
    return cache
  }
  const fresh = () => {
    prefix = `t${++prefixN}:`
  }

  it('an L2 hit fills L1; hits cost 0 round trips in L1 and 1 in L2; a full miss at most 3', async () => {
    fresh()
    const a = await instance()
    const b = await instance()
    await a.set('k', { n: 1 }, { tags: ['t1'] })
    await sleep(5) // let b see the bus message for 'k' before it reads (a read racing it is not cached)
    let before = b.stats().l2.requests
    expect(await b.get('k')).toEqual({ n: 1 })
    // first sight of tag t1 on b: GET + one pipelined HMGET
    expect(b.stats().l2.requests - before).toBeLessThanOrEqual(2)
    await a.set('k2', { n: 2 }, { tags: ['t1'] })
    await sleep(5)
    before = b.stats().l2.requests
    expect(await b.get('k2')).toEqual({ n: 2 })
    expect(b.stats().l2.requests - before).toBe(1) // tags known: value and versions in 1 round trip
    before = b.stats().l2.requests
    expect(await b.get('k')).toEqual({ n: 1 })
    expect(await b.getOrSet('k', () => ({ n: 2 }))).toEqual({ n: 1 })
    expect(b.stats().l2.requests - before).toBe(0)

    before = b.stats().l2.requests
    await b.getOrSet('miss', () => 'loaded', { tags: ['x'] })
    expect(b.stats().l2.requests - before).toBeLessThanOrEqual(2)

    const locked = await instance({ lock: true })
    before = locked.stats().l2.requests
    await locked.getOrSet('miss2', () => 'loaded', { tags: ['x'] })
    expect(locked.stats().l2.requests - before).toBeLessThanOrEqual(3)

    before = b.stats().l2.requests
    await a.setMany([
      { key: 'm1', value: 1 },
      { key: 'm2', value: 2, tags: ['t'] },
    ])
    expect(await b.getMany(['m1', 'm2', 'm3'])).toEqual([1, 2, undefined])
    expect(b.stats().l2.requests - before).toBe(1)
  })

  it('getOrSetMany: one read round trip, one write round trip, the loader sees only the misses', async () => {
    fresh()
    const a = await instance()
    const b = await instance()
    await a.set('x1', 1)
    const before = b.stats().l2.requests
    const seen: string[][] = []
    const out = await b.getOrSetMany(['x1', 'x2', 'x3'], (missing) => {
      seen.push(missing)
      return missing.map((k) => k.toUpperCase())
    })
    expect(out).toEqual([1, 'X2', 'X3'])
    expect(seen).toEqual([['x2', 'x3']])
    expect(b.stats().l2.requests - before).toBe(2)
    await sleep(5)
    expect(await a.getMany(['x1', 'x2', 'x3'])).toEqual([1, 'X2', 'X3'])
  })

  it('lock waiters are woken by the bus when the holder writes (no full backoff wait)', async () => {
    fresh()
    const [a, b] = await Promise.all([instance({ lock: true }), instance({ lock: true })])
    let calls = 0
    const loader = async () => {
      calls++
      await sleep(200)
      return 'v'
    }
    const t0 = Date.now()
    const [ra, rb] = await Promise.all([a.getOrSet('wake', loader), sleep(10).then(() => b.getOrSet('wake', loader))])
    expect([ra, rb]).toEqual(['v', 'v'])
    expect(calls).toBe(1)
    // b's polls (backoff 5..100 ms) would next look at ~265 ms; the bus wakes it at ~200 ms
    expect(Date.now() - t0).toBeLessThan(250)
  })

  it('set/delete/invalidateTags in one instance are seen by the other on its next read', async () => {
    fresh()
    const a = await instance()
    const b = await instance()
    await a.set('user', 'v1', { tags: ['user:1'] })
    expect(await b.get('user')).toBe('v1') // now in b's L1
    await a.set('user', 'v2', { tags: ['user:1'] })
    await until(async () => (await b.get('user')) === 'v2', 1_000)

    await a.invalidateTags(['user:1'])
    await sleep(5)
    expect(await b.get('user')).toBeUndefined()
    expect(await b.getOrSet('user', () => 'v3', { tags: ['user:1'] })).toBe('v3')
    expect(await a.get('user')).toBe('v3')

    await b.delete('user')
    await sleep(5)
    expect(await a.get('user')).toBeUndefined()
  })

  it('without L1, get() checks tags on every L2 hit: expired, deleted, cleared and corrupt entries are misses', async () => {
    fresh()
    const warnings: unknown[] = []
    const logger = { trace() {}, debug() {}, info() {}, warn: (o: unknown) => warnings.push(o), error() {}, fatal() {}, child: () => logger }
    const a = await instance()
    const b = await instance({ l1: false, logger: logger as never })
    await a.set('t', 'tagged', { tags: ['grp'] })
    await a.set('u', 'untagged')
    expect(await b.get('t')).toBe('tagged') // first sight of 'grp': GET + HMGET
    let before = b.stats().l2.requests
    expect(await b.get('t')).toBe('tagged')
    expect(await b.get('u')).toBe('untagged')
    expect(b.stats().l2.requests - before).toBe(2) // known tags: one GET each
    expect(b.stats().l2.hits).toBe(3)

    await a.invalidateTags(['grp']) // expire: the bytes stay in Redis as a stale fallback
    await until(async () => (await b.get('t')) === undefined, 1_000)
    expect(await b.get('u')).toBe('untagged')

    await a.set('t', 'again', { tags: ['grp'] })
    await sleep(5)
    expect(await b.get('t')).toBe('again')
    await a.invalidateTags(['grp'], { mode: 'delete' })
    await until(async () => (await b.get('t')) === undefined, 1_000)

    await a.clear()
    await until(async () => (await b.get('u')) === undefined, 1_000)

    before = b.stats().l2.decodeErrors
    await admin.set(`${prefix}j1::{bad}`, 'not an entry at all')
    expect(await b.get('bad')).toBeUndefined()
    expect(b.stats().l2.decodeErrors).toBe(before + 1)
    expect(warnings.length).toBe(1)
    await b.close()
    await expect(b.get('u')).rejects.toThrow()
  })

  it('expire-by-tag keeps the value as a stale fallback in L2; delete-by-tag does not', async () => {
    fresh()
    const a = await instance({ grace: '1m' })
    const b = await instance({ grace: '1m' })
    await a.set('p', 'old', { tags: ['products'] })
    await a.invalidateTags(['products'])
    await sleep(5)
    expect(await b.get('p')).toBeUndefined()
    expect(await b.getOrSet('p', () => Promise.reject(new Error('db down')))).toBe('old')
    await a.set('q', 'old', { tags: ['products'] })
    await a.invalidateTags(['products'], { mode: 'delete' })
    await sleep(5)
    await expect(b.getOrSet('q', () => Promise.reject(new Error('db down')))).rejects.toThrow('db down')
  })

  it('clear() clears one namespace on every instance and nothing else', async () => {
    fresh()
    const a = await instance()
    const b = await instance()
    await a.namespace('users').set('k', 'u')
    await a.namespace('posts').set('k', 'p')
    await a.set('k', 'root')
    expect(await b.namespace('users').get('k')).toBe('u')
    await a.namespace('users').clear()
    await sleep(5)
    expect(await b.namespace('users').get('k')).toBeUndefined()
    expect(await a.namespace('users').get('k')).toBeUndefined()
    expect(await b.namespace('posts').get('k')).toBe('p')
    expect(await b.get('k')).toBe('root')
    // writes after the clear are visible
    await a.namespace('users').set('k', 'u2')
    expect(await b.namespace('users').get('k')).toBe('u2')
  })

  it('distributed lock: concurrent misses on several instances call the loader once', async () => {
    fresh()
    const instances = await Promise.all([1, 2, 3].map(() => instance({ lock: { lease: '5s', wait: '3s' } })))
    let calls = 0
    const loader = async () => {
      calls++
      await sleep(80)
      return 'v'
    }
    const results = await Promise.all(instances.flatMap((c) => Array.from({ length: 20 }, () => c.getOrSet('hot', loader))))
    expect(results.every((r) => r === 'v')).toBe(true)
    expect(calls).toBe(1)
  })

  it('a dead lock holder never deadlocks waiters: they load after the wait budget', async () => {
    fresh()
    const c = await instance({ lock: { lease: '10s', wait: 150 } })
    // a lock held by a process that died (never released)
    await admin.set(`${prefix}j1::{orphan}:lock`, 'someone-else', 'PX', 10_000)
    const t0 = Date.now()
    expect(await c.getOrSet('orphan', () => 'loaded')).toBe('loaded')
    expect(Date.now() - t0).toBeLessThan(1_000)
    expect(await admin.get(`${prefix}j1::{orphan}:lock`)).toBe('someone-else') // not ours: left alone
  })

  it('corrupt bytes and __proto__ payloads in Redis are a miss, never a crash or a pollution', async () => {
    fresh()
    const warnings: unknown[] = []
    const logger = { trace() {}, debug() {}, info() {}, warn: (o: unknown) => warnings.push(o), error() {}, fatal() {}, child: () => logger }
    const c = await instance({ logger: logger as never })
    await admin.set(`${prefix}j1::{corrupt}`, Buffer.from([0xff, 0x00, 0x0a, 0x0a, 0x0a, 0x7b]))
    await admin.set(`${prefix}j1::{garbage}`, 'not an entry at all')
    expect(await c.get('corrupt')).toBeUndefined()
    expect(await c.get('garbage')).toBeUndefined()
    expect(await c.getOrSet('corrupt', () => 'reloaded')).toBe('reloaded')
    // A hand-written entry under the current version of the namespace tag (the reload above
    // created its record): an entry whose tag record is missing counts as deleted.
    const ns = await admin.hget(`${prefix}t:{#ns:}`, 'v')
    expect(Number(ns)).toBeGreaterThan(0)
    const now = Date.now()
    await admin.set(`${prefix}j1::{evil}`, `#ns:\n${ns}\n${now + 60_000},${now + 60_000},${now},0\n{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"ok":1}`)
    const v = (await c.get<Record<string, unknown>>('evil'))!
    expect(v.ok).toBe(1)
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.assign({}, v).polluted).toBeUndefined()
    expect(warnings.length).toBeGreaterThanOrEqual(2)
    expect(c.stats().l2.decodeErrors).toBeGreaterThanOrEqual(2)
  })

  it('pluggable codec (msgpackr) and compression round-trip; the codec id is in the key prefix', async () => {
    fresh()
    const packr = new Packr({ useRecords: false })
    const serializer = { id: 'mp1', encode: (v: unknown) => packr.pack(v), decode: (b: Buffer) => packr.unpack(b) }
    const a = await instance({ serializer, compression: { threshold: 100 } })
    const b = await instance({ serializer, compression: { threshold: 100 } })
    const value = { when: new Date(0), big: 'x'.repeat(10_000), list: [1, 2, 3] }
    await a.set('k', value)
    expect(await b.get('k')).toEqual(value)
    const raw = await admin.getBuffer(`${prefix}mp1::{k}`)
    expect(raw!.length).toBeLessThan(1_000) // compressed
    const json = await instance()
    await json.set('d', { when: new Date(0) })
    const other = await instance()
    expect(await other.get('d')).toEqual({ when: '1970-01-01T00:00:00.000Z' }) // documented: JSON turns Dates into strings
  })

  it('JSON entries are read as text; one compressed by another instance is read again as bytes', async () => {
    fresh()
    const zip = await instance({ l1: false, compression: { threshold: 100 } })
    const text = await instance({ l1: false })
    const big = { name: 'é'.repeat(5_000), tags: ['ü', '💡'] }
    const small = { name: 'ünïcode 💡', n: 1 }
    await zip.set('big', big, { tags: ['t-é'] })
    await zip.set('small', small, { tags: ['t-é'] })
    expect((await admin.getBuffer(`${prefix}j1::{big}`))!.length).toBeLessThan(1_000) // compressed
    const before = text.stats().l2.decodeErrors
    expect(await text.get('big')).toEqual(big)
    expect(await text.get('small')).toEqual(small)
    expect(await text.get('missing')).toBeUndefined()
    await text.set('mine', small, { tags: ['t-é'] })
    expect(await zip.get('mine')).toEqual(small)
    expect(text.stats().l2.decodeErrors).toBe(before)
    await zip.invalidateTags(['t-é'])
    await until(async () => (await text.get('small')) === undefined)
    expect(await text.get('big')).toBeUndefined()
  })

  it('bus disconnect: no stale read survives the reconnect', async () => {
    fresh()
    const a = await instance()
    const b = await instance()
    await a.set('k', 'v1')
    expect(await b.get('k')).toBe('v1')
    // drop every pub/sub connection: messages published meanwhile are lost
    await admin.client('KILL', 'TYPE', 'pubsub')
    await a.set('k', 'v2')
    // b either bypasses its L1 while disconnected, or has cleared it on reconnect
    expect(await b.get('k')).toBe('v2')
    await until(() => b.stats().bus?.connected === true)
    expect(await b.get('k')).toBe('v2')
    expect(b.stats().bus!.disconnects).toBeGreaterThanOrEqual(1)
  })

  it('a sequence gap from an origin makes the instance distrust its L1', async () => {
    fresh()
    const b = await instance()
    await b.set('k', 'v1')
    const channel = `${prefix}bus`
    const msg = (s: number) => JSON.stringify({ o: 'other', s, y: 'd', n: 'unknown-ns', k: ['x'], t: Date.now() })
    await admin.publish(channel, msg(1))
    await admin.publish(channel, msg(3))
    await until(() => b.stats().bus!.gaps === 1)
    expect(b.stats().l1.entries).toBe(0)
    expect(await b.get('k')).toBe('v1') // from L2
  })

  it('Redis killed mid-run: get/getOrSet keep answering without throwing or hanging, and recover', async () => {
    fresh()
    const a = await instance({ grace: '1m', l2: { client: redis.url, circuitBreaker: { failures: 2, cooldown: 200 } } })
    await a.set('k', 'v1')
    await a.set('short', 's1', { ttl: 30 })
    await sleep(40)
    await redis.kill()
    try {
      const t0 = Date.now()
      for (let i = 0; i < 20; i++) {
        expect(await a.get('k')).toBe('v1')
        expect(await a.getOrSet('k', () => 'loaded')).toBe('v1')
        expect(await a.getOrSet(`new${i}`, () => `loaded${i}`)).toBe(`loaded${i}`)
        expect(await a.getOrSet('short', () => Promise.reject(new Error('db down')))).toBe('s1') // fail-safe
        await a.set(`w${i}`, i)
        await a.invalidateTags(['t'])
        await a.delete(`w${i}`)
      }
      expect(Date.now() - t0).toBeLessThan(20 * 4 * 350)
      expect(['open', 'half-open']).toContain(a.stats().l2.circuit)
      expect(a.stats().pendingInvalidations).toBeGreaterThan(0)
    } finally {
      await redis.restart()
    }
    await until(async () => {
      await a.get(`probe${Date.now()}`)
      return a.stats().l2.circuit === 'closed'
    }, 10_000)
    await until(() => a.stats().pendingInvalidations === 0, 5_000)
    await a.set('after', 'ok')
    const b = await instance()
    expect(await b.get('after')).toBe('ok')
  })

  it('an invalidation that timed out while the breaker stayed closed reaches Redis without another trigger', async () => {
    fresh()
    const opts: CacheOptions = { timeouts: { l2: 100 }, l2: { client: redis.url, circuitBreaker: { failures: 100, cooldown: 100 } } }
    const a = await instance(opts)
    await a.set('k', 'v1', { tags: ['p'] })
    redis.pause()
    try {
      await a.invalidateTags(['p']) // times out: applied here, queued for Redis
      expect(a.stats().pendingInvalidations).toBe(1)
    } finally {
      redis.resume()
    }
    // No breaker close, no bus reconnect: only the retry can replay it.
    await until(() => a.stats().pendingInvalidations === 0, 5_000)
    const b = await instance(opts)
    expect(await b.get('k')).toBeUndefined()
  })

  it('a tag record lost in Redis (eviction, a node restarted empty) does not make entries written after an invalidation fresh again', async () => {
    // Entries written before the first invalidation: see 'a tag record lost in Redis: ...' below.
    fresh()
    const a = await instance()
    await a.invalidateTags(['p1'])
    await a.set('k2', 'written at v1', { tags: ['p1'] })
    const tagKeys = await admin.keys(`${prefix}t:*p1*`)
    expect(tagKeys.length).toBeGreaterThan(0)
    await admin.del(...tagKeys)
    const b = await instance()
    expect(await b.get('k2')).toBeUndefined()
    expect(await b.getOrSet('k2', () => 'reloaded', { tags: ['p1'] })).toBe('reloaded')
    expect(await b.get('k2')).toBe('reloaded')
  })

  it('tag versions never restart: a record recreated after it was lost starts above every version before; bus messages carry them exactly', async () => {
    fresh()
    const a = await instance()
    const key = `${prefix}t:{v}`
    const sub = admin.duplicate()
    sub.on('error', () => {})
    const seen: Array<{ g: string[]; v: number[] }> = []
    try {
      await sub.subscribe(`${prefix}bus`)
      sub.on('message', (_channel: string, text: string) => {
        const m = JSON.parse(text) as { y: string; g?: string[]; v?: number[] }
        if (m.y === 'i' && m.g?.[0] === 'v') seen.push({ g: m.g, v: m.v! })
      })
      const read = async () => {
        const h = await admin.hgetall(key)
        return { v: Number(h.v), d: Number(h.d) }
      }
      await a.invalidateTags(['v'])
      const first = await read()
      await admin.del(key)
      await a.invalidateTags(['v'])
      const second = await read()
      expect(second.v).toBeGreaterThan(first.v)
      // recreated at the server's TIME (microseconds) before the bump: older entries are deleted
      expect(second.d).toBe(second.v - 1)
      expect(Number.isSafeInteger(second.v)).toBe(true)
      await a.invalidateTags(['v'], { mode: 'delete' })
      const third = await read()
      expect(third).toEqual({ v: second.v + 1, d: second.v + 1 })
      // a write creates a missing record too, with v = d
      await admin.del(key)
      await a.set('k', 1, { tags: ['v'] })
      const fourth = await read()
      expect(fourth.v).toBeGreaterThan(third.v)
      expect(fourth.d).toBe(fourth.v)
      await until(() => seen.length === 3)
      expect(seen.map((m) => m.v)).toEqual([
        [first.v, first.d],
        [second.v, second.d],
        [third.v, third.d],
      ])
    } finally {
      sub.disconnect()
    }
  })

  it('Redis paused (slow): nothing hangs beyond the command timeout', async () => {
    fresh()
    const a = await instance({ timeouts: { l2: 100 }, l2: { client: redis.url, circuitBreaker: { failures: 100, cooldown: 100 } } })
    await a.set('k', 'v')
    redis.pause()
    try {
      const t0 = Date.now()
      expect(await a.getOrSet('slow', () => 'loaded')).toBe('loaded')
      expect(await a.get('other')).toBeUndefined()
      expect(Date.now() - t0).toBeLessThan(800)
    } finally {
      redis.resume()
    }
  })

  // ---- the same behaviours on a single Redis and on a three-master Redis Cluster ---------------

  const TOPOLOGIES = ['a single Redis', 'a three-master Redis Cluster'] as const
  let cluster: RedisCluster
  const clients: Cluster[] = []
  beforeAll(async () => {
    cluster = await startRedisCluster()
  }, 60_000)
  afterAll(async () => {
    for (const c of clients.splice(0)) c.disconnect()
    await cluster?.stop()
  })
  const newCluster = () => {
    const c = new Cluster([...cluster.startupNodes], {
      enableAutoPipelining: true,
      redisOptions: { maxRetriesPerRequest: 1 },
      clusterRetryStrategy: (times) => Math.min(50 * times, 500),
    })
    c.on('error', () => {})
    clients.push(c)
    return c
  }
  const l2For = (topology: (typeof TOPOLOGIES)[number]) => (topology === TOPOLOGIES[0] ? redis.url : newCluster())

  describe.each(TOPOLOGIES)('on %s', (topology) => {
    const on = async (options: CacheOptions = {}) => instance({ l2: l2For(topology), ...options })

    it('set/get/getOrSet, delete and invalidateTags are seen across two instances', async () => {
      fresh()
      const [a, b] = await Promise.all([on(), on()])
      await a.set('user', 'v1', { tags: ['user:1'] })
      expect(await b.get('user')).toBe('v1')
      expect(await b.getOrSet('user', () => 'other')).toBe('v1')
      await a.set('user', 'v2', { tags: ['user:1'] })
      await until(async () => (await b.get('user')) === 'v2', 2_000)
      await a.invalidateTags(['user:1'])
      await until(async () => (await b.get('user')) === undefined, 2_000)
      expect(await b.getOrSet('user', () => 'v3', { tags: ['user:1'] })).toBe('v3')
      await until(async () => (await a.get('user')) === 'v3', 2_000)
      await b.delete('user')
      await until(async () => (await a.get('user')) === undefined, 2_000)
    })

    it('an L2 hit with tags sees an invalidation made by another instance (no bus, no L1)', async () => {
      fresh()
      const [a, b] = await Promise.all([on({ bus: false, l1: false }), on({ bus: false, l1: false })])
      await a.set('p', 'v1', { tags: ['t1', 't2', 't3'] })
      expect(await b.get('p')).toBe('v1')
      await a.invalidateTags(['t3'])
      expect(await b.get('p')).toBeUndefined()
      await a.set('q', 'v1', { tags: ['t4'] })
      expect(await b.getMany(['p', 'q'])).toEqual([undefined, 'v1'])
      await a.invalidateTags(['t4'], { mode: 'delete' })
      expect(await b.getMany(['q'])).toEqual([undefined])
    })

    it('a tag record lost in Redis: entries stored under any earlier version are deleted (not fresh, no stale fallback); later writes and invalidations work', async () => {
      fresh()
      const direct = topology === TOPOLOGIES[0] ? admin : newCluster()
      const tagKey = `${prefix}t:{t}`
      const a = await on({ grace: '1m' })
      await a.set('A', 'written before any invalidation', { tags: ['t'] })
      await a.invalidateTags(['t'])
      await a.set('B', 'written after the invalidation', { tags: ['t'] })
      const before = Number(await direct.hget(tagKey, 'v'))
      expect(await direct.del(tagKey)).toBe(1)
      // new instances: one with the bus (L1), one reading every tag version from Redis
      const [b, n] = await Promise.all([on({ grace: '1m' }), on({ grace: '1m', bus: false, l1: false })])
      for (const c of [b, n]) {
        expect(await c.get('A')).toBeUndefined()
        expect(await c.get('B')).toBeUndefined()
        expect(await c.getMany(['A', 'B'])).toEqual([undefined, undefined])
        expect(await c.getEntry('A')).toBeUndefined()
      }
      // deleted, not expired: no stale fallback when the reload fails
      await expect(n.getOrSet('A', () => Promise.reject(new Error('db down')), { tags: ['t'] })).rejects.toThrow('db down')
      await expect(b.getOrSet('B', () => Promise.reject(new Error('db down')), { tags: ['t'] })).rejects.toThrow('db down')
      // the instance that wrote them (it knows every invalidation from its bus) still has A expired
      expect(await a.get('A')).toBeUndefined()

      // getOrSet reloads; the write recreates the record above every version before: fresh everywhere
      expect(await b.getOrSet('A', () => 'reloaded', { tags: ['t'] })).toBe('reloaded')
      expect(Number(await direct.hget(tagKey, 'v'))).toBeGreaterThan(before)
      expect(await b.get('A')).toBe('reloaded')
      expect(await n.get('A')).toBe('reloaded')
      await until(async () => (await a.get('A')) === 'reloaded', 2_000)
      expect(await n.get('B')).toBeUndefined() // stored under the lost record: still deleted
      const c = await on({ grace: '1m' })
      expect(await c.get('A')).toBe('reloaded')

      // a later invalidation still works (expire: a stale fallback again)
      await a.invalidateTags(['t'])
      for (const x of [a, b, c]) await until(async () => (await x.get('A')) === undefined, 2_000)
      expect(await n.get('A')).toBeUndefined()
      expect(await n.getOrSet('A', () => Promise.reject(new Error('db down')), { tags: ['t'] })).toBe('reloaded')
      expect(await c.getOrSet('A', () => 'again', { tags: ['t'] })).toBe('again')
      await until(async () => (await b.get('A')) === 'again', 2_000)
      expect(await n.get('A')).toBe('again')
    })

    it('tag versions never restart: invalidate, lose the record, invalidate -> a greater version', async () => {
      fresh()
      const direct = topology === TOPOLOGIES[0] ? admin : newCluster()
      const tagKey = `${prefix}t:{v}`
      const a = await on()
      await a.invalidateTags(['v'])
      const first = Number(await direct.hget(tagKey, 'v'))
      await direct.del(tagKey)
      await a.invalidateTags(['v'], { mode: 'delete' })
      const second = await direct.hgetall(tagKey)
      expect(Number(second.v)).toBeGreaterThan(first)
      expect(Number(second.d)).toBe(Number(second.v))
      await direct.del(tagKey)
      await a.set('k', 'v1', { tags: ['v'] }) // a write recreates it too
      const third = await direct.hgetall(tagKey)
      expect(Number(third.v)).toBeGreaterThan(Number(second.v))
      expect(third.d).toBe(third.v)
      // `a` observed the lost record's version before writing: what happened since is unknown, so
      // the value is stored under that version, already deleted; the next write is fresh.
      const b = await on({ bus: false, l1: false })
      expect(await b.get('k')).toBeUndefined()
      await a.set('k', 'v2', { tags: ['v'] })
      expect(await b.get('k')).toBe('v2')
      expect(await direct.hgetall(tagKey)).toEqual(third)
    })

    it('expire-by-tag keeps the value as a stale fallback in L2; delete-by-tag does not', async () => {
      fresh()
      const [a, b] = await Promise.all([on({ grace: '1m' }), on({ grace: '1m' })])
      await a.set('p', 'old', { tags: ['products'] })
      await a.invalidateTags(['products'])
      await until(async () => (await b.get('p')) === undefined, 2_000)
      expect(await b.getOrSet('p', () => Promise.reject(new Error('db down')))).toBe('old')
      await a.set('q', 'old', { tags: ['products'] })
      await a.invalidateTags(['products'], { mode: 'delete' })
      await sleep(20)
      await expect(b.getOrSet('q', () => Promise.reject(new Error('db down')))).rejects.toThrow('db down')
    })

    it('getMany/setMany/deleteMany/getOrSetMany over keys in many slots', async () => {
      fresh()
      const [a, b] = await Promise.all([on(), on()])
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
      expect(new Set(keys.map((k) => keySlot(`${prefix}j1::{${k}}`))).size).toBeGreaterThan(30)
      await a.setMany(keys.map((k, i) => ({ key: k, value: i, tags: i % 2 === 0 ? ['even'] : [`odd${i}`] })))
      expect(await b.getMany(keys)).toEqual(keys.map((_, i) => i))
      await a.invalidateTags(['even'], { mode: 'delete' })
      await until(async () => (await b.getMany(['k0', 'k2'])).every((v) => v === undefined), 2_000)
      expect(await b.getMany(['k0', 'k1', 'k2', 'k3'])).toEqual([undefined, 1, undefined, 3])
      const seen: string[][] = []
      const out = await b.getOrSetMany(['k0', 'k1', 'k2', 'new'], (missing) => {
        seen.push([...missing])
        return missing.map((k) => k.toUpperCase())
      })
      expect(out).toEqual(['K0', 1, 'K2', 'NEW'])
      expect(seen).toEqual([['k0', 'k2', 'new']])
      await until(async () => (await a.get('new')) === 'NEW', 2_000)
      expect(await a.deleteMany(keys.slice(10))).toBeGreaterThanOrEqual(30)
      await until(async () => (await b.getMany(keys.slice(10))).every((v) => v === undefined), 2_000)
      expect(await b.getMany(['k1', 'k3'])).toEqual([1, 3])
    })

    it('clear() clears one namespace on every instance and nothing else', async () => {
      fresh()
      const [a, b] = await Promise.all([on(), on()])
      await a.namespace('users').set('k', 'u')
      await a.namespace('posts').set('k', 'p')
      await a.set('k', 'root')
      expect(await b.namespace('users').get('k')).toBe('u')
      await a.namespace('users').clear()
      await until(async () => (await b.namespace('users').get('k')) === undefined, 2_000)
      expect(await a.namespace('users').get('k')).toBeUndefined()
      expect(await b.namespace('posts').get('k')).toBe('p')
      expect(await b.get('k')).toBe('root')
      await a.namespace('users').set('k', 'u2')
      await until(async () => (await b.namespace('users').get('k')) === 'u2', 2_000)
    })

    it('distributed lock: concurrent misses on several instances call the loader once', async () => {
      fresh()
      const instances = await Promise.all([1, 2, 3].map(() => on({ lock: { lease: '5s', wait: '3s' } })))
      let calls = 0
      const loader = async () => {
        calls++
        await sleep(80)
        return 'v'
      }
      const results = await Promise.all(instances.flatMap((c) => Array.from({ length: 20 }, () => c.getOrSet('hot', loader, { tags: ['h'] }))))
      expect(results.every((r) => r === 'v')).toBe(true)
      expect(calls).toBe(1)
    })

    it('getOrSetMany shares in-flight loads per key with getOrSet and other getOrSetMany calls', async () => {
      fresh()
      const c = await on()
      const batches: string[][] = []
      const single: string[] = []
      let release!: () => void
      const gate = new Promise<void>((r) => (release = r))
      const batch = async (missing: readonly string[]) => {
        batches.push([...missing])
        await gate
        return missing.map((k) => `v:${k}`)
      }
      const one = (k: string) => async () => {
        single.push(k)
        await gate
        return `v:${k}`
      }
      const first = c.getOrSetMany(['a', 'b', 'c'], batch)
      await until(() => batches.length === 1)
      const calls = [
        c.getOrSetMany(['b', 'c', 'd'], batch),
        c.getOrSet('a', one('a')),
        ...Array.from({ length: 10 }, () => c.getOrSetMany(['a', 'c', 'd', 'd'], batch)),
        c.getOrSet('e', one('e')),
      ]
      await until(() => batches.length === 2 && single.length === 1)
      const last = c.getOrSetMany(['a', 'e', 'f'], batch)
      await until(() => batches.length === 3)
      release()
      expect(await first).toEqual(['v:a', 'v:b', 'v:c'])
      const results = await Promise.all(calls)
      expect(results[0]).toEqual(['v:b', 'v:c', 'v:d'])
      expect(results[1]).toBe('v:a')
      for (const r of results.slice(2, 12)) expect(r).toEqual(['v:a', 'v:c', 'v:d', 'v:d'])
      expect(await last).toEqual(['v:a', 'v:e', 'v:f'])
      // every key loaded exactly once; each batch loader call got only keys not yet in flight
      expect(batches).toEqual([['a', 'b', 'c'], ['d'], ['f']])
      expect(single).toEqual(['e'])
      expect(c.stats().inflight).toBe(0)
      // a failing batch rejects every caller sharing its keys, and nothing stays in flight
      let fail!: (e: Error) => void
      const failing = c.getOrSetMany(['x', 'y'], () => new Promise<string[]>((_, rej) => (fail = rej)))
      await until(() => fail !== undefined)
      const sharing = c.getOrSet('x', () => 'never')
      fail(new Error('db down'))
      await expect(failing).rejects.toThrow('db down')
      await expect(sharing).rejects.toThrow('db down')
      expect(c.stats().inflight).toBe(0)
      expect(await c.getOrSetMany(['x'], (m) => m.map(() => 'ok'))).toEqual(['ok'])
    })
  })

  it('Redis Cluster: the master holding the bus subscription killed -> no throw, no hang, the bus moves to another node', async () => {
    fresh()
    const a = await instance({ grace: '1m', timeouts: { l2: 200 }, l2: { client: newCluster(), circuitBreaker: { failures: 3, cooldown: 200 } } })
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`)
    await a.setMany(keys.map((k) => ({ key: k, value: k })))
    // The node serving this instance's (only) pub/sub connection: killing it loses messages.
    const subs = await Promise.all(
      cluster.nodes.map(async (n) => {
        const c = new Redis(n.url)
        try {
          return String(await c.call('CLIENT', 'LIST', 'TYPE', 'pubsub')).includes('sub=1')
        } finally {
          c.disconnect()
        }
      }),
    )
    const victim = cluster.nodes[Math.max(0, subs.indexOf(true))]!
    const disconnects = a.stats().bus!.disconnects
    await victim.kill()
    try {
      const t0 = Date.now()
      for (let i = 0; i < 5; i++) {
        // L1 (within grace) or L2 of the live masters; after the bus moved, L1 was dropped and
        // keys on the dead master are reloaded or missing. Never a throw.
        const got = await a.getMany(keys)
        got.forEach((v, j) => expect([keys[j], 'loaded', undefined]).toContain(v))
        for (const k of keys) expect([k, 'loaded']).toContain(await a.getOrSet(k, () => 'loaded'))
        expect(await a.getOrSet(`new${i}`, () => `loaded${i}`)).toBe(`loaded${i}`)
        await a.set(`w${i}`, i)
        await a.invalidateTags(['t'])
        await a.delete(`w${i}`)
        await a.deleteMany(keys.slice(0, 2).map((k) => `x${k}`))
      }
      // each call waits at most one L2 timeout (200 ms) plus the sweeper tick; 5 rounds x ~30 calls
      expect(Date.now() - t0).toBeLessThan(5 * 30 * 300)
      if (subs.includes(true)) {
        await until(() => a.stats().bus!.disconnects > disconnects, 10_000)
        await until(() => a.stats().bus!.connected, 10_000)
      }
    } finally {
      await victim.restart()
    }
    await until(async () => {
      await a.get(`probe${Date.now()}`)
      return a.stats().l2.circuit === 'closed'
    }, 20_000)
  }, 60_000)
})
