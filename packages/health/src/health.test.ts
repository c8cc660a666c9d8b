import { createEvents, createPipeline } from '@ri/core'
import { afterEach, describe, expect, it } from 'vitest'
import { createHealth, type Health } from './health.js'
import { sleep } from './test-helpers.js'
import type { HealthOptions } from './options.js'

const made: Health[] = []
function make(options: HealthOptions): Health {
  const h = createHealth({ shutdown: false, ...options })
  made.push(h)
  return h
}
afterEach(() => {
  for (const h of made.splice(0)) h.close()
})

describe('readiness checks', () => {
  it('passes with a responseTime entry per check, keyed component:measurement', async () => {
    const health = make({ checks: { 'api:responseTime': async () => {} } })
    const report = await health.readiness()
    expect(report.httpStatus).toBe(200)
    expect(report.body.status).toBe('pass')
    const [entry] = report.body.checks!['api:responseTime']!
    expect(entry).toMatchObject({ status: 'pass', observedUnit: 'ms' })
    expect(typeof entry!.observedValue).toBe('number')
    expect(new Date(entry!.time).toISOString()).toBe(entry!.time)
  })

  it('times a hanging check out, aborts its signal and fails readiness', async () => {
    let aborted: unknown
    const health = make({
      checks: [
        {
          name: 'slow:responseTime',
          timeoutMs: 40,
          check: (signal) =>
            new Promise(() => {
              signal.addEventListener('abort', () => (aborted = signal.reason))
            }),
        },
      ],
    })
    const started = performance.now()
    const report = await health.readiness()
    const took = performance.now() - started
    expect(report.httpStatus).toBe(503)
    expect(report.body.checks!['slow:responseTime']![0]).toMatchObject({ status: 'fail', output: 'timed out after 40 ms' })
    expect((aborted as { code?: string }).code).toBe('RI_TIMEOUT')
    expect(took).toBeLessThan(40 * 20)
  })

  it('reports a non-critical failure as warn and stays 200', async () => {
    const health = make({
      checks: [
        { name: 'search:responseTime', critical: false, check: async () => Promise.reject(new Error('connect ECONNREFUSED')) },
        { name: 'db:responseTime', check: async () => {} },
      ],
    })
    const report = await health.readiness()
    expect(report.httpStatus).toBe(200)
    expect(report.body.status).toBe('warn')
    expect(report.body.checks!['search:responseTime']![0]).toMatchObject({ status: 'warn', output: 'connect ECONNREFUSED' })
  })

  it('accepts results: objects, arrays (multi-node), false, and strips __proto__', async () => {
    const health = make({
      checks: {
        'a:x': () => ({ status: 'warn', observedValue: 3, observedUnit: 'count', output: 'high' }),
        'b:x': () => [
          { componentId: 'n1', status: 'pass' },
          { componentId: 'n2', status: 'fail', output: 'down' },
        ],
        'c:x': () => false,
        'd:x': () => JSON.parse('{"__proto__": {"polluted": true}, "observedValue": 1, "observedUnit": "u"}'),
        'e:x': () => 'PONG',
      },
    })
    const { body, httpStatus } = await health.readiness()
    expect(httpStatus).toBe(503)
    expect(body.checks!['a:x']![0]).toMatchObject({ status: 'warn', observedValue: 3, observedUnit: 'count', output: 'high' })
    expect(body.checks!['b:x']!.map((e) => e.status)).toEqual(['pass', 'fail'])
    expect(body.checks!['c:x']![0]).toMatchObject({ status: 'fail', output: 'check returned false' })
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.keys(body.checks!['d:x']![0]!)).not.toContain('__proto__')
    expect(body.checks!['e:x']![0]!.status).toBe('pass')
  })

  it('answers within the overall budget; the late result lands in the cache', async () => {
    const health = make({
      budgetMs: 60,
      checks: [{ name: 'slow:responseTime', timeoutMs: 5_000, check: () => sleep(600) }],
    })
    const started = performance.now()
    const first = await health.readiness()
    expect(performance.now() - started).toBeLessThan(550)
    expect(first.body.checks!['slow:responseTime']![0]).toMatchObject({ status: 'fail', output: 'no result within the 60 ms budget' })
    await sleep(700)
    const second = await health.readiness()
    expect(second.body.status).toBe('pass')
  })
})

describe('caching and single flight', () => {
  it('a flood of concurrent probes makes one dependency call', async () => {
    let calls = 0
    const health = make({ cacheMs: 5_000, checks: { 'dep:responseTime': async () => void calls++ } })
    const reports = await Promise.all(Array.from({ length: 1000 }, () => health.readiness()))
    expect(calls).toBe(1)
    expect(reports.every((r) => r.httpStatus === 200)).toBe(true)
  })

  it('refreshes at most once per cacheMs under a sustained flood', async () => {
    let calls = 0
    const health = make({
      cacheMs: 50,
      checks: {
        'dep:responseTime': async () => {
          calls++
          await sleep(5)
        },
      },
    })
    const started = performance.now()
    let probes = 0
    while (performance.now() - started < 500) {
      await Promise.all(Array.from({ length: 20 }, () => health.readiness()))
      probes += 20
      await sleep(1)
    }
    const elapsed = performance.now() - started
    // One call per 50 ms window (+1 for the first call, +1 for timing slack), whatever the probe count.
    expect(calls).toBeLessThanOrEqual(Math.ceil(elapsed / 50) + 2)
    expect(calls).toBeGreaterThanOrEqual(2)
    expect(calls).toBeLessThan(probes / 10)
  })

  it('never stacks a second call on a check still running past its timeout', async () => {
    let calls = 0
    const health = make({
      cacheMs: 10,
      checks: [{ name: 'stuck:responseTime', timeoutMs: 20, check: () => new Promise(() => void calls++) }],
    })
    const first = await health.readiness()
    expect(first.body.checks!['stuck:responseTime']![0]!.output).toBe('timed out after 20 ms')
    for (let i = 0; i < 10; i++) {
      await sleep(15)
      await health.readiness()
    }
    const last = await health.readiness()
    expect(calls).toBe(1)
    expect(last.body.checks!['stuck:responseTime']![0]!.output).toMatch(/previous check still running after \d+ ms; not started again/)
  })

  it('serves a stale result at once while one refresh runs, and waits when it is too old', async () => {
    let calls = 0
    let delay = 0
    const health = make({
      cacheMs: 20,
      maxStaleMs: 1_000,
      checks: {
        'dep:responseTime': async () => {
          calls++
          await sleep(delay)
        },
      },
    })
    const time = async () => (await health.readiness()).body.checks!['dep:responseTime']![0]!.time
    const first = await time()
    delay = 100
    await sleep(30) // stale but within maxStaleMs: answered with the old result, refresh started
    expect(await time()).toBe(first)
    expect(calls).toBe(2)
    await sleep(1_200) // the refresh finished long ago and is now older than maxStaleMs
    const askedAt = Date.now()
    const waited = await time()
    expect(calls).toBe(3)
    // The probe waited for a new observation instead of answering with the 1.2 s old one.
    expect(Date.parse(waited)).toBeGreaterThanOrEqual(askedAt)
  })
})

describe('startup, degradations and events', () => {
  it('readiness and startup fail until startup tasks resolve', async () => {
    const health = make({ checks: { 'a:x': async () => {} } })
    let finish!: () => void
    const task = health.startupTask('migrations', new Promise<void>((r) => (finish = r)))
    expect(health.state).toBe('starting')
    expect((await health.readiness()).body).toMatchObject({ status: 'fail', output: 'starting' })
    expect(health.startup()).toMatchObject({ httpStatus: 503, body: { status: 'fail', output: '1 startup task(s) pending' } })
    finish()
    await task
    expect(health.state).toBe('ready')
    expect(health.startup().httpStatus).toBe(200)
    expect(health.startup().body.checks!['startup:tasks']![0]).toMatchObject({ componentId: 'migrations', status: 'pass' })
    expect((await health.readiness()).httpStatus).toBe(200)
  })

  it('a failed startup task keeps startup failing', async () => {
    const health = make({})
    await health.startupTask('warmup', () => Promise.reject(new Error('cache warmup failed')))
    expect(health.startup()).toMatchObject({ httpStatus: 503, body: { output: 'startup task failed: warmup (cache warmup failed)' } })
  })

  it('manual startup waits for startupComplete()', async () => {
    const health = make({ startup: { manual: true } })
    expect(health.startup().httpStatus).toBe(503)
    health.startupComplete()
    expect(health.startup().httpStatus).toBe(200)
  })

  it('degradations from the API and from core events are warn, and clear on recovery', async () => {
    const events = createEvents()
    const health = make({ events, checks: { 'a:x': async () => {} } })
    events.emit('health.degradation', { component: 'cache:l2', degraded: true, output: 'L2 circuit open' })
    events.emit('throttle.insurance', { state: 'engaged' })
    health.degrade('search:index', 'reindexing')
    let report = await health.readiness()
    expect(report.httpStatus).toBe(200)
    expect(report.body.status).toBe('warn')
    expect(report.body.checks!['cache:l2']![0]).toMatchObject({ status: 'warn', output: 'L2 circuit open' })
    expect(report.body.checks!['throttle:store']![0]!.status).toBe('warn')
    expect(report.body.checks!['search:index']![0]!.output).toBe('reindexing')
    events.emit('health.degradation', { component: 'cache:l2', degraded: false })
    events.emit('throttle.insurance', { state: 'released' })
    health.recover('search:index')
    report = await health.readiness()
    expect(report.body.status).toBe('pass')
    expect(Object.keys(report.body.checks!)).toEqual(['a:x'])
    events.emit('cache.l2.circuit', { state: 'open' })
    expect((await health.readiness()).body.checks!['cache:l2']![0]!.status).toBe('warn')
  })

  it('publishes health.check per check run and health.state per transition', async () => {
    const events = createEvents()
    const seen: string[] = []
    events.on('health.check', (e) => seen.push(`check:${e.name}:${e.status}`))
    events.on('health.state', (e) => seen.push(`state:${e.state}`))
    const health = make({ events, cacheMs: 60_000, checks: { 'a:x': async () => {} } })
    await health.readiness()
    await health.readiness()
    await health.shutdown('test')
    expect(seen).toEqual(['state:ready', 'check:a:x:pass', 'state:draining', 'state:stopped'])
  })

  it('addCheck validates and registers a check at runtime', async () => {
    const health = make({})
    health.addCheck({ name: 'late:responseTime', check: async () => {} })
    expect(() => health.addCheck({ name: 'late:responseTime', check: async () => {} })).toThrow(/not used by another check/)
    expect(() => health.addCheck({ name: 'bad name', check: async () => {} })).toThrow(/component\[:measurement\]/)
    expect(Object.keys((await health.readiness()).body.checks!)).toEqual(['late:responseTime'])
  })
})

describe('probe routes', () => {
  it('a probe answered by the feature carries its path as route template; other requests keep theirs', async () => {
    const health = make({ paths: { readiness: '/readyz' } })
    const pipeline = createPipeline([health.feature()])
    const seen: Array<string | undefined> = []
    pipeline.events.on('http.request', (e) => void seen.push(e.route))
    for (const [method, url, route] of [
      ['GET', '/readyz?full=1', undefined],
      ['HEAD', '/health', undefined],
      ['GET', '/health/startup', '/custom'],
      ['POST', '/readyz', undefined],
      ['GET', '/users/1', undefined],
    ] as const) {
      const ex = pipeline.exchange({ method, url, route, headers: {} })
      const answer = await pipeline.request(ex)
      pipeline.finish(ex, { status: answer?.status ?? 404 })
    }
    // the router's template wins; POST is not a probe; unmatched stays unmatched
    expect(seen).toEqual(['/readyz', '/health', '/custom', undefined, undefined])
  })
})
