import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService } from '../binaries.js'
import { type RedisServer, startRedis } from '../redis.js'
import { createFeatureProbe, FEATURE_THROTTLE_RULES, type FeatureProbe, featureRoutes } from './fixtures.js'
import type { CacheLike, ConformanceKit, ConformanceServer, HealthLike, LoggerLike, StartSetup } from './types.js'

async function get(base: string, path: string, headers: Record<string, string> = {}) {
  const res = await request(`${base}${path}`, { method: 'GET', headers })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8') }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** A logger that keeps every line (what the slow log wrote). */
function captureLogger(): LoggerLike & { readonly lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const log = (obj?: unknown) => {
    if (typeof obj === 'object' && obj !== null) lines.push(obj as Record<string, unknown>)
  }
  const logger = { lines, trace: log, debug: log, info: log, warn: log, error: log, fatal: log, child: () => logger }
  return logger
}

/** Polls `read` until it returns a value, bounded. */
async function eventually<T>(read: () => Promise<T | undefined>, timeoutMs = 3000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await read()
    if (v !== undefined) return v
    if (Date.now() > until) throw new Error('condition not met in time')
    await sleep(20)
  }
}

/**
 * The feature scenarios: the adapter wires the real feature packages (the kit's factories) and its
 * named route-level units; two servers of the same setup share one real Redis for the cache.
 */
export function featureScenarios(start: StartSetup, kit: ConformanceKit): void {
  describe('features', () => {
    const probe: FeatureProbe = createFeatureProbe()
    const slowLines = captureLogger()
    let redis: RedisServer | undefined
    let caches: CacheLike[] = []
    let a: ConformanceServer
    let b: ConformanceServer | undefined

    beforeAll(async () => {
      if (requireService('redis')) redis = await startRedis()
      const prefix = `conf-${process.pid}-${Math.random().toString(36).slice(2, 8)}:`
      const cacheFor = () => {
        const cache = kit.createCache(redis ? { l2: redis.url, prefix, ttl: '1m' } : { prefix, ttl: '1m' })
        caches.push(cache)
        return cache
      }
      const options = () => ({
        metrics: kit.createMetrics({ defaultMetrics: false }),
        throttle: kit.createThrottle({ default: false, rules: { ...FEATURE_THROTTLE_RULES } }),
        slowlog: kit.createSlowLog({ logger: slowLines, thresholdMs: '10s' }),
        cache: cacheFor(),
      })
      a = await start(featureRoutes(probe), options())
      if (redis) b = await start(featureRoutes(probe), options())
    })
    afterAll(async () => {
      await Promise.all([a?.close(), b?.close()])
      await Promise.all(caches.map((c) => c.close().catch(() => undefined)))
      caches = []
      await redis?.stop()
    })

    it('metrics: /metrics labels requests with route templates, never raw paths', async () => {
      await get(a.url, '/open')
      await get(a.url, '/items/metrics-1')
      await get(a.url, '/no/such/route')
      const scrape = await eventually(async () => {
        const r = await get(a.url, '/metrics')
        return r.text.includes('route="/items/:id"') && r.text.includes('route="/open"') ? r : undefined
      })
      expect(scrape.status).toBe(200)
      expect(String(scrape.headers['content-type'])).toMatch(/text\/plain|openmetrics/)
      expect(scrape.text).toMatch(/http_server_request_duration_seconds_count\{method="GET",route="\/items\/:id",status_code="200"\} \d+/)
      expect(scrape.text).toContain('route="__unmatched__"')
      expect(scrape.text).not.toContain('metrics-1')
      expect(scrape.text).not.toContain('/no/such/route')
    })

    it('throttle: a limited route answers 429 with RateLimit, RateLimit-Policy and Retry-After; other routes are unaffected', async () => {
      const before = probe.handled['/limited'] ?? 0
      expect((await get(a.url, '/limited')).status).toBe(200)
      const second = await get(a.url, '/limited')
      expect(second.status).toBe(200)
      expect(second.headers['ratelimit-policy']).toBeDefined()
      const limited = await get(a.url, '/limited')
      expect(limited.status).toBe(429)
      expect(limited.headers.ratelimit).toMatch(/r=0/)
      expect(limited.headers['ratelimit-policy']).toMatch(/q=2/)
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
      expect(probe.handled['/limited']).toBe(before + 2)
      for (let i = 0; i < 3; i++) expect((await get(a.url, '/open')).status).toBe(200)
    })

    it('throttle: the global limit applies, and a skipped route is exempt from it', async () => {
      expect((await get(a.url, '/counted')).status).toBe(200)
      const refused = await get(a.url, '/counted')
      expect(refused.status).toBe(429)
      expect(refused.headers['retry-after']).toBeDefined()
      // `/exempt` has the same 1-a-minute global rule, but its route skips every throttle
      for (let i = 0; i < 4; i++) expect((await get(a.url, '/exempt')).status).toBe(200)
    })

    it('cache: MISS, then HIT, then 304 on If-None-Match; X-Cache, ETag, Cache-Control, Age, Vary', async () => {
      const before = probe.handled['/items/:id'] ?? 0
      const miss = await get(a.url, '/items/c1')
      expect(miss.status).toBe(200)
      expect(miss.headers['x-cache']).toBe('MISS')
      expect(miss.headers.etag).toBeDefined()
      expect(miss.headers['cache-control']).toMatch(/max-age=\d+/)
      expect(String(miss.headers.vary).toLowerCase()).toContain('accept-language')
      const hit = await get(a.url, '/items/c1')
      expect(hit.status).toBe(200)
      expect(hit.headers['x-cache']).toBe('HIT')
      expect(hit.body.equals(miss.body)).toBe(true)
      expect(hit.headers.etag).toBe(miss.headers.etag)
      expect(Number(hit.headers.age)).toBeGreaterThanOrEqual(0)
      expect(hit.headers['cache-control']).toMatch(/max-age=\d+/)
      expect(String(hit.headers['content-type'])).toContain('application/json')
      const notModified = await get(a.url, '/items/c1', { 'if-none-match': String(miss.headers.etag) })
      expect(notModified.status).toBe(304)
      expect(notModified.body.byteLength).toBe(0)
      expect(probe.handled['/items/:id']).toBe(before + 1)
      // another Vary value is another stored response
      expect((await get(a.url, '/items/c1', { 'accept-language': 'fr' })).headers['x-cache']).toBe('MISS')
    })

    it('cache: invalidation by tag through one instance turns HIT back to MISS on every instance (shared Redis)', async (ctx) => {
      if (!b) return ctx.skip()
      await get(a.url, '/items/x')
      await get(b.url, '/items/y')
      // each instance serves the other's stored response from Redis
      expect((await get(b.url, '/items/x')).headers['x-cache']).toBe('HIT')
      expect((await get(a.url, '/items/y')).headers['x-cache']).toBe('HIT')
      expect((await get(a.url, '/items/x')).headers['x-cache']).toBe('HIT')
      await caches[1]!.invalidateTags(['items'])
      // the bus carries the new tag version to instance a: no stale HIT after it arrives
      const missA = await eventually(async () => ((await get(a.url, '/items/x')).headers['x-cache'] === 'MISS' ? true : undefined))
      const missB = (await get(b.url, '/items/y')).headers['x-cache']
      expect(missA).toBe(true)
      expect(missB).toBe('MISS')
    })

    it('cache: gzip and br variants served to clients that accept them and decompress to the same bytes', async () => {
      const before = probe.handled['/items/:id'] ?? 0
      const miss = await get(a.url, '/items/z1', { 'accept-encoding': 'br' })
      expect(miss.headers['x-cache']).toBe('MISS')
      expect(miss.headers['content-encoding']).toBeUndefined()
      expect(String(miss.headers.vary).toLowerCase()).toContain('accept-encoding')
      const decoders = { br: brotliDecompressSync, gzip: gunzipSync } as const
      for (const base of b ? [a.url, b.url] : [a.url]) {
        for (const coding of ['br', 'gzip'] as const) {
          const r = await get(base, '/items/z1', { 'accept-encoding': coding })
          expect(r.status, coding).toBe(200)
          expect(r.headers['x-cache'], coding).toBe('HIT')
          expect(r.headers['content-encoding'], coding).toBe(coding)
          expect(String(r.headers.vary).toLowerCase(), coding).toContain('accept-encoding')
          if (r.headers['content-length'] !== undefined) expect(Number(r.headers['content-length']), coding).toBe(r.body.byteLength)
          expect(r.body.byteLength, coding).toBeLessThan(miss.body.byteLength)
          expect(decoders[coding](r.body).equals(miss.body), coding).toBe(true)
        }
      }
      const identity = await get(a.url, '/items/z1')
      expect(identity.headers['content-encoding']).toBeUndefined()
      expect(identity.body.equals(miss.body)).toBe(true)
      expect(probe.handled['/items/:id']).toBe(before + 1)
    })

    it('slowlog: a slow route (over its route-level threshold) is logged, a fast one is not', async () => {
      const mark = slowLines.lines.length
      expect((await get(a.url, '/slow')).status).toBe(200)
      expect((await get(a.url, '/fast')).status).toBe(200)
      const line = await eventually(async () => slowLines.lines.slice(mark).find((l) => l.route === '/slow'))
      expect(line).toMatchObject({ route: '/slow', method: 'GET' })
      await sleep(30)
      expect(slowLines.lines.slice(mark).some((l) => l.route === '/fast')).toBe(false)
    })
  })

  describe('health', () => {
    let server: ConformanceServer
    let health: HealthLike
    let cache: CacheLike

    beforeAll(async () => {
      health = kit.createHealth({ shutdown: { signals: [], drainDelayMs: 300, timeoutMs: 5000, exit: false } })
      cache = kit.createCache({ prefix: 'conf-health:', ttl: '1m' })
      server = await start(featureRoutes(createFeatureProbe()), { health, cache })
    })
    afterAll(async () => {
      await server?.close().catch(() => undefined)
      await cache?.close().catch(() => undefined)
    })

    it('answers /health, /health/ready and /health/startup with application/health+json', async () => {
      for (const path of ['/health', '/health/ready', '/health/startup']) {
        const r = await get(server.url, path)
        expect(r.status, path).toBe(200)
        expect(String(r.headers['content-type']), path).toContain('application/health+json')
        expect(JSON.parse(r.text).status, path).toBe('pass')
      }
    })

    it('graceful drain under load: readiness turns 503, no request fails', async () => {
      let stop = false
      let ok = 0
      const failures: string[] = []
      const worker = async () => {
        while (!stop) {
          try {
            const r = await get(server.url, '/work', { 'x-delay': '40' })
            if (r.status === 200) ok++
            else failures.push(`status ${r.status}`)
          } catch (error) {
            failures.push(String((error as Error).message))
          }
        }
      }
      let readiness503 = false
      // what a load balancer does: poll readiness, stop routing new requests once it fails
      const watcher = async () => {
        while (!stop) {
          const r = await get(server.url, '/health/ready').catch(() => undefined)
          if (r?.status === 503) {
            readiness503 = true
            stop = true
          }
          await sleep(15)
        }
      }
      const workers = [watcher(), ...Array.from({ length: 6 }, worker)]
      await sleep(150)
      const shutdown = health.shutdown('conformance drain')
      await Promise.all(workers)
      await shutdown
      expect(readiness503).toBe(true)
      expect(failures).toEqual([])
      expect(ok).toBeGreaterThan(6)
    })
  })
}
