import http from 'node:http'
import { context as otelContext, metrics as otelMetrics, type MeterProvider, type Attributes } from '@opentelemetry/api'
import { createEvents, type Feature, RiConfigError } from '@ri/core'
import type { NodeRoute } from '@ri/core/node'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMetrics, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE } from './index.js'
import { contextWithSpan, registerTestContextManager } from '@ri/testing'
import { blast, samples, startServer } from './testing/server.js'

const ok: NodeRoute['handler'] = (_req, _res, ctx) => ctx.json(200, { ok: true })
const routes: NodeRoute[] = [
  { method: 'GET', path: '/users/:id', handler: ok },
  { method: 'POST', path: '/users/:id', handler: (_q, _s, ctx) => ctx.json(201, {}) },
  { method: 'GET', path: '/boom', handler: (_q, _s, ctx) => ctx.json(503, { error: 'down' }) },
]
const OM_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

async function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await fetch(url, { method, headers })
  return { status: res.status, headers: res.headers, body: await res.text() }
}

describe('HTTP RED metrics over a real server', () => {
  it('labels with the route template, never the raw path; unknown methods are _OTHER; unmatched collapse', async () => {
    const metrics = createMetrics({ defaultMetrics: false })
    const server = await startServer([metrics.feature()], routes)
    try {
      for (const id of ['1', '2', '3']) await get(`${server.url}/users/${id}?secret=x`)
      await get(`${server.url}/users/9`, {}, 'POST')
      await get(`${server.url}/nowhere/${Math.random()}`)
      await get(`${server.url}/boom`)
      // A custom method: node accepts it on the wire only from its known list, so use one the router does not know.
      await new Promise<void>((resolve, reject) => {
        const req = http.request(`${server.url}/users/1`, { method: 'PURGE' }, (res) => res.resume().on('end', resolve))
        req.on('error', reject).end()
      })
      const scrape = await get(`${server.url}/metrics`)
      expect(scrape.status).toBe(200)
      expect(scrape.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE)
      const count = samples(scrape.body, 'http_server_request_duration_seconds_count')
      expect(count).toContain('http_server_request_duration_seconds_count{method="GET",route="/users/:id",status_code="200"} 3')
      expect(count).toContain('http_server_request_duration_seconds_count{method="POST",route="/users/:id",status_code="201"} 1')
      expect(count).toContain('http_server_request_duration_seconds_count{method="GET",route="__unmatched__",status_code="404"} 1')
      expect(count).toContain('http_server_request_duration_seconds_count{method="GET",route="/boom",status_code="503"} 1')
      expect(count).toContain('http_server_request_duration_seconds_count{method="_OTHER",route="__unmatched__",status_code="404"} 1')
      expect(scrape.body).not.toMatch(/route="\/users\/\d/)
      // Under the cap nothing overflowed: no overflow series at all (not even a zero one).
      expect(scrape.body).not.toContain('__overflow__')
      expect(scrape.body).not.toContain('nowhere')
      // Scrapes are not requests of the service.
      expect(scrape.body).not.toContain('route="/metrics"')
      // The default OpenTelemetry buckets.
      expect(scrape.body).toContain('le="0.075"')
      expect(scrape.body).toContain('le="7.5"')
      expect(scrape.body).toMatch(/^http_server_active_requests 0$/m)
    } finally {
      await server.close()
    }
  })

  it('counts in-flight requests in http_server_active_requests', async () => {
    const metrics = createMetrics({ defaultMetrics: false })
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const server = await startServer(
      [metrics.feature()],
      [{ method: 'GET', path: '/wait', handler: async (_q, _s, ctx) => (await gate, ctx.json(200, {})) }],
    )
    try {
      const pending = [get(`${server.url}/wait`), get(`${server.url}/wait`)]
      await new Promise((r) => setTimeout(r, 50))
      expect((await get(`${server.url}/metrics`)).body).toMatch(/^http_server_active_requests 2$/m)
      release()
      await Promise.all(pending)
      expect((await get(`${server.url}/metrics`)).body).toMatch(/^http_server_active_requests 0$/m)
    } finally {
      await server.close()
    }
  })

  it('1e5 requests to random paths leave the series count unchanged', async () => {
    const metrics = createMetrics({ defaultMetrics: false })
    const server = await startServer([metrics.feature()], routes)
    try {
      await get(`${server.url}/users/1`)
      await get(`${server.url}/nope`)
      const before = samples((await get(`${server.url}/metrics`)).body, 'http_server_request_duration_seconds_count')
      const sent = await blast(server.port, 100_000, (i) => `/r/${i}/${Math.random().toString(36).slice(2)}?q=${i}`)
      expect(sent).toBe(100_000)
      const body = (await get(`${server.url}/metrics`)).body
      const after = samples(body, 'http_server_request_duration_seconds_count')
      expect(after.length).toBe(before.length)
      expect(after).toContain('http_server_request_duration_seconds_count{method="GET",route="__unmatched__",status_code="404"} 100001')
      expect(body.split('\n').filter((l) => l.startsWith('http_server_request_duration_seconds_bucket')).length).toBe(before.length * 15)
    } finally {
      await server.close()
    }
  }, 60_000)

  it('caps series per metric: an adapter leaking raw paths ends in one overflow series and a dropped counter', async () => {
    const metrics = createMetrics({ defaultMetrics: false, maxSeries: 20 })
    // A misbehaving binding that labels with the raw path.
    const leak: Feature = { name: 'leak', onRequest: (ex) => void (ex.route = ex.path) }
    const server = await startServer([leak, metrics.feature()], [{ method: 'GET', path: '/raw/*', handler: ok }])
    try {
      const sent = await blast(server.port, 500, (i) => `/raw/${i}`, 2, 50)
      expect(sent).toBe(500)
      const body = (await get(`${server.url}/metrics`)).body
      const counts = samples(body, 'http_server_request_duration_seconds_count')
      expect(counts.length).toBe(21)
      expect(counts).toContain('http_server_request_duration_seconds_count{method="__overflow__",route="__overflow__",status_code="__overflow__"} 480')
      expect(body).toContain('ri_metrics_dropped_label_sets_total{metric="http_server_request_duration_seconds"} 480')
    } finally {
      await server.close()
    }
  })

  it('records request and response sizes only when sizes is on', async () => {
    const off = createMetrics({ defaultMetrics: false })
    const on = createMetrics({ defaultMetrics: false, sizes: true })
    const server = await startServer([off.feature({ path: '/off' }), on.feature()], routes)
    try {
      await get(`${server.url}/users/1`)
      expect((await get(`${server.url}/off`)).body).not.toContain('body_size')
      const body = (await get(`${server.url}/metrics`)).body
      expect(body).toContain('http_server_response_body_size_bytes_count{method="GET",route="/users/:id",status_code="200"} 1')
    } finally {
      await server.close()
    }
  })
})

describe('scrape endpoint', () => {
  let restore: () => void
  beforeAll(() => {
    restore = registerTestContextManager()
  })
  afterAll(() => restore())

  it('exemplars carry the active trace id under OpenMetrics only', async () => {
    const metrics = createMetrics({ defaultMetrics: false })
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const spanId = '00f067aa0ba902b7'
    const server = await startServer([metrics.feature()], routes, {
      wrap: (h) => (req, res) => (req.headers['x-traced'] ? otelContext.with(contextWithSpan(traceId, spanId), () => h(req, res)) : h(req, res)),
    })
    try {
      await get(`${server.url}/users/7`, { 'x-traced': '1' })
      await get(`${server.url}/users/8`)
      const om = await get(`${server.url}/metrics`, { accept: OM_ACCEPT })
      expect(om.headers.get('content-type')).toBe(OPENMETRICS_CONTENT_TYPE)
      expect(om.body).toMatch(new RegExp(`_bucket\\{[^}]*route="/users/:id"[^}]*\\} \\d+ # \\{trace_id="${traceId}",span_id="${spanId}"\\} [0-9.e-]+ [0-9.]+`))
      expect(om.body.endsWith('# EOF\n')).toBe(true)
      // Counters follow OpenMetrics naming: family without _total, samples with it.
      expect(om.body).toContain('# TYPE ri_metrics_dropped_label_sets counter')
      const text = await get(`${server.url}/metrics`)
      expect(text.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE)
      expect(text.body).not.toContain(traceId)
      expect(text.body).not.toContain('# {')
      // Rendering OpenMetrics must not rename counters in the Prometheus output.
      expect(text.body).toContain('# TYPE ri_metrics_dropped_label_sets_total counter')
      const again = await get(`${server.url}/metrics`, { accept: OM_ACCEPT })
      expect(again.body).toContain(traceId)
    } finally {
      await server.close()
    }
  })

  it('protects the scrape path with a bearer token', async () => {
    const metrics = createMetrics({ defaultMetrics: false })
    const server = await startServer([metrics.feature({ token: 's3cret-token' })], routes)
    try {
      expect((await get(`${server.url}/metrics`)).status).toBe(401)
      expect((await get(`${server.url}/metrics`, { authorization: 'Bearer wrong-token!' })).status).toBe(401)
      const ok = await get(`${server.url}/metrics`, { authorization: 'Bearer s3cret-token' })
      expect(ok.status).toBe(200)
      expect(ok.body).toContain('http_server_request_duration_seconds')
      expect((await get(`${server.url}/metrics`, {}, 'POST')).status).toBe(405)
    } finally {
      await server.close()
    }
  })

  it('serves on a separate port; the app port does not answer the path when path is false', async () => {
    const metrics = createMetrics({ defaultMetrics: false })
    const app = await startServer([metrics.feature({ path: false })], routes)
    const side = await metrics.listen({ port: 0, token: 'side-port-token' })
    try {
      await get(`${app.url}/users/1`)
      expect((await get(`${app.url}/metrics`)).status).toBe(404)
      expect((await get(side.url)).status).toBe(401)
      const res = await get(side.url, { authorization: 'Bearer side-port-token' })
      expect(res.status).toBe(200)
      expect(res.body).toContain('route="/users/:id"')
      expect((await get(`http://127.0.0.1:${side.port}/other`)).status).toBe(404)
    } finally {
      await app.close()
      await metrics.close()
    }
  })

  it('the neutral handler negotiates and includes process metrics unless opted out', async () => {
    const withDefaults = createMetrics({ prefix: 'app_' })
    const r = await withDefaults.handler()('text/plain')
    expect(r.status).toBe(200)
    expect(r.body).toContain('app_process_cpu_user_seconds_total')
    expect(r.body).toContain('app_http_server_request_duration_seconds')
    expect((await withDefaults.handler()(OM_ACCEPT)).headers['content-type']).toBe(OPENMETRICS_CONTENT_TYPE)
    const without = createMetrics({ defaultMetrics: false })
    expect((await without.handler()()).body).not.toContain('process_cpu')
  })

  it('answers 500 (and does not throw) when a user collector fails', async () => {
    const registry = new Registry()
    const metrics = createMetrics({ registry, defaultMetrics: false })
    const { Gauge } = await import('prom-client')
    new Gauge({ name: 'broken', help: 'x', registers: [registry], collect: () => Promise.reject(new Error('nope')) })
    const r = await metrics.handler()()
    expect(r.status).toBe(500)
  })
})

describe('SDK metrics from events', () => {
  it('turns cache, throttle, db, health and slowlog events into metrics, from several buses', async () => {
    const metrics = createMetrics({ defaultMetrics: false })
    const a = createEvents()
    const b = createEvents()
    metrics.observe(a)
    const off = metrics.observe(b)
    a.emit('cache.get', { namespace: 'users', tier: 'l1', result: 'hit' })
    a.emit('cache.get', { namespace: 'users', tier: 'l2', result: 'stale' })
    b.emit('cache.get', { namespace: 'users', tier: 'none', result: 'miss' })
    a.emit('cache.loader', { namespace: 'users', durationMs: 12, outcome: 'ok' })
    a.emit('cache.l2.error', { namespace: 'users', operation: 'get', error: new Error('x') })
    a.emit('cache.l2.circuit', { state: 'open' })
    a.emit('cache.bus.message', { direction: 'in', type: 'delete', lagMs: 3 })
    a.emit('cache.bus.state', { state: 'connected' })
    a.emit('throttle.decision', { rule: 'login', policy: '5/min', result: 'limited', store: 'redis' })
    a.emit('throttle.insurance', { state: 'engaged' })
    a.emit('db.query', { role: 'replica', node: 'r1', reason: 'read', kind: 'select', durationMs: 2, ok: true })
    a.emit('db.fallback', { reason: 'replicas-lagging' })
    a.emit('db.replica.lag', { node: 'r1', lagMs: 1500, healthy: false })
    a.emit('db.replica.lag', { node: 'r1', lagMs: -1, healthy: false })
    a.emit('db.replica.state', { node: 'r1', healthy: false, reason: 'lagging' })
    a.emit('health.check', { name: 'postgres', status: 'fail', durationMs: 4 })
    a.emit('health.state', { state: 'ready' })
    a.emit('health.degradation', { component: 'redis', degraded: true })
    a.emit('slowlog.slow', { method: 'GET', route: '/reports/:id', durationMs: 900 })
    a.emit('slowlog.slow', { method: 'GET', route: undefined, durationMs: 900 })
    const body = (await metrics.handler()()).body
    for (const line of [
      'ri_cache_requests_total{namespace="users",tier="l1",result="hit"} 1',
      'ri_cache_requests_total{namespace="users",tier="l2",result="stale"} 1',
      'ri_cache_requests_total{namespace="users",tier="none",result="miss"} 1',
      'ri_cache_loader_duration_seconds_count{namespace="users",outcome="ok"} 1',
      'ri_cache_l2_errors_total{namespace="users",operation="get"} 1',
      'ri_cache_l2_circuit_state{state="open"} 1',
      'ri_cache_l2_circuit_state{state="closed"} 0',
      'ri_cache_bus_messages_total{direction="in",type="delete"} 1',
      'ri_cache_bus_lag_seconds_count 1',
      'ri_cache_bus_connected 1',
      'ri_throttle_decisions_total{rule="login",result="limited",store="redis"} 1',
      'ri_throttle_insurance_fallbacks_total 1',
      'ri_throttle_insurance_active 1',
      'ri_db_query_duration_seconds_count{role="replica",node="r1",outcome="ok"} 1',
      'ri_db_queries_total{role="replica",reason="read"} 1',
      'ri_db_fallbacks_total{reason="replicas-lagging"} 1',
      'ri_db_replica_lag_seconds{node="r1"} 1.5',
      'ri_db_replica_healthy{node="r1"} 0',
      'ri_db_replica_state_changes_total{node="r1",reason="lagging"} 1',
      'ri_health_check_status{check="postgres",status="fail"} 1',
      'ri_health_check_status{check="postgres",status="pass"} 0',
      'ri_health_check_duration_seconds_count{check="postgres"} 1',
      'ri_health_state{state="ready"} 1',
      'ri_health_degraded{component="redis"} 1',
      'ri_slowlog_slow_requests_total{method="GET",route="/reports/:id"} 1',
      'ri_slowlog_slow_requests_total{method="GET",route="__unmatched__"} 1',
    ]) {
      expect(body).toContain(line)
    }
    off()
    b.emit('cache.get', { namespace: 'users', tier: 'none', result: 'miss' })
    expect((await metrics.handler()()).body).toContain('ri_cache_requests_total{namespace="users",tier="none",result="miss"} 1')
    await metrics.close()
    a.emit('cache.get', { namespace: 'users', tier: 'l1', result: 'hit' })
    expect((await metrics.handler()()).body).toContain('ri_cache_requests_total{namespace="users",tier="l1",result="hit"} 1')
  })

  it('counts repeated and interleaved SDK label sets exactly', async () => {
    const events = createEvents()
    const metrics = createMetrics({ defaultMetrics: false, events })
    for (let i = 0; i < 1000; i++) {
      events.emit('throttle.decision', { rule: 'api', policy: 'p', result: i % 4 === 0 ? 'limited' : 'allowed', store: 'memory' })
      events.emit('cache.get', { namespace: i % 2 === 0 ? 'users' : 'orders', tier: 'l1', result: 'hit' })
    }
    const body = (await metrics.handler()()).body
    expect(body).toContain('ri_throttle_decisions_total{rule="api",result="allowed",store="memory"} 750')
    expect(body).toContain('ri_throttle_decisions_total{rule="api",result="limited",store="memory"} 250')
    expect(body).toContain('ri_cache_requests_total{namespace="users",tier="l1",result="hit"} 500')
    expect(body).toContain('ri_cache_requests_total{namespace="orders",tier="l1",result="hit"} 500')
  })

  it('caps SDK series too', async () => {
    const events = createEvents()
    const metrics = createMetrics({ defaultMetrics: false, maxSeries: 3, events })
    for (let i = 0; i < 10; i++) events.emit('cache.get', { namespace: `ns${i}`, tier: 'l1', result: 'hit' })
    const body = (await metrics.handler()()).body
    expect(samples(body, 'ri_cache_requests_total')).toHaveLength(4)
    expect(body).toContain('ri_cache_requests_total{namespace="__overflow__",tier="__overflow__",result="__overflow__"} 7')
    expect(body).toContain('ri_metrics_dropped_label_sets_total{metric="ri_cache_requests_total"} 7')
  })
})

describe('OpenTelemetry bridge', () => {
  it('records http.server.request.duration with semantic-convention attributes when a MeterProvider is there', async () => {
    const recorded: { name: string; unit?: string; value: number; attributes?: Attributes; buckets?: number[] }[] = []
    const provider: MeterProvider = {
      getMeter: () =>
        ({
          createHistogram: (name: string, opts: { unit?: string; advice?: { explicitBucketBoundaries?: number[] } }) => ({
            record: (value: number, attributes?: Attributes) => recorded.push({ name, unit: opts.unit, value, attributes, buckets: opts.advice?.explicitBucketBoundaries }),
          }),
        }) as never,
    }
    expect(otelMetrics.setGlobalMeterProvider(provider)).toBe(true)
    try {
      const metrics = createMetrics({ defaultMetrics: false })
      const server = await startServer([metrics.feature()], routes)
      try {
        await get(`${server.url}/users/5`)
        await get(`${server.url}/nope`)
      } finally {
        await server.close()
      }
      expect(recorded).toHaveLength(2)
      expect(recorded[0]).toMatchObject({
        name: 'http.server.request.duration',
        unit: 's',
        attributes: { 'http.request.method': 'GET', 'http.route': '/users/:id', 'http.response.status_code': 200 },
      })
      expect(recorded[0]!.buckets).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10])
      expect(recorded[0]!.value).toBeGreaterThan(0)
      expect(recorded[0]!.value).toBeLessThan(5)
      expect(recorded[1]!.attributes).toMatchObject({ 'http.route': '__unmatched__', 'http.response.status_code': 404 })
    } finally {
      otelMetrics.disable()
    }
  })
})

describe('options', () => {
  it('names every invalid option at once', () => {
    let error: unknown
    try {
      createMetrics({ prefix: 'bad-prefix', buckets: [1, 0.5], maxSeries: 0, exemplar: true, cluster: 'yes' } as never)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(RiConfigError)
    const options = (error as RiConfigError).problems.map((p) => p.option)
    expect(options).toEqual(expect.arrayContaining(['createMetrics.prefix', 'createMetrics.buckets', 'createMetrics.maxSeries', 'createMetrics.exemplar', 'createMetrics.cluster']))
    expect((error as Error).message).toContain("did you mean 'exemplars'")
    expect(() => createMetrics({ defaultMetrics: false }).feature({ token: 'short' })).toThrow(/metrics.feature.token/)
  })

  it('accepts custom buckets and registers into a given registry', async () => {
    const registry = new Registry()
    const metrics = createMetrics({ registry, buckets: [0.1, 1], defaultMetrics: false, exemplars: false })
    metrics.record('get', '/x', 200, 50)
    const text = await registry.metrics()
    expect(text).toContain('http_server_request_duration_seconds_bucket{le="0.1",method="GET",route="/x",status_code="200"} 1')
    expect(text).not.toContain('le="0.075"')
  })
})
