import type { LogFn, Logger } from '@ri/core'
import { noopLogger } from '@ri/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningApp, startApp } from './app.js'
import { configFromEnv } from './config.js'

/** A logger that keeps what it is given (the slow-log lines). */
function captureLogger(lines: Array<Record<string, unknown>>): Logger {
  const write = (level: string): LogFn =>
    ((obj: unknown, msg?: unknown) => {
      lines.push(typeof obj === 'object' && obj !== null ? { level, ...(obj as object), msg } : { level, msg: obj })
    }) as LogFn
  const logger: Logger = {
    trace: write('trace'),
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    fatal: write('fatal'),
    child: () => logger,
  }
  return logger
}

describe('reference app (embedded defaults) over real HTTP', () => {
  const slowLines: Array<Record<string, unknown>> = []
  let running: RunningApp
  let base = ''
  // Each test is its own client (the app trusts X-Forwarded-For from loopback), so rate limits do not mix.
  const as = (client: string, init: RequestInit = {}) => ({ ...init, headers: { 'x-forwarded-for': client, ...(init.headers as Record<string, string>) } })
  const post = (client: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, as(client, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } }))

  beforeAll(async () => {
    const env = { PORT: '0' } as NodeJS.ProcessEnv // no Redis, no PostgreSQL: whatever the machine has set
    running = await startApp(configFromEnv(env), { logger: noopLogger, slowLogger: captureLogger(slowLines), signals: false, nestLogLevels: false })
    base = running.url
  })
  afterAll(async () => {
    await running?.close()
  })

  it('caches product reads: MISS then HIT with the same ETag, 304 on If-None-Match, 404 and 400', async () => {
    const first = await fetch(`${base}/products/7`, as('10.0.1.1'))
    expect(first.status).toBe(200)
    expect(first.headers.get('x-cache')).toBe('MISS')
    expect(await first.json()).toMatchObject({ id: 7, name: 'Product 7' })
    expect(first.headers.get('x-request-id')).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/)
    expect(first.headers.get('server-timing')).toMatch(/db;dur=[\d.]+/)
    expect(first.headers.get('cache-control')).toBeNull() // server-side only: browsers must not keep an old price
    const second = await fetch(`${base}/products/7`, as('10.0.1.1'))
    expect(second.headers.get('x-cache')).toBe('HIT')
    expect(second.headers.get('etag')).toBe(first.headers.get('etag'))
    await second.arrayBuffer()
    const revalidated = await fetch(`${base}/products/7`, as('10.0.1.1', { headers: { 'if-none-match': first.headers.get('etag')! } }))
    expect(revalidated.status).toBe(304)
    const list = await fetch(`${base}/products?limit=5&offset=10`, as('10.0.1.1'))
    expect(await list.json()).toMatchObject({ limit: 5, offset: 10, total: 500, items: [{ id: 11 }, {}, {}, {}, { id: 15 }] })
    expect((await fetch(`${base}/products/99999`, as('10.0.1.1'))).status).toBe(404)
    expect((await fetch(`${base}/products/abc`, as('10.0.1.1'))).status).toBe(400)
  })

  it('a price change purges the cached reads, and the writer reads its own write on the next request (cookie)', async () => {
    const client = '10.0.2.1'
    const before = await fetch(`${base}/products/3`, as(client))
    const old = (await before.json()) as { priceCents: number }
    expect((await fetch(`${base}/products/3`, as(client))).headers.get('x-cache')).toBe('HIT')
    const listBefore = await fetch(`${base}/products?limit=3`, as(client))
    await listBefore.arrayBuffer()

    const write = await post(client, '/products/3/price', { priceCents: old.priceCents + 100 })
    expect(write.status).toBe(200)
    const cookie = write.headers.get('set-cookie')
    expect(cookie).toMatch(/^ri_lsn=[^;]+; Max-Age=10; Path=\/; HttpOnly; SameSite=Lax/)

    // The writer (with its cookie) bypasses the response cache and reads at or past its write.
    const mine = await fetch(`${base}/products/3`, as(client, { headers: { cookie: cookie!.split(';')[0]! } }))
    expect(mine.headers.get('x-cache')).toBeNull()
    expect(((await mine.json()) as { priceCents: number }).priceCents).toBe(old.priceCents + 100)
    // Everyone else: the tagged responses were invalidated before the write answered.
    const other = await fetch(`${base}/products/3`, as('10.0.2.2'))
    expect(other.headers.get('x-cache')).toBe('MISS')
    expect(((await other.json()) as { priceCents: number }).priceCents).toBe(old.priceCents + 100)
    const list = await fetch(`${base}/products?limit=3`, as('10.0.2.2'))
    expect(list.headers.get('x-cache')).toBe('MISS')
    expect(((await list.json()) as { items: Array<{ priceCents: number }> }).items[2]!.priceCents).toBe(old.priceCents + 100)

    expect((await post(client, '/products/3/price', { priceCents: -1 })).status).toBe(422)
    expect((await post(client, '/products/424242/price', { priceCents: 100 })).status).toBe(404)
  })

  it('throttles orders per client: 10 per 10 s, then 429 with Retry-After; other clients and routes unaffected', async () => {
    const client = '10.0.3.1'
    for (let i = 0; i < 10; i++) {
      const res = await post(client, '/orders', { productId: 1 + i, quantity: 1 })
      expect(res.status).toBe(201)
      await res.arrayBuffer()
    }
    const refused = await post(client, '/orders', { productId: 1, quantity: 1 })
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(refused.headers.get('content-type')).toMatch(/problem\+json/)
    expect((await post('10.0.3.2', '/orders', { productId: 1, quantity: 1 })).status).toBe(201)
    expect((await fetch(`${base}/products/1`, as(client))).status).toBe(200)
    expect((await post('10.0.3.3', '/orders', { productId: 0 })).status).toBe(422)
  })

  it('analytics: heavy aggregate logged as slow with its timing, cached briefly, throttled at 5 per 10 s', async () => {
    const client = '10.0.4.1'
    const first = await fetch(`${base}/analytics/revenue?days=30`, as(client))
    expect(first.status).toBe(200)
    expect(first.headers.get('x-cache')).toBe('MISS')
    expect(first.headers.get('server-timing')).toMatch(/aggregate;dur=[\d.]+/)
    const report = (await first.json()) as { days: number; categories: Record<string, { orders: number }>; daily: unknown[] }
    expect(report.days).toBe(30)
    expect(Object.keys(report.categories).sort()).toEqual(['books', 'games', 'garden', 'kitchen', 'music', 'sports', 'tools', 'toys'])
    expect(report.daily.length).toBeGreaterThan(200)
    const line = slowLines.find((l) => l.route === '/analytics/revenue')
    expect(line).toMatchObject({ reason: 'slow', method: 'GET', status: 200, thresholdMs: 20 })
    expect((line!.timings as Record<string, number>).aggregate).toBeGreaterThan(0)
    expect((await fetch(`${base}/analytics/revenue?days=30`, as(client))).headers.get('x-cache')).toBe('HIT')
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${base}/analytics/revenue`, as(client))).status)
    expect(statuses).toEqual([200, 200, 200, 429])
  })

  it('serves /metrics with route templates and every feature, and the three health probes', async () => {
    const text = await (await fetch(`${base}/metrics`)).text()
    expect(text).toMatch(/http_server_request_duration_seconds_count\{method="GET",route="\/products\/:id",status_code="200"\} \d+/)
    expect(text).toContain('route="/analytics/revenue"')
    expect(text).not.toContain('route="/products/7"')
    expect(text).toMatch(/ri_cache_requests_total\{namespace="shop:http",tier="l1",result="hit"\} [1-9]/)
    expect(text).toMatch(/ri_throttle_decisions_total\{rule="[^"]+",result="limited",store="memory"\} [1-9]/)
    expect(text).toMatch(/ri_db_queries_total\{role="primary",reason="write"\} [1-9]/)
    expect(text).toMatch(/ri_slowlog_slow_requests_total\{method="GET",route="\/analytics\/revenue"\} [1-9]/)

    expect((await fetch(`${base}/health`)).status).toBe(200)
    const ready = await fetch(`${base}/health/ready`)
    expect(ready.status).toBe(200)
    expect(ready.headers.get('content-type')).toMatch(/application\/health\+json/)
    expect(await ready.json()).toMatchObject({ status: 'pass', checks: { 'db:replication': [{ status: 'pass', componentId: 'pglite' }] } })
    expect((await fetch(`${base}/health/startup`)).status).toBe(200)
  })
})
