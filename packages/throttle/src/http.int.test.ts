import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createPipeline, type Feature } from '@ri/core'
import { createNodeHandler } from '@ri/core/node'
import { describeWithRedis, type RedisServer, startRedis } from '@ri/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createThrottle, type ThrottleOptions, throttled } from './index.js'

async function serve(features: Feature[], trustProxy?: 'loopback') {
  const pipeline = createPipeline(features, trustProxy ? { trustProxy } : {})
  const server = http.createServer(
    createNodeHandler(pipeline, [
      { method: 'GET', path: '/products/:id', handler: (_q, _s, ctx) => ctx.json(200, { id: ctx.params.id }) },
      { method: 'POST', path: '/products/sync', handler: (_q, _s, ctx) => ctx.json(202, { ok: true }) },
      { method: 'GET', path: '/fail', handler: (_q, _s, ctx) => ctx.json(500, { error: 'boom' }) },
      { method: 'GET', path: '/health', handler: (_q, _s, ctx) => ctx.json(200, { ok: true }) },
    ]),
  )
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    get: (path: string, headers: Record<string, string> = {}, method = 'GET') => fetch(base + path, { method, headers }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

describeWithRedis('@ri/throttle over real HTTP with a real Redis', () => {
  let redisServer: RedisServer
  let redis: Redis
  let n = 0
  const make = (opts: Omit<ThrottleOptions, 'store'>) => createThrottle({ ...opts, store: { redis, prefix: `t${++n}` } })
  beforeAll(async () => {
    redisServer = await startRedis()
    redis = new Redis(redisServer.url)
    await new Promise<void>((r) => redis.once('ready', () => r()))
  })
  afterAll(async () => {
    redis?.disconnect()
    await redisServer?.stop()
  })

  it('a client already over its limit is refused from memory: no Redis round trip, reported as blocked-in-memory', async () => {
    const throttle = make({ rules: { 'GET /products/:id': { limit: 2, window: '30s' } } })
    const results: string[] = []
    throttle.events.on('throttle.decision', (e) => results.push(e.result))
    const app = await serve([throttle.feature()])
    const evals = async () => {
      const info = await redis.info('commandstats')
      return [...info.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[2]), 0)
    }
    try {
      for (let i = 0; i < 3; i++) await (await app.get('/products/1')).arrayBuffer()
      expect(results).toEqual(['allowed', 'allowed', 'limited'])
      const before = await evals()
      for (let i = 0; i < 5; i++) {
        const res = await app.get('/products/1')
        expect(res.status).toBe(429)
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
        await res.arrayBuffer()
      }
      expect(await evals()).toBe(before)
      expect(results.slice(3)).toEqual(Array(5).fill('blocked-in-memory'))
    } finally {
      await app.close()
    }
  })

  it('sets RateLimit-Policy / RateLimit at every step, then 429 with Retry-After and problem+json', async () => {
    const throttle = make({ rules: { 'GET /products/:id': { limit: 3, window: '20s' } } })
    const app = await serve([throttle.feature()])
    try {
      const seen: Array<[number, string | null]> = []
      for (let i = 0; i < 4; i++) {
        const res = await app.get(`/products/${i}`)
        expect(res.headers.get('ratelimit-policy')).toBe('"3-per-20s";q=3;w=20')
        seen.push([res.status, res.headers.get('ratelimit')])
        if (res.status === 429) {
          const retry = Number(res.headers.get('retry-after'))
          expect(retry).toBeGreaterThanOrEqual(1)
          expect(retry).toBeLessThanOrEqual(20)
          expect(res.headers.get('content-type')).toBe('application/problem+json')
          const body = (await res.json()) as Record<string, unknown>
          expect(body.status).toBe(429)
          expect(body['violated-policies']).toEqual(['3-per-20s'])
        } else await res.arrayBuffer()
      }
      // Different raw paths, one route template: one bucket.
      expect(seen.map(([s]) => s)).toEqual([200, 200, 200, 429])
      expect(seen.map(([, h]) => h!.replace(/t=\d+/, 't=T'))).toEqual(['"3-per-20s";r=2;t=T', '"3-per-20s";r=1;t=T', '"3-per-20s";r=0;t=T', '"3-per-20s";r=0;t=T'])
      for (const [, h] of seen) {
        const t = Number(/t=(\d+)/.exec(h!)![1])
        expect(t).toBeGreaterThanOrEqual(19)
        expect(t).toBeLessThanOrEqual(20)
      }
    } finally {
      await app.close()
    }
  })

  it('legacy headers when asked; opt-out routes carry none', async () => {
    const throttle = make({ headers: 'legacy', default: { limit: 2, window: '30s' }, rules: { 'GET /health': false } })
    const app = await serve([throttle.feature()])
    try {
      const a = await app.get('/products/1')
      expect([a.headers.get('x-ratelimit-limit'), a.headers.get('x-ratelimit-remaining'), a.headers.get('x-ratelimit-reset')]).toEqual(['2', '1', '30'])
      expect(a.headers.get('ratelimit')).toBeNull()
      await app.get('/products/1')
      const c = await app.get('/products/1')
      expect(c.status).toBe(429)
      expect(c.headers.get('x-ratelimit-remaining')).toBe('0')
      for (let i = 0; i < 5; i++) {
        const h = await app.get('/health')
        expect(h.status).toBe(200)
        expect(h.headers.get('x-ratelimit-limit')).toBeNull()
      }
    } finally {
      await app.close()
    }
  })

  it('ignores a spoofed X-Forwarded-For without trustProxy; groups IPv6 by /64 behind a trusted proxy', async () => {
    const direct = await serve([make({ default: { limit: 3, window: '30s' } }).feature()])
    try {
      const statuses: number[] = []
      for (let i = 0; i < 4; i++) statuses.push((await direct.get('/products/1', { 'x-forwarded-for': `10.9.8.${i}` })).status)
      expect(statuses).toEqual([200, 200, 200, 429])
    } finally {
      await direct.close()
    }
    const proxied = await serve([make({ default: { limit: 2, window: '30s' } }).feature()], 'loopback')
    try {
      const s = async (xff: string) => (await proxied.get('/products/1', { 'x-forwarded-for': xff })).status
      expect(await s('2001:db8:1:2::1')).toBe(200)
      expect(await s('2001:db8:1:2:ffff:eeee:dddd:9')).toBe(200)
      expect(await s('2001:db8:1:2:abcd::77')).toBe(429) // same /64: same bucket
      expect(await s('2001:db8:1:3::1')).toBe(200) // next /64: its own bucket
      expect(await s('203.0.113.5')).toBe(200)
    } finally {
      await proxied.close()
    }
  })

  it('counts one Redis round trip per decision, none for a key blocked in memory', async () => {
    const throttle = make({ default: { limit: 5, window: '30s' } })
    const pipeline = createPipeline([])
    const ex = () => pipeline.exchange({ method: 'GET', url: '/x', route: '/x', headers: {}, remoteAddress: '192.0.2.44' })
    const calls = async () => {
      const info = await redis.info('commandstats')
      let total = 0
      // Commands a client sent (the script's own SET/INCRBY/PTTL run inside Redis and are not round trips).
      for (const m of info.matchAll(/^cmdstat_(evalsha|eval|multi):calls=(\d+)/gm)) total += Number(m[2])
      return total
    }
    await throttle.check(ex()) // loads the script (EVALSHA -> NOSCRIPT -> EVAL once)
    const c0 = await calls()
    for (let i = 0; i < 5; i++) await throttle.check(ex())
    const c1 = await calls()
    expect(c1 - c0).toBe(5) // 4 allowed + the refusal that trips the in-memory block
    for (let i = 0; i < 20; i++) expect((await throttle.check(ex())).allowed).toBe(false)
    expect((await calls()) - c1).toBe(0)
  })

  it('several limits: the strictest decides, every limit is reported, refused requests use no other quota', async () => {
    const throttle = make({ default: { limits: [{ limit: 2, window: '2s', name: 'burst' }, { limit: 5, window: '1h', name: 'hourly' }] } })
    const app = await serve([throttle.feature()])
    try {
      const rl: string[] = []
      for (let i = 0; i < 3; i++) {
        const res = await app.get('/products/1')
        rl.push(`${res.status} ${res.headers.get('ratelimit')!.replace(/t=\d+/g, 't')}`)
      }
      expect(res0(rl)).toEqual(['200 "burst";r=1;t, "hourly";r=4;t', '200 "burst";r=0;t, "hourly";r=3;t', '429 "burst";r=0;t, "hourly";r=3;t'])
      // Window reset: the 2s window ends, the hourly one carries on.
      await new Promise((r) => setTimeout(r, 2100))
      const after = await app.get('/products/1')
      expect(after.status).toBe(200)
      expect(after.headers.get('ratelimit')!.replace(/t=\d+/g, 't')).toBe('"burst";r=1;t, "hourly";r=2;t')
    } finally {
      await app.close()
    }
    function res0(x: string[]) {
      return x
    }
  })

  it('cost, skip predicate, refunds of failed responses, and a route-level throttled() feature', async () => {
    const throttle = make({
      default: false,
      rules: {
        'POST /products/sync': { limit: 10, window: '30s', cost: 4 },
        'GET /fail': { limit: 2, window: '30s', skipFailedRequests: true },
        'GET /products/:id': { limit: 2, window: '30s', skip: (ex) => ex.header('x-internal') === 'yes' },
      },
    })
    const perRoute = throttled({ limit: 1, window: '30s', name: 'sync-route', throttle })
    // What an adapter does with a route-level feature: run it for its route only.
    const onlySync: Feature = {
      name: perRoute.name,
      onRequest: (ex) => (ex.route === '/products/sync' ? perRoute.onRequest!(ex) : undefined),
    }
    const app = await serve([throttle.feature(), onlySync])
    try {
      const sync = await app.get('/products/sync', {}, 'POST')
      // Both features report: the app rule (cost 4 of 10) and the route-level limit.
      expect(sync.headers.get('ratelimit')!.replace(/t=\d+/g, 't')).toBe('"10-per-30s";r=6;t, "sync-route";r=0;t')
      const again = await app.get('/products/sync', {}, 'POST')
      expect(again.status).toBe(429)
      for (let i = 0; i < 4; i++) expect((await app.get('/fail')).status).toBe(500)
      // Failed responses were refunded: the quota is untouched.
      expect((await app.get('/fail')).headers.get('ratelimit')).toMatch(/r=1;/)
      for (let i = 0; i < 5; i++) expect((await app.get('/products/1', { 'x-internal': 'yes' })).status).toBe(200)
      expect((await app.get('/products/1')).headers.get('ratelimit')).toMatch(/r=1;/)
    } finally {
      await app.close()
    }
  })

  it('hostile keys cannot escape their prefix or pin a cluster slot', async () => {
    const throttle = make({ default: { limit: 10, window: '30s', key: (ex) => ex.header('x-user') } })
    const pipeline = createPipeline([])
    const hostile = ['a'.repeat(5000), 'line\nbreak\r\nSET x y', '*', 'user:{tag}', '{}', 'x} {y', '../../etc', '\u0000nul', 'ok-user_1']
    for (const user of hostile) {
      const r = await throttle.check(pipeline.exchange({ method: 'GET', url: '/k', route: '/k', headers: { 'x-user': user }, remoteAddress: '192.0.2.9' }))
      expect(r.allowed).toBe(true)
      expect(r.remaining).toBe(9) // each hostile value is its own bucket: no collisions
    }
    const keys = await redis.keys(`t${n}:*`)
    expect(keys).toHaveLength(hostile.length)
    for (const k of keys) {
      expect(k).toMatch(/^t\d+:default~[0-9a-z]+:10-per-30s~[0-9a-z]+:(u=[A-Za-z0-9._:/@+= -]+|#[A-Za-z0-9_-]{27})$/)
      expect(k.length).toBeLessThan(100)
    }
  })
})

describe('no Redis needed', () => {
  it('memory store works over HTTP as well', async () => {
    const app = await serve([createThrottle({ default: { limit: 1, window: '10s' } }).feature()])
    try {
      expect((await app.get('/products/1')).status).toBe(200)
      expect((await app.get('/products/1')).status).toBe(429)
    } finally {
      await app.close()
    }
  })
})
