import { Readable } from 'node:stream'
import { createEvents, createRiPipeline, type Feature, RiConfigError } from '@ri/core'
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
})
