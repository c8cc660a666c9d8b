import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { createEvents, createRiPipeline, type Feature, type FinishInfo, RiConfigError } from '@ri/core'
import Fastify from 'fastify'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { getExchange, riPlugin, withFeatures } from './index.js'

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

  it('reports each finish once, with status, bytes and aborts, without an onResponse hook', async () => {
    const seen: Array<{ route: string | undefined } & FinishInfo> = []
    const tap: Feature = { name: 'tap', onResponse: (ex, info) => void seen.push({ route: ex.route, ...info }) }
    const app = Fastify()
    const hooks: string[] = []
    const addHook = app.addHook.bind(app)
    app.addHook = ((name: string, fn: never) => (hooks.push(name), addHook(name as never, fn))) as typeof app.addHook
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
})
