import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { createHealth, type Health } from './health.js'
import type { HealthOptions } from './options.js'
import { get, sleep, startServer, type TestServer } from './test-helpers.js'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function setup(options: HealthOptions): Promise<{ health: Health; srv: TestServer }> {
  const health = createHealth({ shutdown: { signals: [], exit: false }, ...options })
  const srv = await startServer(health, [
    { method: 'GET', path: '/hello', handler: (_req, _res, ctx) => ctx.json(200, { hello: 'world' }) },
  ])
  cleanup.push(() => health.close(), () => srv.close())
  return { health, srv }
}

describe('probes over HTTP', () => {
  it('serves application/health+json with no-store on the three paths', async () => {
    const { srv } = await setup({ checks: { 'dep:responseTime': async () => {} }, service: { version: '1', serviceId: 'api' } })
    for (const path of ['/health', '/health/ready', '/health/startup']) {
      const res = await get(srv.url + path)
      expect(res.status).toBe(200)
      expect(res.headers['content-type']).toBe('application/health+json; charset=utf-8')
      expect(res.headers['cache-control']).toBe('no-store')
      expect(res.json()).toMatchObject({ status: 'pass', version: '1', serviceId: 'api' })
    }
    const live = (await get(`${srv.url}/health`)).json()
    expect(live.checks.uptime[0]).toMatchObject({ status: 'pass', componentType: 'system', observedUnit: 's' })
    const ready = (await get(`${srv.url}/health/ready?probe=1`)).json()
    expect(ready.checks['dep:responseTime'][0]).toMatchObject({ status: 'pass', observedUnit: 'ms' })
    // Other routes and other methods go through untouched.
    expect((await get(`${srv.url}/hello`)).json()).toEqual({ hello: 'world' })
    expect((await get(`${srv.url}/health/ready`, { method: 'POST' })).status).toBe(404)
    const head = await get(`${srv.url}/health/ready`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.body).toBe('')
  })

  it('answers 503 with fail on a critical failure, and honours custom paths', async () => {
    const { srv } = await setup({
      paths: { liveness: '/livez', readiness: '/readyz', startup: '/startupz' },
      checks: { 'db:responseTime': async () => Promise.reject(new Error('db down')) },
    })
    const res = await get(`${srv.url}/readyz`)
    expect(res.status).toBe(503)
    expect(res.json()).toMatchObject({ status: 'fail', checks: { 'db:responseTime': [{ status: 'fail', output: 'db down' }] } })
    expect((await get(`${srv.url}/livez`)).status).toBe(200)
    expect((await get(`${srv.url}/health/ready`)).status).toBe(404)
  })

  it('hides details from callers the predicate rejects', async () => {
    const { srv } = await setup({
      details: (ex) => ex.header('authorization') === 'Bearer ops',
      checks: { 'db:responseTime': async () => Promise.reject(new Error('connect ECONNREFUSED 10.1.2.3:5432')) },
    })
    const anonymous = await get(`${srv.url}/health/ready`)
    expect(anonymous.status).toBe(503)
    expect(anonymous.body).toBe('{"status":"fail"}')
    const ops = await get(`${srv.url}/health/ready`, { headers: { authorization: 'Bearer ops' } })
    expect(ops.json().checks['db:responseTime'][0].output).toContain('ECONNREFUSED')
    expect((await get(`${srv.url}/health`)).body).toBe('{"status":"pass"}')
  })

  it('speaks the @nestjs/terminus shape when asked', async () => {
    const { health, srv } = await setup({
      format: 'terminus',
      shutdown: { signals: [], exit: false, drainDelayMs: 2_000 },
      checks: {
        'redis:responseTime': async () => {},
        'search:responseTime': { critical: false, check: async () => Promise.reject(new Error('timeout')) },
        'db:responseTime': async () => Promise.reject(new Error('db down')),
      },
    })
    const res = await get(`${srv.url}/health/ready`)
    expect(res.status).toBe(503)
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8')
    const body = res.json()
    expect(body.status).toBe('error')
    expect(body.info['redis:responseTime'].status).toBe('up')
    expect(body.info['search:responseTime']).toMatchObject({ status: 'up', message: 'timeout' })
    expect(body.error['db:responseTime']).toMatchObject({ status: 'down', message: 'db down' })
    expect(Object.keys(body.details)).toHaveLength(3)
    void health.shutdown('test')
    const draining = await get(`${srv.url}/health/ready`)
    expect(draining.status).toBe(503)
    expect(draining.json().status).toBe('shutting_down')
  })

  it('fails liveness when the event loop is blocked past the threshold', async () => {
    const { srv } = await setup({ liveness: { maxEventLoopDelayMs: 30, windowMs: 60_000 } })
    expect((await get(`${srv.url}/health`)).status).toBe(200)
    await sleep(50) // let the histogram take its first samples
    const until = Date.now() + 120
    while (Date.now() < until) {
      // block the loop
    }
    await sleep(30)
    const res = await get(`${srv.url}/health`)
    expect(res.status).toBe(503)
    expect(res.json().checks['eventLoop:delay'][0]).toMatchObject({ status: 'fail', observedUnit: 'ms' })
  })

  it('costs one dependency call per cacheMs under an HTTP probe flood', async () => {
    let calls = 0
    const { srv } = await setup({
      cacheMs: 100,
      checks: {
        'dep:responseTime': async () => {
          calls++
          await sleep(2)
        },
      },
    })
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 })
    cleanup.push(() => agent.destroy())
    const started = performance.now()
    let ok = 0
    let sent = 0
    // 1,000 probes as fast as 16 concurrent keep-alive connections go.
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (sent < 1_000) {
          sent++
          const res = await get(`${srv.url}/health/ready`, { agent })
          if (res.status === 200) ok++
        }
      }),
    )
    const elapsed = performance.now() - started
    expect(ok).toBe(sent)
    // One call per refresh window (cacheMs 100), +1 for the first call and +1 for timing slack,
    // however many probes arrived in that time.
    expect(calls).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 2)
    expect(calls).toBeLessThan(sent / 10)
  })
})
