import { once } from 'node:events'
import { createServer, request, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { RiConfigError } from './errors.js'
import type { RiEventMap } from './events.js'
import { createEvents } from './events.js'
import { type Logger, noopLogger } from './logger.js'
import { createNodeHandler, type NodeRoute } from './node.js'
import { type Feature, createPipeline, jsonAnswer } from './pipeline.js'
import { createRouter } from './router.js'
import { renderServerTiming } from './server-timing.js'

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** Header names as they came over the wire, lower-cased, repeats kept. */
  names: string[]
  body: string
}

function call(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, names: res.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()), body }))
    })
    req.on('error', reject)
    req.end()
  })
}

let server: Server | undefined
afterEach(async () => {
  if (server) {
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
    server = undefined
  }
})

async function serve(features: Feature[], routes: NodeRoute[], options: Parameters<typeof createPipeline>[1] = {}) {
  const pipeline = createPipeline(features, options)
  server = createServer(createNodeHandler(pipeline, routes))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { pipeline, port: (server.address() as AddressInfo).port }
}

describe('pipeline over real HTTP', () => {
  it('ctx.send writes one head with the features\' headers (handler headers win) and reports the response size', async () => {
    const sizes: Array<number | undefined> = []
    const feature: Feature = {
      name: 'f',
      onHeaders: (ex) => {
        ex.setHeader('x-feature', 'yes')
        ex.setHeader('cache-control', 'feature')
      },
      onResponse: (_ex, info) => sizes.push(info.responseBytes),
    }
    const { port } = await serve(
      [feature],
      [
        { method: 'GET', path: '/send', handler: (_q, res, ctx) => (res.setHeader('cache-control', 'handler'), ctx.send(200, 'héllo', { 'X-Own': '1' })) },
        // plain JS handlers often `return res.end(...)`: a returned response is not a failure
        { method: 'GET', path: '/raw', handler: ((_q: unknown, res: ServerResponse) => res.writeHead(200, { 'Content-Length': '3', 'content-type': 'text/plain' }).end('raw')) as unknown as NodeRoute['handler'] },
        { method: 'GET', path: '/own-length', handler: (_q, _s, ctx) => ctx.send(200, 'abc', { 'Content-Length': '3' }) },
        { method: 'GET', path: '/json-typed', handler: (_q, _s, ctx) => ctx.json(201, { a: 1 }, { 'Content-Type': 'application/vnd.ri+json', 'X-Request-Id': 'mine' }) },
        { method: 'GET', path: '/json', handler: (_q, _s, ctx) => ctx.json(200, ['é']) },
      ],
      { echoRequestId: true },
    )
    const a = await call(port, '/send')
    expect(a.body).toBe('héllo')
    expect(a.headers['content-length']).toBe('6')
    expect(a.headers['transfer-encoding']).toBeUndefined()
    expect(a.headers['x-own']).toBe('1')
    expect(a.headers['x-feature']).toBe('yes')
    expect(a.headers['cache-control']).toBe('handler')
    expect(a.headers['x-request-id']).toBeTruthy()
    const b = await call(port, '/raw')
    expect(b.body).toBe('raw')
    expect(b.headers['x-feature']).toBe('yes')
    const c = await call(port, '/own-length')
    expect(c.headers['content-length']).toBe('3')
    // the handler's Content-Type (any case) replaces json()'s default, and its request id wins: one of each on the wire
    const d = await call(port, '/json-typed')
    expect(d).toMatchObject({ status: 201, body: '{"a":1}' })
    expect(d.headers['content-type']).toBe('application/vnd.ri+json')
    expect(d.headers['x-request-id']).toBe('mine')
    expect(d.names.filter((n) => n === 'content-type' || n === 'x-request-id' || n === 'content-length')).toEqual(['content-type', 'x-request-id', 'content-length'])
    const e = await call(port, '/json')
    expect(e).toMatchObject({ body: '["é"]', headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': '6' } })
    const head = await call(port, '/send', {}, 'HEAD')
    expect(head).toMatchObject({ status: 200, body: '', headers: { 'content-length': '6', 'x-feature': 'yes' } })
    await new Promise((r) => setTimeout(r, 20))
    expect(sizes.slice(0, 5)).toEqual([6, 3, 3, 7, 6])
  })

  it('runs onRequest in order, lets one answer early, and skips the handler', async () => {
    const order: string[] = []
    let handled = 0
    const features: Feature[] = [
      { name: 'a', onRequest: () => void order.push('a') },
      {
        name: 'limit',
        onRequest: async (ex) => {
          order.push('limit')
          if (ex.header('x-over') === '1') return jsonAnswer(429, { error: 'Too Many Requests' }, { 'retry-after': '1' })
          return undefined
        },
      },
      { name: 'c', onRequest: () => void order.push('c') },
    ]
    const { port } = await serve(features, [{ method: 'GET', path: '/x', handler: (_q, _s, ctx) => (handled++, ctx.json(200, { ok: true })) }])
    const limited = await call(port, '/x', { 'x-over': '1' })
    expect(limited.status).toBe(429)
    expect(limited.headers['retry-after']).toBe('1')
    expect(JSON.parse(limited.body)).toEqual({ error: 'Too Many Requests' })
    expect(handled).toBe(0)
    expect(order).toEqual(['a', 'limit'])
    order.length = 0
    const ok = await call(port, '/x')
    expect(ok.status).toBe(200)
    expect(order).toEqual(['a', 'limit', 'c'])
    expect(handled).toBe(1)
  })

  it('reports the route template, final status and a high-resolution duration on finish', async () => {
    const events = createEvents()
    const seen: Array<RiEventMap['http.request']> = []
    events.on('http.request', (e) => seen.push(e))
    const finishes: number[] = []
    const feature: Feature = {
      name: 'observe',
      onRequest: (ex) => ex.onFinish((info) => finishes.push(info.status)),
      onResponse: () => {},
    }
    const { port } = await serve([feature], [
      {
        method: 'GET',
        path: '/users/:id',
        handler: async (_req, _res, ctx) => {
          await new Promise((r) => setTimeout(r, 3))
          await ctx.json(201, { id: ctx.params.id })
        },
      },
    ], { events })
    const reply = await call(port, '/users/42?secret=1')
    expect(reply.status).toBe(201)
    expect(JSON.parse(reply.body)).toEqual({ id: '42' })
    await call(port, '/nope')
    await new Promise((r) => setTimeout(r, 20))
    expect(seen.map((e) => [e.route, e.status])).toEqual([
      ['/users/:id', 201],
      [undefined, 404],
    ])
    expect(seen[0]!.durationMs).toBeGreaterThan(2)
    expect(Number.isInteger(seen[0]!.durationMs)).toBe(false)
    expect(finishes).toEqual([201, 404])
  })

  it('applies feature headers (Server-Timing, request id) right before the head is written', async () => {
    const feature: Feature = {
      name: 'timing',
      onRequest: (ex) => ex.timings.add('cache', 0.2, 'hit'),
      onHeaders: (ex) => ex.setHeader('server-timing', renderServerTiming(ex.timings.entries, ex.elapsed())),
    }
    const { port } = await serve([feature], [{ method: 'GET', path: '/', handler: (_q, res) => void res.end('hi') }], { echoRequestId: true })
    const reply = await call(port, '/', { 'x-request-id': 'abc-123' })
    expect(reply.headers['server-timing']).toMatch(/^cache;dur=0\.2;desc="hit", total;dur=[\d.]+$/)
    expect(reply.headers['x-request-id']).toBe('abc-123')
    const injected = await call(port, '/', { 'x-request-id': 'x'.repeat(100) })
    expect(injected.headers['x-request-id']).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/)
  })

  it('appends a feature Set-Cookie to the handler one instead of dropping either', async () => {
    const feature: Feature = { name: 'cookie', onRequest: (ex) => ex.setHeader('set-cookie', 'ri_lsn=abc; HttpOnly') }
    const { port } = await serve([feature], [
      { method: 'GET', path: '/both', handler: (_q, res) => (res.setHeader('set-cookie', 'session=1'), void res.end()) },
      { method: 'GET', path: '/feature-only', handler: (_q, res) => void res.end() },
      { method: 'GET', path: '/other', handler: (_q, res) => (res.setHeader('x-request-id', 'mine'), void res.end()) },
    ], { echoRequestId: true })
    expect((await call(port, '/both')).headers['set-cookie']).toEqual(['session=1', 'ri_lsn=abc; HttpOnly'])
    expect((await call(port, '/feature-only')).headers['set-cookie']).toEqual(['ri_lsn=abc; HttpOnly'])
    // Ordinary headers: the handler's value wins.
    expect((await call(port, '/other')).headers['x-request-id']).toBe('mine')
  })

  it('a throwing feature is logged once and the request continues', async () => {
    const warnings: string[] = []
    const logger = { warn: (_o: unknown, m: string) => warnings.push(m), info() {}, error() {} } as unknown as Logger
    const broken: Feature = {
      name: 'broken',
      onRequest: () => {
        throw new Error('redis down')
      },
    }
    const brokenAsync: Feature = { name: 'broken-async', onRequest: async () => Promise.reject(new Error('timeout')) }
    const { port } = await serve([broken, brokenAsync], [{ method: 'GET', path: '/', handler: (_q, res) => void res.end('ok') }], { logger })
    for (let i = 0; i < 3; i++) expect((await call(port, '/')).body).toBe('ok')
    expect(warnings).toHaveLength(2)
    expect(warnings[0]).toContain('"broken"')
  })

  it('a handler that throws (synchronously or not) answers 500 and the server keeps serving', async () => {
    const { port } = await serve(
      [{ name: 'sync', onRequest: () => undefined }],
      [
        { method: 'GET', path: '/throws', handler: () => { throw new Error('sync boom') } },
        { method: 'GET', path: '/rejects', handler: async () => { throw new Error('async boom') } },
        { method: 'GET', path: '/ok', handler: (_q, _s, ctx) => ctx.send(200, 'ok') },
      ],
    )
    expect((await call(port, '/throws')).status).toBe(500)
    expect((await call(port, '/rejects')).status).toBe(500)
    expect((await call(port, '/ok')).body).toBe('ok')
  })

  it('onSend sees and may replace the body', async () => {
    const stored: string[] = []
    const feature: Feature = {
      name: 'store',
      onSend: (_ex, body) => {
        stored.push(String(body))
        return `${body}!`
      },
    }
    const { port } = await serve([feature], [{ method: 'GET', path: '/', handler: (_q, _s, ctx) => ctx.send(200, 'body') }])
    const reply = await call(port, '/')
    expect(reply.body).toBe('body!')
    expect(reply.headers['content-length']).toBe('5')
    expect(stored).toEqual(['body'])
  })

  it('resolves the client ip through trustProxy only', async () => {
    const ips: string[] = []
    const feature: Feature = { name: 'ip', onRequest: (ex) => void ips.push(ex.ip) }
    const routes: NodeRoute[] = [{ method: 'GET', path: '/', handler: (_q, res) => void res.end() }]
    const { port } = await serve([feature], routes)
    await call(port, '/', { 'x-forwarded-for': '6.6.6.6' })
    expect(ips).toEqual(['127.0.0.1'])
  })

  it('validates its options at construction', () => {
    expect(() => createPipeline([], { requestIdHeader: 'X Bad' })).toThrow(RiConfigError)
    expect(() => createPipeline([], { trustProxy: ['nope'] })).toThrow(RiConfigError)
    expect(() => createPipeline([{} as Feature])).toThrow(/features\[0\]/)
    expect(() => createPipeline([], { trustproxy: true } as never)).toThrow(/did you mean 'trustProxy'/)
    expect(() => createPipeline([], { generateRequestId: 'uuid' } as never)).toThrow(/generateRequestId/)
  })

  it('makes fresh request ids with generateRequestId, and replaces an unsafe one', async () => {
    const warnings: unknown[] = []
    const logger = { ...noopLogger, warn: (...a: unknown[]) => void warnings.push(a) }
    const uuid = createPipeline([], { generateRequestId: () => '0f8fad5b-d9cb-469f-a165-70867728950e' })
    expect(uuid.exchange({ method: 'GET', url: '/', headers: {} }).requestId).toBe('0f8fad5b-d9cb-469f-a165-70867728950e')
    expect(uuid.exchange({ method: 'GET', url: '/', headers: { 'x-request-id': 'abc' } }).requestId).toBe('abc')
    const bad = createPipeline([], { generateRequestId: () => 'a\r\nSet-Cookie: x=1', logger, echoRequestId: true })
    const ex = bad.exchange({ method: 'GET', url: '/', headers: {} })
    expect(ex.requestId).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/)
    expect(ex.responseHeaders['x-request-id']).toBe(ex.requestId)
    bad.exchange({ method: 'GET', url: '/', headers: {} })
    expect(warnings).toHaveLength(1) // once per episode, not once per request
  })

  it('makes a request id only when something reads it, and keeps it from then on', () => {
    let made = 0
    const pipeline = createPipeline([], { generateRequestId: () => `id-${++made}` })
    const unread = pipeline.exchange({ method: 'GET', url: '/', headers: {} })
    pipeline.finish(unread, { status: 200 })
    expect(made).toBe(0)
    const read = pipeline.exchange({ method: 'GET', url: '/', headers: {} })
    expect(read.requestId).toBe('id-1')
    expect(read.requestId).toBe('id-1')
    expect(made).toBe(1)
    expect(read.responseHeaders['x-request-id']).toBeUndefined() // not echoed unless asked
    const inbound = pipeline.exchange({ method: 'GET', url: '/', headers: { 'x-request-id': 'from-client' } })
    expect(inbound.requestId).toBe('from-client')
    expect(made).toBe(1)
    const echoing = createPipeline([], { generateRequestId: () => `echo-${++made}` })
    const ex = echoing.exchange({ method: 'GET', url: '/', headers: {} })
    expect(ex.responseHeaders['x-request-id']).toBeUndefined()
    const echoed = createPipeline([], { generateRequestId: () => `echo-${++made}`, echoRequestId: true }).exchange({ method: 'GET', url: '/', headers: {} })
    expect(echoed.responseHeaders['x-request-id']).toBe(echoed.requestId)
  })

  it('resolves the client address when first read, through trustProxy', () => {
    const trusting = createPipeline([], { trustProxy: 'loopback' })
    const ex = trusting.exchange({ method: 'GET', url: '/', headers: { 'x-forwarded-for': '203.0.113.9' }, remoteAddress: '127.0.0.1' })
    expect(ex.remoteAddress).toBe('127.0.0.1')
    expect(ex.ip).toBe('203.0.113.9')
    expect(ex.ip).toBe('203.0.113.9')
    const direct = createPipeline([]).exchange({ method: 'GET', url: '/', headers: { 'x-forwarded-for': '203.0.113.9' }, remoteAddress: '198.51.100.4' })
    expect(direct.ip).toBe('198.51.100.4')
  })

  it('maps unknown methods to _OTHER', () => {
    const p = createPipeline([])
    expect(p.exchange({ method: 'get', url: '/', headers: {} }).method).toBe('GET')
    expect(p.exchange({ method: 'BREW', url: '/a?b=1', headers: {} }).method).toBe('_OTHER')
    const ex = p.exchange({ method: 'GET', url: '/a?b=1', headers: {} })
    expect([ex.path, ex.query]).toEqual(['/a', 'b=1'])
  })
})

describe('router', () => {
  it('matches templates, params and wildcards', () => {
    const r = createRouter<number>().add('GET', '/users/:id', 1).add('GET', '/health', 2).add('GET', '/files/*', 3)
    expect(r.match('GET', '/users/a%20b')).toMatchObject({ route: '/users/:id', params: { id: 'a b' }, value: 1 })
    expect(r.match('HEAD', '/health')?.value).toBe(2)
    expect(r.match('GET', '/files/a/b/c')).toMatchObject({ route: '/files/*', params: { '*': 'a/b/c' } })
    expect(r.match('POST', '/users/1')).toBeUndefined()
    expect(r.match('GET', '/users/%E0%A4%A')?.params.id).toBe('%E0%A4%A')
    // methods in any case, statics per method, several params
    const s = createRouter<string>().add('get', '/a', 'get a').add('POST', '/a', 'post a').add('PURGE', '/a', 'purge a').add('GET', '/o/:org/r/:repo', 'repo')
    expect(s.match('get', '/a')?.value).toBe('get a')
    expect(s.match('POST', '/a')?.value).toBe('post a')
    expect(s.match('purge', '/a')?.value).toBe('purge a')
    expect(s.match('HEAD', '/a')?.value).toBe('get a')
    expect(s.match('PUT', '/a')).toBeUndefined()
    expect(s.match('GET', '/o/ri/r/x%2Fy')?.params).toEqual({ org: 'ri', repo: 'x/y' })
    // params inherit nothing: a param named like an Object.prototype key is just a param
    const t = createRouter<number>().add('GET', '/p/:toString', 1)
    const params = t.match('GET', '/p/x')!.params
    expect(params.toString).toBe('x')
    expect('hasOwnProperty' in params).toBe(false)
    expect(t.match('GET', '/p/x/')?.params).toEqual({ toString: 'x' })
  })
})

describe('node binding send contract', () => {
  it('onSend sees the handler status and headers and may change them', async () => {
    const seen: Array<[number, string | string[] | undefined]> = []
    const feature: Feature = {
      name: 'etag',
      onSend: (ex, body) => {
        seen.push([ex.status, ex.responseHeaders['cache-control']])
        ex.setHeader('etag', '"abc"')
        ex.setHeader('cache-control', 'public, max-age=5')
        return `${body}!`
      },
    }
    const pipeline = createPipeline([feature])
    server = createServer(
      createNodeHandler(pipeline, [
        { method: 'GET', path: '/', handler: (_q, res, ctx) => (res.setHeader('cache-control', 'no-cache'), ctx.send(201, 'made')) },
      ]),
    )
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const reply = await call((server.address() as AddressInfo).port, '/')
    expect(seen).toEqual([[201, 'no-cache']])
    expect(reply.status).toBe(201)
    expect(reply.body).toBe('made!')
    expect(reply.headers['content-length']).toBe('5')
    expect(reply.headers.etag).toBe('"abc"')
    expect(reply.headers['cache-control']).toBe('public, max-age=5')
  })
})
