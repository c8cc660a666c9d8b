import { createPipeline, type Exchange, RiConfigError, ThrottleLimitError } from '@ri/core'
import { describe, expect, it } from 'vitest'
import { createThrottle, skipThrottle, type ThrottleOptions } from './index.js'

const pipeline = createPipeline([])
const ex = (route: string | undefined, ip = '192.0.2.1', method = 'GET', headers: Record<string, string> = {}): Exchange =>
  pipeline.exchange({ method, url: route ?? '/nowhere', route, headers, remoteAddress: ip })

describe('createThrottle options', () => {
  it('names every invalid option in one RiConfigError', () => {
    const bad = {
      store: 'redis',
      headers: 'draft',
      ipv6Prefix: 200,
      rules: { 'FETCH!! products': { limit: 1, window: '1s' }, 'GET /a': { limit: 0, window: '1500ms', cost: -1, per: 'user' }, 'GET /b': { limits: [] } },
      default: { limit: 5, windwo: '1m' },
      insurance: { timeout: 'soon' },
      typo: true,
    } as unknown as ThrottleOptions
    let error: unknown
    try {
      createThrottle(bad)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(RiConfigError)
    const options = (error as RiConfigError).problems.map((p) => p.option)
    for (const o of [
      'createThrottle.store',
      'createThrottle.headers',
      'createThrottle.ipv6Prefix',
      "createThrottle.rules['FETCH!! products']",
      "createThrottle.rules['GET /a'].limit",
      "createThrottle.rules['GET /a'].window",
      "createThrottle.rules['GET /a'].cost",
      "createThrottle.rules['GET /a'].per",
      "createThrottle.rules['GET /b'].limits",
      'createThrottle.default.windwo',
      'createThrottle.insurance.timeout',
      'createThrottle.typo',
    ]) {
      expect(options).toContain(o)
    }
    expect((error as RiConfigError).message).toMatch(/did you mean 'window'/)
  })

  it('defaults to 100 per minute per ip in memory with IETF headers', async () => {
    const t = createThrottle()
    const r = await t.check(ex('/x'))
    expect(r).toMatchObject({ allowed: true, limit: 100, remaining: 99, policy: '100-per-1m', rule: 'default', store: 'memory', reason: 'allowed' })
    expect(t.headersFor(r)).toEqual({ 'ratelimit-policy': '"100-per-1m";q=100;w=60', ratelimit: '"100-per-1m";r=99;t=60' })
  })
})

describe('rules per route template', () => {
  const t = createThrottle({
    default: { limit: 1, window: '1m' },
    rules: {
      'GET /products/:id': { limit: 3, window: '1m' },
      '/products/:id': { limit: 4, window: '1m' },
      '* /admin/*': { limit: 5, window: '1m' },
      'GET,POST /admin/users/*': { limit: 6, window: '1m' },
      'GET /health': false,
    },
  })
  it('picks the most specific rule; unmatched routes use the default', async () => {
    expect((await t.check(ex('/products/:id'))).limit).toBe(3)
    expect((await t.check(ex('/products/:id', undefined, 'HEAD'))).limit).toBe(3)
    expect((await t.check(ex('/products/:id', undefined, 'DELETE'))).limit).toBe(4)
    expect((await t.check(ex('/admin/settings'))).limit).toBe(5)
    expect((await t.check(ex('/admin/users/:id', undefined, 'POST'))).limit).toBe(6)
    expect((await t.check(ex('/other'))).limit).toBe(1)
    expect((await t.check(ex(undefined))).limit).toBe(1)
  })
  it('opts a route out', async () => {
    for (let i = 0; i < 5; i++) expect(await t.check(ex('/health'))).toMatchObject({ allowed: true, reason: 'skipped' })
  })
  it('skipThrottle() marks one exchange as not counted', async () => {
    const e = ex('/other', '192.0.2.200')
    skipThrottle(e)
    expect((await t.check(e)).reason).toBe('skipped')
    expect((await t.check(ex('/other', '192.0.2.200'))).remaining).toBe(0)
  })
})

describe('limits, cost, keys, skip, lists', () => {
  it('several limits: the strictest decides and all are reported', async () => {
    const t = createThrottle({ default: { limits: [{ limit: 2, window: '1s', name: 'second' }, { limit: 3, window: '1h', name: 'hour' }] } })
    const results = []
    for (let i = 0; i < 4; i++) results.push(await t.check(ex('/a')))
    expect(results.map((r) => [r.allowed, r.policy, r.remaining])).toEqual([
      [true, 'second', 1],
      [true, 'second', 0],
      [false, 'second', 0],
      [false, 'second', 0],
    ])
    expect(results[3]!.limits.map((l) => [l.policy, l.remaining, l.allowed])).toEqual([
      ['second', 0, false],
      ['hour', 1, true], // refused requests gave their hourly quota back
    ])
    expect(t.headersFor(results[3]!).ratelimit).toMatch(/^"second";r=0;t=1, "hour";r=1;t=3600$/)
    expect(t.headersFor(results[3]!)['retry-after']).toBe('1')
  })

  it('per-request cost, constant or computed', async () => {
    const t = createThrottle({ default: { limit: 10, window: '1m', cost: (e) => Number(e.header('x-cost') ?? 1) } })
    expect((await t.check(ex('/a', undefined, 'GET', { 'x-cost': '7' }))).remaining).toBe(3)
    expect((await t.check(ex('/a', undefined, 'GET', { 'x-cost': '2.5' }))).remaining).toBe(0)
    expect((await t.check(ex('/a'))).allowed).toBe(false)
  })

  it('keys by user function, falling back to ip; composite keys; per-route buckets', async () => {
    const t = createThrottle({ default: { limit: 1, window: '1m', key: (e) => e.header('x-user') } })
    expect((await t.check(ex('/a', '192.0.2.1', 'GET', { 'x-user': 'alice' }))).allowed).toBe(true)
    expect((await t.check(ex('/a', '192.0.2.2', 'GET', { 'x-user': 'alice' }))).allowed).toBe(false)
    expect((await t.check(ex('/a', '192.0.2.1'))).allowed).toBe(true) // anonymous: by ip
    expect((await t.check(ex('/a', '192.0.2.1', 'GET', { 'x-user': 'ip=192.0.2.3' }))).allowed).toBe(true)
    expect((await t.check(ex('/a', '192.0.2.3'))).allowed).toBe(true) // a user value cannot hit an ip bucket
    const c = createThrottle({ default: { limit: 1, window: '1m', key: ['ip', (e) => e.header('x-app')], per: 'route' } })
    expect((await c.check(ex('/a', '192.0.2.1', 'GET', { 'x-app': 'one' }))).allowed).toBe(true)
    expect((await c.check(ex('/a', '192.0.2.1', 'GET', { 'x-app': 'two' }))).allowed).toBe(true)
    expect((await c.check(ex('/b', '192.0.2.1', 'GET', { 'x-app': 'one' }))).allowed).toBe(true)
    expect((await c.check(ex('/a', '192.0.2.1', 'GET', { 'x-app': 'one' }))).allowed).toBe(false)
  })

  it('a throwing key function keys by ip instead of failing the request', async () => {
    const t = createThrottle({
      default: {
        limit: 1,
        window: '1m',
        key: () => {
          throw new Error('no session store')
        },
      },
    })
    expect((await t.check(ex('/a'))).allowed).toBe(true)
    expect((await t.check(ex('/a'))).allowed).toBe(false)
  })

  it('IPv6 clients share a /64 bucket by default', async () => {
    const t = createThrottle({ default: { limit: 1, window: '1m' } })
    expect((await t.check(ex('/a', '2001:db8:aa:bb::1'))).allowed).toBe(true)
    expect((await t.check(ex('/a', '2001:db8:aa:bb:1234:5678:9abc:def0'))).allowed).toBe(false)
    expect((await t.check(ex('/a', '2001:db8:aa:bc::1'))).allowed).toBe(true)
    const wide = createThrottle({ default: { limit: 1, window: '1m' }, ipv6Prefix: 128 })
    expect((await wide.check(ex('/a', '2001:db8:aa:bb::1'))).allowed).toBe(true)
    expect((await wide.check(ex('/a', '2001:db8:aa:bb::2'))).allowed).toBe(true)
  })

  it('skip predicates, allow and deny lists', async () => {
    const t = createThrottle({
      default: { limit: 1, window: '1m', skip: (e) => e.header('x-internal') === '1', allow: ['10.0.0.0/8', '2001:db8:ffff::/48'], deny: ['198.51.100.7', '203.0.113.0/24'] },
    })
    for (let i = 0; i < 3; i++) {
      expect((await t.check(ex('/a', '192.0.2.9', 'GET', { 'x-internal': '1' }))).reason).toBe('skipped')
      expect((await t.check(ex('/a', '10.1.2.3'))).reason).toBe('skipped')
      expect((await t.check(ex('/a', '2001:db8:ffff:1::5'))).reason).toBe('skipped')
    }
    expect(await t.check(ex('/a', '203.0.113.44'))).toMatchObject({ allowed: false, reason: 'denied' })
    expect(await t.check(ex('/a', '198.51.100.7'))).toMatchObject({ allowed: false, reason: 'denied' })
    expect((await t.check(ex('/a', '198.51.100.8'))).allowed).toBe(true)
  })

  it('resets when the window ends', async () => {
    const t = createThrottle({ default: { limit: 1, window: '1s' } })
    expect((await t.check(ex('/a'))).allowed).toBe(true)
    const refused = await t.check(ex('/a'))
    expect(refused.allowed).toBe(false)
    expect(refused.retryAfterMs).toBeGreaterThan(0)
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1000)
    await new Promise((r) => setTimeout(r, refused.retryAfterMs + 50))
    expect((await t.check(ex('/a'))).allowed).toBe(true)
  })

  it('burst allowance lets a short burst through once the main window is spent', async () => {
    const t = createThrottle({ default: { limit: 2, window: '1m', burst: { limit: 2, window: '10s' } } })
    const allowed = []
    for (let i = 0; i < 5; i++) allowed.push((await t.check(ex('/a'))).allowed)
    expect(allowed).toEqual([true, true, true, true, false])
  })
})

describe('feature(): answers, headers, refunds, events', () => {
  it('429 with Retry-After and problem+json; 403 for deny lists; custom onLimited', async () => {
    const t = createThrottle({ default: { limit: 1, window: '1m', deny: ['198.51.100.0/24'] } })
    const p = createPipeline([t.feature()])
    const e1 = p.exchange({ method: 'GET', url: '/a', route: '/a', headers: {}, remoteAddress: '192.0.2.1' })
    expect(await p.request(e1)).toBeUndefined()
    expect(e1.responseHeaders.ratelimit).toBe('"1-per-1m";r=0;t=60')
    const a = await p.request(p.exchange({ method: 'GET', url: '/a', route: '/a', headers: {}, remoteAddress: '192.0.2.1' }))
    expect(a?.status).toBe(429)
    expect(a?.headers?.['retry-after']).toBe('60')
    expect(JSON.parse(String(a?.body))).toMatchObject({ status: 429, 'violated-policies': ['1-per-1m'] })
    const d = await p.request(p.exchange({ method: 'GET', url: '/a', route: '/a', headers: {}, remoteAddress: '198.51.100.3' }))
    expect(d?.status).toBe(403)

    const custom = createThrottle({ default: { limit: 1, window: '1m' }, headers: 'both', onLimited: () => ({ status: 429, headers: { 'content-type': 'text/plain' }, body: 'slow down' }) })
    const cp = createPipeline([custom.feature()])
    await cp.request(cp.exchange({ method: 'GET', url: '/a', route: '/a', headers: {}, remoteAddress: '192.0.2.1' }))
    const c = await cp.request(cp.exchange({ method: 'GET', url: '/a', route: '/a', headers: {}, remoteAddress: '192.0.2.1' }))
    expect(c).toMatchObject({ status: 429, body: 'slow down', headers: { 'content-type': 'text/plain', 'x-ratelimit-remaining': '0', 'retry-after': '60' } })
  })

  it('headers: false sends none', async () => {
    const t = createThrottle({ default: { limit: 5, window: '1m' }, headers: false })
    const p = createPipeline([t.feature()])
    const e = p.exchange({ method: 'GET', url: '/a', route: '/a', headers: {}, remoteAddress: '192.0.2.1' })
    await p.request(e)
    expect(e.responseHeaders.ratelimit).toBeUndefined()
  })

  it('refunds successful responses when asked', async () => {
    const t = createThrottle({ default: { limit: 2, window: '1m', skipSuccessfulRequests: true } })
    const p = createPipeline([t.feature()])
    for (let i = 0; i < 5; i++) {
      const e = p.exchange({ method: 'GET', url: '/a', route: '/a', headers: {}, remoteAddress: '192.0.2.1' })
      expect(await p.request(e)).toBeUndefined()
      p.finish(e, { status: 200 })
      await Promise.resolve()
    }
    const e = p.exchange({ method: 'GET', url: '/a', route: '/a', headers: {}, remoteAddress: '192.0.2.1' })
    await p.request(e)
    p.finish(e, { status: 500 }) // failures still count
    expect((await t.check(ex('/a'))).remaining).toBe(0)
  })

  it('publishes a decision event per request', async () => {
    const t = createThrottle({ default: { limit: 1, window: '1m' }, rules: { 'GET /s': { limit: 1, window: '1m', skip: () => true } } })
    const seen: string[] = []
    t.events.on('throttle.decision', (e) => seen.push(`${e.rule}:${e.policy}:${e.result}:${e.store}`))
    await t.check(ex('/a'))
    await t.check(ex('/a'))
    await t.check(ex('/s'))
    expect(seen).toEqual(['default:1-per-1m:allowed:memory', 'default:1-per-1m:limited:memory', 'GET /s::skipped:none'])
  })
})

describe('queue()', () => {
  it('waits for quota instead of refusing, and refuses when the queue is full', async () => {
    const t = createThrottle({ default: false })
    const q = t.queue({ limit: 2, window: '1s', maxQueueSize: 1 })
    expect(await q.take()).toBe(1)
    expect(await q.take()).toBe(0)
    const waiting = q.take()
    await expect(q.take()).rejects.toBeInstanceOf(ThrottleLimitError)
    const t0 = Date.now()
    expect(await waiting).toBe(1)
    expect(Date.now() - t0).toBeGreaterThan(100)
  })
})
