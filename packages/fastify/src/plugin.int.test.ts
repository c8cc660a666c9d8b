import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { createEvents, createRiPipeline, type Feature, type FinishInfo, RiConfigError } from '@ri/core'
import Fastify from 'fastify'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { applyFeatures, getExchange, riPlugin, sendAnswer, withFeatures } from './index.js'
import { readsRouteContext, routeConfigOf } from './plugin.js'

/** The names of the hooks registered on `app` from now on (ri's included). */
function hookNames(app: ReturnType<typeof Fastify>): string[] {
  const names: string[] = []
  const addHook = app.addHook.bind(app)
  app.addHook = ((name: string, fn: never) => (names.push(name), addHook(name as never, fn))) as typeof app.addHook
  return names
}

describe('@ri/fastify riPlugin', () => {
  it('validates its options', async () => {
    const app = Fastify()
    await expect(app.register(riPlugin, { nope: 1 } as never)).rejects.toThrow(RiConfigError)
    const app2 = Fastify()
    await expect(app2.register(riPlugin, { pipeline: createRiPipeline({}), trustProxy: true })).rejects.toThrow(/trustProxy/)
    expect(() => withFeatures({} as Feature)).toThrow(RiConfigError)
  })

  it('route templates include register() prefixes; async features; streams pass through', async () => {
    const events = createEvents()
    const routes: Array<string | undefined> = []
    events.on('http.request', (e) => routes.push(e.route))
    const sendSeen: string[] = []
    const tap: Feature = { name: 'tap', onRequest: async () => undefined, onSend: (_ex, body) => void sendSeen.push(String(body)) }
    const app = Fastify()
    await app.register(riPlugin, { events })
    await app.register(
      async (child) => {
        child.get('/items/:id', { config: withFeatures(tap) }, async (req) => ({ id: (req.params as { id: string }).id, rid: getExchange(req)?.requestId !== undefined }))
        child.get('/stream', { config: withFeatures(tap) }, async (_req, reply) => reply.type('text/plain').send(Readable.from(['a', 'b'])))
      },
      { prefix: '/api' },
    )
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      expect(await (await request(`${url}/api/items/3`)).body.json()).toEqual({ id: '3', rid: true })
      expect(await (await request(`${url}/api/stream`)).body.text()).toBe('ab')
      await new Promise((r) => setTimeout(r, 20))
      expect(routes).toEqual(['/api/items/:id', '/api/stream'])
      expect(sendSeen).toEqual(['{"id":"3","rid":true}']) // a stream is not buffered
    } finally {
      await app.close()
    }
  })

  it('reads the route config from the route context, the same object routeOptions gives, also on a 404', async () => {
    const app = Fastify()
    await app.register(riPlugin, {})
    const seen: boolean[] = []
    const routes: Array<string | undefined> = []
    app.addHook('onRequest', async (req) => {
      seen.push(routeConfigOf(req) === req.routeOptions.config)
      routes.push(getExchange(req)?.route)
    })
    app.get('/users/:id', { config: { mine: 1 } }, async () => 'ok')
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      expect((await request(`${url}/users/1`)).statusCode).toBe(200)
      expect((await request(`${url}/nope`)).statusCode).toBe(404)
      // A Fastify that renamed its context symbol would still work (through routeOptions), slower: fail here to notice.
      expect(readsRouteContext()).toBe(true)
      expect(seen).toEqual([true, true])
      expect(routes).toEqual(['/users/:id', undefined])
    } finally {
      await app.close()
    }
  })

  it('reports each finish once, with status, bytes and aborts, without an onResponse hook', async () => {
    const seen: Array<{ route: string | undefined } & FinishInfo> = []
    const tap: Feature = { name: 'tap', onResponse: (ex, info) => void seen.push({ route: ex.route, ...info }) }
    const app = Fastify()
    const hooks = hookNames(app)
    await app.register(riPlugin, { features: [tap] })
    let release: () => void = () => {}
    const held = new Promise<void>((r) => (release = r))
    let arrived: () => void = () => {}
    const slowArrived = new Promise<void>((r) => (arrived = r))
    app.get('/users/:id', async () => ({ id: 1 }))
    app.get('/missing', async (_req, reply) => reply.code(404).send({ error: 'no' }))
    app.get('/slow', async () => {
      arrived()
      await held
      return { late: true }
    })
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      expect(hooks).toContain('onRequest')
      expect(hooks).not.toContain('onResponse')
      expect(hooks).not.toContain('onSend') // no feature has onSend: Fastify runs no onSend hook list
      expect((await request(`${url}/users/1`)).statusCode).toBe(200)
      expect((await request(`${url}/missing`)).statusCode).toBe(404)
      // a client that goes away before the response
      const socket = connect((app.server.address() as { port: number }).port, '127.0.0.1')
      socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
      await slowArrived
      socket.destroy()
      await new Promise((r) => setTimeout(r, 50))
      release()
      await new Promise((r) => setTimeout(r, 50))
      expect(seen.map(({ route, status, aborted, responseBytes }) => ({ route, status, aborted, responseBytes }))).toEqual([
        { route: '/users/:id', status: 200, aborted: false, responseBytes: 8 },
        { route: '/missing', status: 404, aborted: false, responseBytes: 14 },
        { route: '/slow', status: 200, aborted: true, responseBytes: undefined },
      ])
      for (const s of seen) expect(s.durationMs).toBeGreaterThan(0)
    } finally {
      await app.close()
    }
  })

  it('joins feature headers on the head Fastify writes: handler wins, Set-Cookie appends, route units first, hijacked replies too', async () => {
    const order: string[] = []
    const global: Feature = {
      name: 'global',
      onHeaders: (ex) => {
        order.push('global')
        ex.setHeader('x-feature', 'global')
        ex.setHeader('x-mine', 'feature')
        ex.setHeader('set-cookie', 'f=1')
      },
    }
    const route = (n: string): Feature => ({ name: n, onHeaders: (ex) => void (order.push(n), ex.setHeader(`x-${n}`, '1')) })
    const app = Fastify()
    await app.register(riPlugin, { features: [global], echoRequestId: true })
    app.get('/h', { config: withFeatures(route('r1')) }, async (req, reply) => {
      const later = await applyFeatures(req, [route('r2')])
      expect(later).toBeUndefined()
      reply.header('x-mine', 'handler').header('set-cookie', 'h=1')
      return { ok: true }
    })
    app.get('/raw', async (_req, reply) => {
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/plain' })
      reply.raw.end('raw')
    })
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      const r = await request(`${url}/h`)
      expect(await r.body.json()).toEqual({ ok: true })
      expect(r.headers['x-mine']).toBe('handler')
      expect(r.headers['x-feature']).toBe('global')
      expect(r.headers['x-r1']).toBe('1')
      expect(r.headers['x-r2']).toBe('1')
      expect(r.headers['set-cookie']).toEqual(['h=1', 'f=1'])
      expect(r.headers['x-request-id']).toBeTruthy()
      expect(order).toEqual(['r1', 'r2', 'global'])
      const raw = await request(`${url}/raw`)
      expect(await raw.body.text()).toBe('raw')
      expect(raw.headers['x-feature']).toBe('global')
      expect(raw.headers['x-request-id']).toBeTruthy()
    } finally {
      await app.close()
    }
  })

  it('runs onSend features: through a route-level hook for config features (once, also on HEAD), on the raw body for applyFeatures()', async () => {
    const seen: string[] = []
    const upper: Feature = {
      name: 'upper',
      onSend: (ex, body) => {
        seen.push(`${ex.method} ${ex.route}`)
        ex.setHeader('x-upper', '1')
        return Buffer.from((typeof body === 'string' ? body : new TextDecoder().decode(body)).toUpperCase())
      },
    }
    const early: Feature = { name: 'early', onRequest: () => ({ status: 429, headers: { 'retry-after': '1' }, body: 'slow down' }) }
    const app = Fastify()
    const hooks = hookNames(app)
    await app.register(riPlugin, {})
    app.get('/config', { config: withFeatures(upper) }, async () => 'from config')
    app.get('/dynamic', async (req, reply) => {
      const a = await applyFeatures(req, [upper])
      if (a) return sendAnswer(req, reply, a)
      return reply.type('text/plain').send('from applyFeatures')
    })
    app.get('/refused', async (req, reply) => {
      const a = await applyFeatures(req, [upper, early])
      if (a) return sendAnswer(req, reply, a)
      return 'never'
    })
    app.get('/plain', async () => 'plain')
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      expect(hooks).not.toContain('onSend')
      const c = await request(`${url}/config`)
      expect(await c.body.text()).toBe('FROM CONFIG')
      expect(c.headers['x-upper']).toBe('1')
      expect(c.headers['content-length']).toBe('11')
      const head = await request(`${url}/config`, { method: 'HEAD' })
      await head.body.text()
      expect(head.headers['x-upper']).toBe('1')
      const d = await request(`${url}/dynamic`)
      expect(await d.body.text()).toBe('FROM APPLYFEATURES')
      expect(d.headers['x-upper']).toBe('1')
      expect(d.headers['content-length']).toBe('18')
      const refused = await request(`${url}/refused`)
      expect(refused.statusCode).toBe(429)
      expect(await refused.body.text()).toBe('slow down') // an early answer is not a handler response
      expect(await (await request(`${url}/plain`)).body.text()).toBe('plain')
      expect(seen).toEqual(['GET /config', 'HEAD /config', 'GET /dynamic'])
    } finally {
      await app.close()
    }
  })
})
