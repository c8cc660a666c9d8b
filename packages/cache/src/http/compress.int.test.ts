import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { createPipeline, RiConfigError } from '@ri/core'
import { createNodeHandler, type NodeContext } from '@ri/core/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cached, createCache } from '../index.js'

async function send(ctx: NodeContext, status: number, body: string, headers: Record<string, string> = {}) {
  ctx.exchange.status = status
  for (const [k, v] of Object.entries(headers)) ctx.exchange.responseHeaders[k.toLowerCase()] = v
  await ctx.send(status, body)
}

/** A raw GET (no automatic decompression, unlike fetch). */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      })
      .on('error', reject)
  })
}

const BIG = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ i, name: `item ${i} ✓ café` })) })

describe('cached(): compressed variants (gzip, br)', () => {
  const cache = createCache()
  let calls = 0
  let server: http.Server
  let base = ''

  beforeAll(async () => {
    const pipeline = createPipeline([cached({ cache, ttl: '1m', tags: ['z'] })])
    server = http.createServer(
      createNodeHandler(pipeline, [
        { method: 'GET', path: '/big', handler: (_req, _res, ctx) => (calls++, send(ctx, 200, BIG, { 'content-type': 'application/json; charset=utf-8' })) },
        { method: 'GET', path: '/small', handler: (_req, _res, ctx) => send(ctx, 200, '{"a":1}', { 'content-type': 'application/json' }) },
        { method: 'GET', path: '/png', handler: (_req, _res, ctx) => send(ctx, 200, BIG, { 'content-type': 'image/png' }) },
        { method: 'GET', path: '/raw', handler: (_req, _res, ctx) => send(ctx, 200, BIG, { 'content-type': 'text/plain', 'cache-control': 'public, no-transform, max-age=60' }) },
      ]),
    )
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    await new Promise((r) => server.close(r))
    await cache.close()
  })

  it('stores br and gzip once; serves the accepted one, decompressing to the same bytes', async () => {
    const miss = await get(`${base}/big`, { 'accept-encoding': 'br' })
    expect(miss.headers['x-cache']).toBe('MISS')
    expect(miss.headers['content-encoding']).toBeUndefined() // the MISS is the handler's response
    expect(miss.headers.vary).toBe('accept-encoding')
    expect(miss.body.toString()).toBe(BIG)

    const br = await get(`${base}/big`, { 'accept-encoding': 'gzip, deflate, br' })
    expect(br.headers['x-cache']).toBe('HIT')
    expect(br.headers['content-encoding']).toBe('br')
    expect(br.headers.vary).toBe('accept-encoding')
    expect(Number(br.headers['content-length'])).toBe(br.body.byteLength)
    expect(br.body.byteLength).toBeLessThan(Buffer.byteLength(BIG))
    expect(brotliDecompressSync(br.body).toString()).toBe(BIG)

    const gz = await get(`${base}/big`, { 'accept-encoding': 'gzip' })
    expect(gz.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(gz.body).toString()).toBe(BIG)

    const plain = await get(`${base}/big`)
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(plain.body.toString()).toBe(BIG)
    expect((await get(`${base}/big`, { 'accept-encoding': 'br;q=0, gzip;q=0' })).headers['content-encoding']).toBeUndefined()
    expect((await get(`${base}/big`, { 'accept-encoding': '*' })).headers['content-encoding']).toBe('br')
    expect(calls).toBe(1)

    // each representation has its own validator; any of the family revalidates
    const etags = new Set([miss.headers.etag, br.headers.etag, gz.headers.etag])
    expect(etags.size).toBe(3)
    const nm = await get(`${base}/big`, { 'accept-encoding': 'br', 'if-none-match': String(br.headers.etag) })
    expect(nm.status).toBe(304)
    expect(nm.headers['content-encoding']).toBeUndefined()
    expect(nm.body.byteLength).toBe(0)
    expect((await get(`${base}/big`, { 'accept-encoding': 'br', 'if-none-match': String(miss.headers.etag) })).status).toBe(304)
  })

  it('tag invalidation purges the variants with the response', async () => {
    await get(`${base}/big`)
    await cache.invalidateTags(['z'])
    const after = await get(`${base}/big`, { 'accept-encoding': 'br' })
    expect(after.headers['x-cache']).toBe('MISS')
    expect(after.headers['content-encoding']).toBeUndefined()
  })

  it('leaves small bodies, incompressible types and no-transform responses alone', async () => {
    for (const path of ['/small', '/png', '/raw']) {
      await get(`${base}${path}`)
      const hit = await get(`${base}${path}`, { 'accept-encoding': 'br, gzip' })
      expect(hit.headers['x-cache'], path).toBe('HIT')
      expect(hit.headers['content-encoding'], path).toBeUndefined()
      expect(String(hit.headers.vary ?? ''), path).not.toContain('accept-encoding')
    }
  })

  it('validates compress options; compress: false stores none', () => {
    expect(() => cached({ cache, compress: { encodings: ['zstd' as never] } })).toThrow(RiConfigError)
    expect(() => cached({ cache, compress: { threshold: -1 } })).toThrow(/compress.threshold/)
    expect(() => cached({ cache, compress: 'yes' as never })).toThrow(/compress/)
    expect(() => cached({ cache, compress: false })).not.toThrow()
  })
})
