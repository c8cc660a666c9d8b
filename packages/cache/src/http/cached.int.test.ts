import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Answer, createPipeline, type Feature, RiConfigError } from '@ri/core'
import { createNodeHandler, type NodeContext } from '@ri/core/node'
import { afterAll, beforeAll, expect, it, describe } from 'vitest'
import { cached, createCache } from '../index.js'

/**
 * What an adapter does before `pipeline.send`: status and handler headers onto the exchange
 * (the feature's documented contract; see README "Adapter contract").
 */
async function send(ctx: NodeContext, status: number, body: string | Uint8Array, headers: Record<string, string | string[]> = {}) {
  ctx.exchange.status = status
  for (const [k, v] of Object.entries(headers)) ctx.exchange.responseHeaders[k.toLowerCase()] = v
  await ctx.send(status, body)
}

describe('cached(): HTTP response cache over real HTTP', () => {
  const cache = createCache()
  const http1 = cache.namespace('http')
  let calls = 0
  let server: http.Server
  let base = ''
  let feature: Feature

  beforeAll(async () => {
    feature = cached({ cache: http1, ttl: '1m', tags: (ex) => (ex.path.startsWith('/products') ? ['products'] : undefined), vary: ['accept-language'] })
    const pipeline = createPipeline([feature])
    const handler = createNodeHandler(pipeline, [
      { method: 'GET', path: '/products', handler: (_req, _res, ctx) => (calls++, send(ctx, 200, JSON.stringify({ n: calls, lang: ctx.exchange.header('accept-language') ?? null }), { 'content-type': 'application/json' })) },
      { method: 'GET', path: '/cookie', handler: (_req, _res, ctx) => (calls++, send(ctx, 200, 'c', { 'set-cookie': 'sid=1' })) },
      { method: 'GET', path: '/private', handler: (_req, _res, ctx) => (calls++, send(ctx, 200, 'p', { 'cache-control': 'private, max-age=60' })) },
      { method: 'GET', path: '/missing', handler: (_req, _res, ctx) => (calls++, send(ctx, 404, 'nope')) },
      { method: 'GET', path: '/binary', handler: (_req, _res, ctx) => (calls++, send(ctx, 200, new Uint8Array([0, 1, 2, 255]), { 'content-type': 'application/octet-stream' })) },
      { method: 'POST', path: '/products', handler: (_req, _res, ctx) => (calls++, send(ctx, 201, 'created')) },
      { method: 'GET', path: '/proto', handler: (_req, _res, ctx) => (calls++, send(ctx, 200, 'proto', { __proto__: 'x', 'x-multi': ['1', '2'], 'content-type': 'text/plain' })) },
    ])
    server = http.createServer(handler)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    await new Promise((r) => server.close(r))
    await cache.close()
  })

  it('MISS then HIT with ETag, Age, Cache-Control and the same body; 304 on If-None-Match', async () => {
    const before = calls
    const r1 = await fetch(`${base}/products?page=1`)
    expect(r1.status).toBe(200)
    expect(r1.headers.get('x-cache')).toBe('MISS')
    const etag = r1.headers.get('etag')!
    expect(etag).toMatch(/^"[\w-]+"$/)
    expect(r1.headers.get('cache-control')).toBe('public, max-age=60')
    const body1 = await r1.text()

    const r2 = await fetch(`${base}/products?page=1`)
    expect(r2.headers.get('x-cache')).toBe('HIT')
    expect(r2.headers.get('etag')).toBe(etag)
    expect(r2.headers.get('content-type')).toBe('application/json')
    expect(r2.headers.get('age')).toMatch(/^\d+$/)
    expect(r2.headers.get('vary')).toBe('accept-language')
    expect(await r2.text()).toBe(body1)
    expect(calls - before).toBe(1)

    const r3 = await fetch(`${base}/products?page=1`, { headers: { 'if-none-match': `W/${etag}, "other"` } })
    expect(r3.status).toBe(304)
    expect(r3.headers.get('etag')).toBe(etag)
    expect(await r3.text()).toBe('')
  })

  it('varies on the configured request headers', async () => {
    const a = (await (await fetch(`${base}/products?v`, { headers: { "accept-language": "fr" } })).json()) as { lang: string }
    const b = (await (await fetch(`${base}/products?v`, { headers: { "accept-language": "de" } })).json()) as { lang: string }
    const a2 = await (await fetch(`${base}/products?v`, { headers: { 'accept-language': 'fr' } })).json()
    expect(a.lang).toBe('fr')
    expect(b.lang).toBe('de')
    expect(a2).toEqual(a)
  })

  it('never stores Set-Cookie, private/no-store or non-2xx responses, nor POST', async () => {
    for (const path of ['/cookie', '/private', '/missing']) {
      const before = calls
      await (await fetch(base + path)).text()
      const r = await fetch(base + path)
      await r.text()
      expect(r.headers.get('x-cache')).toBe('MISS')
      expect(calls - before).toBe(2)
    }
    const before = calls
    await (await fetch(`${base}/products`, { method: 'POST' })).text()
    await (await fetch(`${base}/products`, { method: 'POST' })).text()
    expect(calls - before).toBe(2)
  })

  it('stores binary bodies byte for byte', async () => {
    await (await fetch(`${base}/binary`)).arrayBuffer()
    const r = await fetch(`${base}/binary`)
    expect(r.headers.get('x-cache')).toBe('HIT')
    expect([...new Uint8Array(await r.arrayBuffer())]).toEqual([0, 1, 2, 255])
  })

  it('tag invalidation purges cached responses', async () => {
    await (await fetch(`${base}/products?t`)).text()
    expect((await fetch(`${base}/products?t`)).headers.get('x-cache')).toBe('HIT')
    await cache.invalidateTags(['products']) // from the root namespace: tags are shared
    const r = await fetch(`${base}/products?t`)
    expect(r.headers.get('x-cache')).toBe('MISS')
  })

  it('a stored header named __proto__ is dropped on a hit, the others replayed (multi-valued too)', async () => {
    const r1 = await fetch(`${base}/proto`)
    expect(r1.headers.get('x-cache')).toBe('MISS')
    const r2 = await fetch(`${base}/proto`)
    expect(r2.headers.get('x-cache')).toBe('HIT')
    expect(r2.headers.get('content-type')).toBe('text/plain')
    expect(r2.headers.get('x-multi')).toBe('1, 2')
    expect(r2.headers.has('__proto__')).toBe(false)
    expect(r2.headers.has('0')).toBe(false)
    expect(await r2.text()).toBe('proto')
  })

  it('answers a fresh L1 hit synchronously (no promise), counted as one L1 hit; a miss stays asynchronous', async () => {
    const headers = { 'accept-language': 'en' }
    await (await fetch(`${base}/products?sync`, { headers })).text()
    const exchange = (url: string) => createPipeline([]).exchange({ method: 'GET', url, headers })
    const hitsBefore = http1.stats().l1.hits
    const hit = feature.onRequest!(exchange('/products?sync'))
    expect(hit).not.toBeInstanceOf(Promise)
    expect((hit as Answer).status).toBe(200)
    expect((hit as Answer).headers?.['x-cache']).toBe('HIT')
    expect(http1.stats().l1.hits - hitsBefore).toBe(1)
    const missesBefore = http1.stats().misses
    const miss = feature.onRequest!(exchange('/products?never-stored'))
    expect(miss).toBeInstanceOf(Promise)
    expect(await miss).toBeUndefined()
    expect(http1.stats().misses - missesBefore).toBe(1)
    expect(http1.stats().l1.hits - hitsBefore).toBe(1)
  })

  it('validates its options', () => {
    expect(() => cached({ cache: undefined as never, ttl: 'soon' as never, statuses: 'all' as never })).toThrow(RiConfigError)
  })
})

describe('cached(): stale responses while one request refreshes', () => {
  it('serves STALE to others while the first request after expiry refreshes (MISS)', async () => {
    const cache = createCache({ grace: '1m' })
    let calls = 0
    const pipeline = createPipeline([cached({ cache, ttl: 50 })])
    const server = http.createServer(
      createNodeHandler(pipeline, [
        {
          method: 'GET',
          path: '/slow',
          handler: async (_req, _res, ctx) => {
            calls++
            await new Promise((r) => setTimeout(r, 150))
            await send(ctx, 200, `v${calls}`)
          },
        },
      ]),
    )
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slow`
    try {
      expect(await (await fetch(url)).text()).toBe('v1')
      await new Promise((r) => setTimeout(r, 70))
      const first = fetch(url)
      await new Promise((r) => setTimeout(r, 30))
      const second = await fetch(url)
      expect(second.headers.get('x-cache')).toBe('STALE')
      expect(await second.text()).toBe('v1')
      const r1 = await first
      expect(r1.headers.get('x-cache')).toBe('MISS')
      expect(await r1.text()).toBe('v2')
      const third = await fetch(url)
      expect(third.headers.get('x-cache')).toBe('HIT')
      expect(await third.text()).toBe('v2')
    } finally {
      await new Promise((r) => server.close(r))
      await cache.close()
    }
  })
})
