import { connect } from 'node:net'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BYTES_BODY, conformanceRoutes, createProbe, globalFeatures, type Observation, type Probe } from './fixtures.js'
import { featureScenarios } from './features.js'
import { fuzzScenarios } from './fuzz.js'
import type { ConformanceKit, ConformanceServer, StartSetup } from './types.js'

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._:~-]{0,63}$/
let seq = 0
const rid = (tag: string) => `conf-${tag}-${process.pid}-${++seq}`

/** Sends raw bytes on a fresh socket and resolves with the status line's code (0 when the server just closed). */
export function rawRequest(url: string, head: string | Buffer, timeoutMs = 3000): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`raw request timed out: ${String(head).slice(0, 60)}`))
    }, timeoutMs)
    socket.on('connect', () => socket.write(head))
    socket.on('data', (c) => {
      chunks.push(c)
      if (Buffer.concat(chunks).includes('\r\n\r\n')) socket.end()
    })
    socket.on('error', () => undefined)
    socket.on('close', () => {
      clearTimeout(timer)
      const text = Buffer.concat(chunks).toString('latin1')
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text)
      resolve({ status: m ? Number(m[1]) : 0, text })
    })
  })
}

async function get(base: string, path: string, headers: Record<string, string> = {}) {
  const res = await request(`${base}${path}`, { method: 'GET', headers })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8') }
}

async function waitFor<T>(read: () => T | undefined, timeoutMs = 3000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = read()
    if (v !== undefined) return v
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** The finished observation of a request id (the recorder fills `status` in onResponse). */
const finished = (probe: Probe, id: string) => waitFor(() => {
  const o = probe.seen.get(id)
  return o?.status !== undefined ? o : undefined
})

/**
 * The shared HTTP conformance suite. Every adapter runs it against a real listening server built
 * from the same route table, with a real HTTP client (undici). A scenario that passes on one
 * framework and fails on another is a bug in that adapter.
 *
 * @example
 * // packages/express/src/conformance.int.test.ts
 * import { runConformance } from '@ri/testing'
 * import { createCache } from '@ri/cache' // ... and the other factories
 * runConformance('express 5', async (routes, options) => startExpress(routes, options), { createCache, createHealth, createMetrics, createSlowLog, createThrottle })
 */
export function runConformance(name: string, start: StartSetup, kit?: ConformanceKit): void {
  describe(`conformance: ${name}`, () => {
    const probe = createProbe()
    const trusted = createProbe()
    let server: ConformanceServer
    let proxied: ConformanceServer
    let base = ''

    beforeAll(async () => {
      server = await start(conformanceRoutes(probe), { features: globalFeatures(probe, false), events: probe.bus, echoRequestId: true })
      proxied = await start(conformanceRoutes(trusted), { features: globalFeatures(trusted, true), events: trusted.bus, trustProxy: 'loopback', echoRequestId: true })
      base = server.url
    })
    afterAll(async () => {
      await Promise.all([server?.close(), proxied?.close()])
    })

    describe('exchange', () => {
      it('serves the route table', async () => {
        const r = await get(base, '/users/42')
        expect(r.status).toBe(200)
        expect(JSON.parse(r.text)).toEqual({ id: '42' })
        const c = await get(base, '/constant')
        expect(c.text).toBe('ok')
        const e = await request(`${base}/echo`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } })
        expect(e.statusCode).toBe(200)
        expect(await e.body.json()).toEqual({ echo: { a: 1 } })
      })

      it('accepts a safe inbound request id and echoes it', async () => {
        const id = rid('id')
        const r = await get(base, '/constant', { 'x-request-id': id })
        expect(r.headers['x-request-id']).toBe(id)
        expect((await finished(probe, id)).status).toBe(200)
      })

      it('replaces an unsafe request id with a fresh one', async () => {
        const bad = 'bad id <script>'
        const r = await get(base, '/constant', { 'x-request-id': bad })
        const echoed = String(r.headers['x-request-id'])
        expect(echoed).not.toBe(bad)
        expect(echoed).toMatch(SAFE_ID)
      })

      it('never reflects a CR/LF-injected request id', async () => {
        const raw = await rawRequest(base, `GET /constant HTTP/1.1\r\nHost: x\r\nx-request-id: abc\rx-evil: 1\r\nConnection: close\r\n\r\n`)
        expect(raw.status).toBeLessThan(500)
        expect(raw.text.toLowerCase()).not.toContain('x-evil')
      })

      it('reports the route template on http.request, undefined when unmatched', async () => {
        const a = rid('tpl')
        const b = rid('tpl404')
        await get(base, '/users/7', { 'x-request-id': a })
        const nf = await get(base, '/definitely/not/here', { 'x-request-id': b })
        expect(nf.status).toBe(404)
        const ea = await waitFor(() => probe.events.find((e) => e.requestId === a))
        const eb = await waitFor(() => probe.events.find((e) => e.requestId === b))
        expect(ea).toMatchObject({ method: 'GET', route: '/users/:id', status: 200, aborted: false })
        expect(eb).toMatchObject({ method: 'GET', route: undefined, status: 404 })
      })

      it('knows the route template before the handler (global and route-level onRequest)', async () => {
        const id = rid('early')
        await get(base, '/users/8', { 'x-request-id': id })
        expect((await finished(probe, id)).routeAtRequest).toBe('/users/:id')
        const id2 = rid('early404')
        await get(base, '/users/8/nope', { 'x-request-id': id2 })
        expect((await finished(probe, id2)).routeAtRequest).toBeUndefined()
        const r = await get(base, '/guarded', { 'x-block-route': '1' })
        expect(r.headers['x-route-answer']).toBe('/guarded')
      })
    })

    describe('early answers', () => {
      it('a global feature answering short-circuits the handler', async () => {
        const before = probe.handled['/users/:id'] ?? 0
        const r = await get(base, '/users/1', { 'x-block': '1' })
        expect(r.status).toBe(429)
        expect(r.headers['retry-after']).toBe('7')
        expect(r.headers['ratelimit-policy']).toBe('"conformance";q=1;w=60')
        expect(r.headers['ratelimit']).toBe('"conformance";r=0;t=7')
        expect(r.headers['x-request-id']).toMatch(SAFE_ID)
        expect(JSON.parse(r.text)).toEqual({ error: 'Too Many Requests' })
        expect(probe.handled['/users/:id'] ?? 0).toBe(before)
      })

      it('answers a blocked POST without running the handler', async () => {
        const before = probe.handled['/echo'] ?? 0
        const r = await request(`${base}/echo`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json', 'x-block': '1' } })
        expect(r.statusCode).toBe(429)
        await r.body.dump()
        expect(probe.handled['/echo'] ?? 0).toBe(before)
      })

      it('a route-level feature answers for its route only', async () => {
        const before = probe.handled['/guarded'] ?? 0
        const blocked = await get(base, '/guarded', { 'x-block-route': '1' })
        expect(blocked.status).toBe(418)
        expect(blocked.text).toBe('route answer')
        expect(probe.handled['/guarded'] ?? 0).toBe(before)
        const other = await get(base, '/users/3', { 'x-block-route': '1' })
        expect(other.status).toBe(200)
        const open = await get(base, '/guarded')
        expect(open.status).toBe(200)
        expect(probe.handled['/guarded']).toBe(before + 1)
      })
    })

    describe('headers and body', () => {
      it('applies onHeaders headers on handler, 404 and error responses', async () => {
        expect((await get(base, '/users/5')).headers['x-ri-stamp']).toBe('/users/:id')
        expect((await get(base, '/nope')).headers['x-ri-stamp']).toBe('none')
        const boom = await get(base, '/boom')
        expect(boom.status).toBe(500)
        expect(boom.headers['x-ri-stamp']).toBe('/boom')
      })

      it('route-level onHeaders applies to its route only', async () => {
        expect((await get(base, '/guarded')).headers['x-route-headers']).toBe('1')
        expect((await get(base, '/guarded', { 'x-block-route': '1' })).headers['x-route-headers']).toBe('1')
        expect((await get(base, '/users/5')).headers['x-route-headers']).toBeUndefined()
      })

      it('route-level onSend sees the exact body bytes', async () => {
        const id = rid('send')
        const r = await get(base, '/bytes', { 'x-request-id': id })
        expect(r.status).toBe(200)
        expect(r.text).toBe(BYTES_BODY)
        const o = await finished(probe, id)
        expect(o.routeBody?.equals(Buffer.from(BYTES_BODY))).toBe(true)
      })

      it('onSend sees the handler status and headers, and a header it sets wins over the handler', async () => {
        const id = rid('contract')
        const r = await get(base, '/bytes', { 'x-request-id': id })
        expect(r.headers['x-from-send']).toBe('feature')
        // the handler's cookie and the feature's, each once
        const cookies = ([] as string[]).concat(r.headers['set-cookie'] ?? []).sort()
        expect(cookies).toEqual(['feature=2; Path=/', 'handler=1; Path=/'])
        expect(r.headers['content-type']).toBe('application/json; charset=utf-8')
        const o = await finished(probe, id)
        expect(o.sendStatus).toBe(200)
        expect(String(o.sendContentType)).toContain('application/json')
      })

      it('route-level onSend can replace the body (content-length follows)', async () => {
        const r = await get(base, '/bytes', { 'x-replace': '1' })
        expect(r.status).toBe(200)
        expect(r.text).toBe('replaced ✓')
        if (r.headers['content-length'] !== undefined) expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength('replaced ✓'))
      })

      it('global onSend sees the exact bytes of every handler response', async () => {
        const id = rid('gsend')
        const r = await get(proxied.url, '/users/99', { 'x-request-id': id })
        const o = await finished(trusted, id)
        expect(o.globalBody?.toString('utf8')).toBe(r.text)
        const id2 = rid('gsend2')
        const r2 = await get(proxied.url, '/bytes', { 'x-request-id': id2, 'x-replace': '1' })
        expect(r2.text).toBe('replaced ✓')
        // route-level onSend runs first (innermost), the global one sees its result
        expect((await finished(trusted, id2)).globalBody?.toString('utf8')).toBe('replaced ✓')
      })
    })

    describe('finish', () => {
      it('reports 200, 404 and 500 (handler error) with the route', async () => {
        const ids = [rid('f200'), rid('f404'), rid('f500')]
        await get(base, '/users/1', { 'x-request-id': ids[0]! })
        await get(base, '/missing', { 'x-request-id': ids[1]! })
        await get(base, '/boom', { 'x-request-id': ids[2]! })
        const [a, b, c] = await Promise.all(ids.map((id) => finished(probe, id)))
        expect(a).toMatchObject({ status: 200, aborted: false, route: '/users/:id' })
        expect(b).toMatchObject({ status: 404, aborted: false, route: undefined })
        expect(c).toMatchObject({ status: 500, aborted: false, route: '/boom' })
      })

      it('reports a client abort once, as aborted', async () => {
        const id = rid('abort')
        const ac = new AbortController()
        const pending = request(`${base}/slow`, { headers: { 'x-request-id': id, 'x-delay': '400' }, signal: ac.signal }).catch((e: unknown) => e)
        await waitFor(() => (probe.seen.has(id) ? true : undefined))
        ac.abort()
        await pending
        const o: Observation = await finished(probe, id)
        expect(o.aborted).toBe(true)
        expect(o.route).toBe('/slow')
        await new Promise((r) => setTimeout(r, 450))
        expect(probe.events.filter((e) => e.requestId === id)).toHaveLength(1)
      })

      it('route-level onResponse runs', async () => {
        const r = await get(base, '/bytes')
        expect(r.status).toBe(200)
      })
    })

    describe('client ip', () => {
      it('ignores a spoofed X-Forwarded-For without trustProxy', async () => {
        const id = rid('xff')
        await get(base, '/constant', { 'x-request-id': id, 'x-forwarded-for': '203.0.113.7' })
        const o = await finished(probe, id)
        expect(o.ip).not.toBe('203.0.113.7')
        expect(['127.0.0.1', '::1']).toContain(o.ip)
      })

      it('honours X-Forwarded-For from a trusted (loopback) proxy', async () => {
        const id = rid('xff-trusted')
        await get(proxied.url, '/constant', { 'x-request-id': id, 'x-forwarded-for': '203.0.113.7' })
        expect((await finished(trusted, id)).ip).toBe('203.0.113.7')
      })
    })

    describe('bad input', () => {
      it('answers a 10 KB URL without a 5xx', async () => {
        const r = await get(base, `/users/${'x'.repeat(10 * 1024)}`)
        expect(r.status).toBeLessThan(500)
      })

      it('answers non-UTF-8 percent-encoding in the path without a 5xx', async () => {
        for (const path of ['/users/%FF', '/users/%E0%A4%A', '/%C0%AF/x', '/users/%']) {
          const raw = await rawRequest(base, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
          expect(raw.status, path).toBeGreaterThan(0)
          expect(raw.status, path).toBeLessThan(500)
        }
      })

      it('answers malformed header values without a 5xx', async () => {
        const heads = [
          `GET /constant HTTP/1.1\r\nHost: x\r\nx-request-id: a\x01b\r\nConnection: close\r\n\r\n`,
          `GET /constant HTTP/1.1\r\nHost: x\r\nx-forwarded-for: ::::,999.1.1.1, not-an-ip\r\nConnection: close\r\n\r\n`,
          `GET /constant HTTP/1.1\r\nHost: x\r\nx-block: 1\r\nx-block: 1\r\nx-request-id: a\r\nx-request-id: b\r\nConnection: close\r\n\r\n`,
          Buffer.concat([Buffer.from('GET /constant HTTP/1.1\r\nHost: x\r\nx-bin: '), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from('\r\nConnection: close\r\n\r\n')]),
        ]
        for (const head of heads) {
          const raw = await rawRequest(base, head)
          expect(raw.status).toBeGreaterThan(0)
          expect(raw.status).toBeLessThan(500)
        }
      })

      it('answers an absolute-form request target without a 5xx', async () => {
        const raw = await rawRequest(base, `GET http://example.com/users/5 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`)
        expect(raw.status).toBeGreaterThan(0)
        expect(raw.status).toBeLessThan(500)
      })

      it('answers a huge header (over the server limit) without a 5xx', async () => {
        const raw = await rawRequest(base, `GET /constant HTTP/1.1\r\nHost: x\r\nx-huge: ${'a'.repeat(64 * 1024)}\r\nConnection: close\r\n\r\n`)
        expect(raw.status === 0 || (raw.status >= 400 && raw.status < 500)).toBe(true)
      })

      it('is still healthy after the bad input', async () => {
        expect((await get(base, '/constant')).status).toBe(200)
      })
    })

    fuzzScenarios(() => base, rawRequest)

    if (kit) featureScenarios(start, kit)
    else {
      describe('features (pass a kit to runConformance)', () => {
        it.todo('metrics, throttle, cache, slowlog, health scenarios')
      })
    }
  })
}
