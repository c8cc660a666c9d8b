import { once } from 'node:events'
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { leaveMidBody } from '@ri/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { compileJson } from './json.js'
import { applyNodeFeatures, createNodeBinding, nodeStateOf, sendNodeAnswer } from './node-binding.js'
import { hookPrototypeMethod } from './node.js'
import { type Feature, createPipeline, jsonAnswer } from './pipeline.js'

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

function call(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

let server: Server | undefined
afterEach(async () => {
  server?.closeAllConnections()
  server?.close()
  server = undefined
})

type Handler = (req: IncomingMessage, res: ServerResponse) => void

async function serve(bind: (req: IncomingMessage, res: ServerResponse, next: (e?: unknown) => void) => void, handler: Handler): Promise<number> {
  server = createServer((req, res) => bind(req, res, (error) => (error ? res.destroy() : handler(req, res))))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

const upper: Feature = { name: 'upper', onSend: (ex, body) => Buffer.from(body).toString('utf8').toUpperCase() }
const poweredBy: Feature = { name: 'powered-by', onHeaders: (ex) => ex.setHeader('x-powered-by', 'ri') }

describe('createNodeBinding', () => {
  it('labels the route, applies feature headers and lets the handler answer', async () => {
    const seen: Array<string | undefined> = []
    const pipeline = createPipeline([poweredBy, { name: 'see', onRequest: (ex) => void seen.push(ex.route) }])
    const port = await serve(createNodeBinding(pipeline, { route: (_req, path) => (path.startsWith('/users/') ? '/users/:id' : undefined) }), (req, res) => {
      res.setHeader('content-type', 'text/plain')
      res.end(`hi ${nodeStateOf(req)?.exchange.route}`)
    })
    const r = await call(port, '/users/7?x=1')
    expect(r.status).toBe(200)
    expect(r.body).toBe('hi /users/:id')
    expect(r.headers['x-powered-by']).toBe('ri')
    expect(seen).toEqual(['/users/:id'])
  })

  it('runs `before` features first and writes an early answer without calling next()', async () => {
    const order: string[] = []
    const deny: Feature = { name: 'deny', onRequest: () => (order.push('global'), jsonAnswer(429, { error: 'Too Many Requests' })) }
    const first: Feature = { name: 'first', onRequest: () => void order.push('before') }
    let handled = false
    const port = await serve(createNodeBinding(createPipeline([deny]), { before: [first] }), (_req, res) => {
      handled = true
      res.end('handler')
    })
    const r = await call(port, '/x')
    expect(r.status).toBe(429)
    expect(JSON.parse(r.body)).toEqual({ error: 'Too Many Requests' })
    expect(order).toEqual(['before', 'global'])
    expect(handled).toBe(false)
  })

  it('hands the whole body to global onSend features, also when the handler wrote the head first (Fastify style)', async () => {
    const port = await serve(createNodeBinding(createPipeline([upper])), (_req, res) => {
      res.writeHead(201, { 'content-type': 'text/plain', 'content-length': '5' })
      res.write('he')
      res.end('llo')
    })
    const r = await call(port, '/x')
    expect(r.status).toBe(201)
    expect(r.body).toBe('HELLO')
    expect(r.headers['content-type']).toBe('text/plain')
    expect(r.headers['content-length']).toBe('5')
  })

  it('keeps handler headers given to writeHead and appends a feature Set-Cookie to the handler one', async () => {
    const cookie: Feature = { name: 'cookie', onHeaders: (ex) => ex.setHeader('set-cookie', 'ri=1') }
    const port = await serve(createNodeBinding(createPipeline([cookie, poweredBy])), (_req, res) => {
      res.writeHead(200, { 'set-cookie': 'app=1', 'x-powered-by': 'app' })
      res.end('ok')
    })
    const r = await call(port, '/x')
    expect(r.headers['set-cookie']).toEqual(['app=1', 'ri=1'])
    expect(r.headers['x-powered-by']).toBe('app')
  })
})

describe('applyNodeFeatures / sendNodeAnswer', () => {
  it('runs route-level features on the exchange the binding created, innermost onSend first', async () => {
    const exclaim: Feature = { name: 'exclaim', onSend: (_ex, body) => `${Buffer.from(body).toString('utf8')}!` }
    const port = await serve(createNodeBinding(createPipeline([upper])), async (req, res) => {
      const answer = await applyNodeFeatures(req, res, [exclaim, poweredBy])
      expect(answer).toBeUndefined()
      res.end('hey')
    })
    const r = await call(port, '/x')
    expect(r.body).toBe('HEY!') // route-level '!' first, then the global upper-casing
    expect(r.headers['x-powered-by']).toBe('ri')
  })

  it('returns the early answer of a route-level feature; sendNodeAnswer writes it past onSend features', async () => {
    const gate: Feature = { name: 'gate', onRequest: () => jsonAnswer(403, { error: 'no' }) }
    const port = await serve(createNodeBinding(createPipeline([upper])), async (req, res) => {
      const answer = await applyNodeFeatures(req, res, [gate])
      if (answer) sendNodeAnswer(req, res, answer)
    })
    const r = await call(port, '/x')
    expect(r.status).toBe(403)
    expect(r.body).toBe('{"error":"no"}') // not upper-cased: an answer is not a handler response
  })

  it('captures the body only when the route-level features did not answer (sync and async onRequest)', async () => {
    const wrapped: Array<[string, boolean]> = []
    const exclaim = (answer: boolean, async: boolean): Feature => ({
      name: 'hit-or-store',
      onRequest: () => {
        const a = answer ? jsonAnswer(200, { cached: true }) : undefined
        return async ? Promise.resolve(a) : a
      },
      onSend: (_ex, body) => `${Buffer.from(body).toString('utf8')}!`,
    })
    const port = await serve(createNodeBinding(createPipeline([poweredBy])), async (req, res) => {
      const url = new URL(req.url!, 'http://x')
      const write = res.write
      const end = res.end
      const answer = await applyNodeFeatures(req, res, [exclaim(url.searchParams.get('hit') === '1', url.searchParams.get('async') === '1')])
      wrapped.push([req.url!, res.write !== write || res.end !== end])
      if (answer) sendNodeAnswer(req, res, answer)
      else res.end('fresh')
    })
    for (const async of ['0', '1']) {
      const hit = await call(port, `/x?hit=1&async=${async}`)
      expect(hit.body).toBe('{"cached":true}') // written as is, no onSend
      expect(hit.headers['x-powered-by']).toBe('ri')
      const miss = await call(port, `/x?hit=0&async=${async}`)
      expect(miss.body).toBe('fresh!')
    }
    expect(wrapped).toEqual([
      ['/x?hit=1&async=0', false],
      ['/x?hit=0&async=0', true],
      ['/x?hit=1&async=1', false],
      ['/x?hit=0&async=1', true],
    ])
  })

  it('is a no-op without a binding', () => {
    expect(applyNodeFeatures({} as IncomingMessage, {} as ServerResponse, [poweredBy])).toBeUndefined()
  })
})

describe('compileJson', () => {
  it('compiles a schema once; properties outside it never leak', () => {
    const stringify = compileJson({ type: 'object', properties: { id: { type: 'string' } } })
    expect(stringify({ id: 1, secret: 'x' })).toBe('{"id":"1"}')
  })
})

describe('bindResponse', () => {
  it('two bindings on one response (two ri() layers) both apply their headers and both see the finish', async () => {
    const finished: string[] = []
    const layer = (name: string) =>
      createPipeline(
        [
          { name: `${name}-header`, onHeaders: (ex) => ex.setHeader(`x-${name}`, '1') },
          { name: `${name}-finish`, onResponse: (_ex, info) => void finished.push(`${name}:${info.status}:${info.aborted}`) },
        ],
        { echoRequestId: false },
      )
    const outer = createNodeBinding(layer('outer'))
    const inner = createNodeBinding(layer('inner'))
    const port = await serve(
      (req, res, next) => outer(req, res, (e) => (e ? next(e) : inner(req, res, next))),
      (_req, res) => {
        res.writeHead(201, { 'content-type': 'text/plain' })
        res.end('ok')
      },
    )
    const r = await call(port, '/x')
    expect(r.status).toBe(201)
    expect(r.headers['x-outer']).toBe('1')
    expect(r.headers['x-inner']).toBe('1')
    expect(r.body).toBe('ok')
    for (let i = 0; i < 50 && finished.length < 2; i++) await new Promise((done) => setTimeout(done, 10))
    expect(finished.sort()).toEqual(['inner:201:false', 'outer:201:false'])
  })

  it('responses whose prototype a framework swaps per request (Express): headers, finish, Set-Cookie, HEAD, and a writeHead patched before ri', async () => {
    const finished: string[] = []
    const pipeline = createPipeline([
      poweredBy,
      { name: 'cookie', onRequest: (ex) => ex.setHeader('set-cookie', 'f=1') },
      { name: 'finish', onResponse: (ex, info) => void finished.push(`${ex.path}:${info.status}:${info.responseBytes}`) },
    ], { echoRequestId: true })
    const bind = createNodeBinding(pipeline)
    // What express does: one prototype per app, set on every response before the middleware runs.
    const { ServerResponse: Plain } = await import('node:http')
    const appResponse = Object.create(Plain.prototype) as object
    const plainWriteHead = Plain.prototype.writeHead
    const seenBefore: string[] = []
    server = createServer((req, res) => {
      Object.setPrototypeOf(res, appResponse)
      if (req.url === '/patched-before') {
        // on-headers style, installed before ri: wraps whatever writeHead it found
        const prev = res.writeHead
        res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
          seenBefore.push('before')
          return (prev as (...a: unknown[]) => ServerResponse).apply(this, args)
        } as ServerResponse['writeHead']
      }
      bind(req, res, () => {
        if (req.url === '/writehead') {
          res.writeHead(201, { 'Content-Type': 'text/plain', 'Set-Cookie': 'h=1', 'Content-Length': '4' })
          res.end('made')
        } else {
          res.setHeader('content-type', 'text/plain')
          res.setHeader('content-length', 2)
          res.end('ok')
        }
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as AddressInfo).port
    for (let i = 0; i < 3; i++) {
      const r = await call(port, '/plain')
      expect(r).toMatchObject({ status: 200, body: 'ok', headers: { 'x-powered-by': 'ri', 'set-cookie': ['f=1'] } })
      expect(r.headers['x-request-id']).toBeTruthy()
    }
    const w = await call(port, '/writehead')
    expect(w).toMatchObject({ status: 201, body: 'made', headers: { 'x-powered-by': 'ri', 'set-cookie': ['h=1', 'f=1'], 'content-type': 'text/plain' } })
    const p = await call(port, '/patched-before')
    expect(p).toMatchObject({ status: 200, body: 'ok', headers: { 'x-powered-by': 'ri' } })
    expect(seenBefore).toEqual(['before'])
    expect(await call(port, '/plain', 'HEAD')).toMatchObject({ status: 200, body: '', headers: { 'x-powered-by': 'ri' } })
    // ri hooks writeHead once, on the prototype, and never on a response
    expect(Object.getOwnPropertyNames(appResponse)).toContain('writeHead')
    expect(Plain.prototype.writeHead).toBe(plainWriteHead)
    // a response of the same prototype that ri never bound writes its head untouched
    const bare = createServer((_req, res) => {
      Object.setPrototypeOf(res, appResponse)
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end('bare')
    })
    bare.listen(0, '127.0.0.1')
    await once(bare, 'listening')
    const b = await call((bare.address() as AddressInfo).port, '/')
    bare.close()
    expect(b.body).toBe('bare')
    expect(b.headers['x-powered-by']).toBeUndefined()
    for (let i = 0; i < 50 && finished.length < 6; i++) await new Promise((done) => setTimeout(done, 10))
    expect(finished).toEqual(['/plain:200:2', '/plain:200:2', '/plain:200:2', '/writehead:201:4', '/patched-before:200:2', '/plain:200:2'])
  })

  it.each(['plain', 'swapped'] as const)('%s responses: the finish comes through an emit hook (no listener per response), with the status written and aborted when the client left mid-body', async (kind) => {
    const finished: string[] = []
    const bind = createNodeBinding(createPipeline([{ name: 'finish', onResponse: (ex, info) => void finished.push(`${ex.path}:${info.status}:${info.aborted}`) }]))
    const { ServerResponse: Plain } = await import('node:http')
    const appResponse = Object.create(Plain.prototype) as object
    const added: number[] = []
    const seen: string[] = []
    server = createServer((req, res) => {
      // plain: node's own ServerResponse (Fastify, node:http); swapped: a prototype set per request (Express)
      if (kind === 'swapped') Object.setPrototypeOf(res, appResponse)
      const before = res.listenerCount('close') + res.listenerCount('finish')
      bind(req, res, () => {
        added.push(res.listenerCount('close') + res.listenerCount('finish') - before)
        // the application's own listeners still hear every event, with its arguments
        res.on('finish', (...args: unknown[]) => void seen.push(`finish:${req.url}:${args.length}`))
        res.on('close', () => void seen.push(`close:${req.url}`))
        if (req.url === '/late-status') {
          res.writeHead(201, { 'content-type': 'text/plain' })
          res.statusCode = 599 // too late: the head went out with 201
          res.end('x')
        } else if (req.url === '/abort') {
          res.writeHead(200, { 'content-type': 'text/plain' })
          res.write('partial') // never ended: the client goes away
        } else {
          res.setHeader('content-type', 'text/plain')
          res.end('ok')
        }
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as AddressInfo).port
    expect((await call(port, '/ok')).body).toBe('ok')
    expect((await call(port, '/late-status')).status).toBe(201)
    await leaveMidBody(`http://127.0.0.1:${port}/abort`)
    for (let i = 0; i < 100 && finished.length < 3; i++) await new Promise((done) => setTimeout(done, 10))
    expect(finished).toEqual(['/ok:200:false', '/late-status:201:false', '/abort:200:true'])
    expect(added).toEqual([0, 0, 0])
    if (kind === 'swapped') expect(Object.getOwnPropertyNames(appResponse)).toEqual(expect.arrayContaining(['writeHead', 'emit']))
    expect(seen).toEqual(['finish:/ok:0', 'close:/ok', 'finish:/late-status:0', 'close:/late-status', 'close:/abort'])
  })

  it('route-level onHeaders run before the global ones, in the order applied, without a property added to the response', async () => {
    const order: string[] = []
    const tag = (n: string): Feature => ({ name: n, onHeaders: (ex) => void (order.push(n), ex.setHeader(`x-${n}`, '1')) })
    const bind = createNodeBinding(createPipeline([tag('global')]))
    const { ServerResponse: Plain } = await import('node:http')
    const appResponse = Object.create(Plain.prototype) as object
    const ownKeys: string[][] = []
    server = createServer((req, res) => {
      if (req.url === '/swapped') Object.setPrototypeOf(res, appResponse)
      bind(req, res, async () => {
        const before = Reflect.ownKeys(res).map(String)
        await applyNodeFeatures(req, res, [tag('r1')])
        await applyNodeFeatures(req, res, [tag('r2')])
        ownKeys.push(Reflect.ownKeys(res).map(String).filter((k) => !before.includes(k)))
        res.setHeader('content-type', 'text/plain')
        res.end('ok')
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as AddressInfo).port
    for (const path of ['/swapped', '/plain']) {
      order.length = 0
      const r = await call(port, path)
      expect(r.body).toBe('ok')
      expect(r.headers).toMatchObject({ 'x-r1': '1', 'x-r2': '1', 'x-global': '1' })
      expect(order).toEqual(['r1', 'r2', 'global'])
    }
    expect(ownKeys).toEqual([[], []])
  })

  it('the prototype hook calls the writeHead it shadows as it is at call time, and a frozen prototype still gets ri headers', async () => {
    const { ServerResponse: Plain } = await import('node:http')
    const mid = Object.create(Plain.prototype) as { writeHead?: unknown }
    const appResponse = Object.create(mid) as object
    const frozen = Object.freeze(Object.create(Plain.prototype) as object)
    const bind = createNodeBinding(createPipeline([poweredBy]))
    let instrumented = 0
    server = createServer((req, res) => {
      Object.setPrototypeOf(res, req.url === '/frozen' ? frozen : appResponse)
      bind(req, res, () => {
        res.setHeader('content-type', 'text/plain')
        res.end('ok')
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as AddressInfo).port
    expect((await call(port, '/a')).headers['x-powered-by']).toBe('ri')
    // an APM patches writeHead further up the chain after ri hooked the app's prototype
    mid.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      instrumented++
      return (Plain.prototype.writeHead as (...a: unknown[]) => ServerResponse).apply(this, args)
    }
    const b = await call(port, '/b')
    expect(b).toMatchObject({ status: 200, body: 'ok', headers: { 'x-powered-by': 'ri' } })
    expect(instrumented).toBe(1)
    const f = await call(port, '/frozen')
    expect(f).toMatchObject({ status: 200, body: 'ok', headers: { 'x-powered-by': 'ri' } })
    expect(Object.getOwnPropertyNames(frozen)).toEqual([])
  })
})

describe('hookPrototypeMethod', () => {
  it('shadows a method once, calls the one it shadows as it is at call time, and leaves a frozen prototype alone', () => {
    const base = { greet: (who: string) => `hello ${who}` }
    const proto = Object.create(base) as { greet(who: string): string }
    const { hook, parent } = hookPrototypeMethod<(who: string) => string>(proto, 'greet', (up) => (who) => `[${up()(who)}]`)
    const obj = Object.create(proto) as { greet(who: string): string }
    expect(obj.greet('ada')).toBe('[hello ada]')
    expect(proto.greet).toBe(hook)
    base.greet = (who) => `hi ${who}` // patched later, as an APM would
    expect(obj.greet('ada')).toBe('[hi ada]')
    expect(parent()('x')).toBe('hi x')
    const frozen = Object.freeze(Object.create(base)) as object
    expect(hookPrototypeMethod(frozen, 'greet', (up) => up()).hook).toBeNull()
    expect(Object.getOwnPropertyNames(frozen)).toEqual([])
  })
})
