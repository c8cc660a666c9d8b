import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'
import { createEvents, type Feature, RiConfigError } from '@ri/core'
import express from 'express'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { getExchange, json, ri, withFeatures } from './index.js'

const servers: Server[] = []
async function start(app: express.Express): Promise<string> {
  const server = createServer(app)
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => { s.close(r); s.closeAllConnections() })))
})

const big = JSON.stringify({ items: Array.from({ length: 400 }, (_, i) => ({ i, name: `item ${i}` })) })

describe('@ri/express ri()', () => {
  it('validates its options once, naming each problem', () => {
    expect(() => ri({ compression: 'yes' as never })).toThrow(RiConfigError)
    expect(() => ri({ compression: 'yes' as never })).toThrow(/compression/)
    const { pipeline } = ri()
    expect(() => ri({ pipeline, trustProxy: true })).toThrow(/trustProxy/)
    expect(() => ri({ nope: 1 } as never)).toThrow(/nope/)
  })

  it('compression (opt-in) compresses handler responses but not early answers', async () => {
    const block: Feature = { name: 'block', onRequest: (ex) => (ex.path === '/blocked' ? { status: 429, headers: { 'content-type': 'application/json' }, body: big } : undefined) }
    const app = express()
    app.use(ri({ compression: true, features: [block] }))
    app.get('/big', (_req, res) => res.type('json').send(big))
    const base = await start(app)
    const r = await request(`${base}/big`, { headers: { 'accept-encoding': 'gzip' } })
    expect(r.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(Buffer.from(await r.body.arrayBuffer())).toString()).toBe(big)
    const a = await request(`${base}/blocked`, { headers: { 'accept-encoding': 'gzip' } })
    expect(a.statusCode).toBe(429)
    expect(a.headers['content-encoding']).toBeUndefined()
    expect(await a.body.text()).toBe(big)
  })

  it('does not compress by default', async () => {
    const app = express()
    app.use(ri())
    app.get('/big', (_req, res) => res.type('json').send(big))
    const r = await request(`${await start(app)}/big`, { headers: { 'accept-encoding': 'gzip' } })
    expect(r.headers['content-encoding']).toBeUndefined()
    await r.body.dump()
  })

  it('json(schema) serializes with fast-json-stringify and drops unknown properties', async () => {
    const app = express()
    app.use(ri())
    const user = json({ type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } })
    app.get('/users/:id', user, (req, res) => {
      res.json({ id: req.params.id, name: 'Ada', password: 'secret' })
    })
    const r = await request(`${await start(app)}/users/7`)
    expect(r.headers['content-type']).toContain('application/json')
    expect(await r.body.text()).toBe('{"id":"7","name":"Ada"}')
    expect(user.stringify({ id: 1 })).toBe('{"id":"1"}')
  })

  it('async features, getExchange, and the finish fallback for mounted sub-apps', async () => {
    const events = createEvents()
    const seen: Array<string | undefined> = []
    events.on('http.request', (e) => seen.push(e.route))
    const slowGate: Feature = { name: 'gate', onRequest: async (ex) => (ex.headers['x-no'] ? { status: 403, body: 'no' } : undefined) }
    const app = express()
    app.use(ri({ events, features: [slowGate] }))
    const sub = express()
    sub.get('/hello/:name', (req, res) => {
      res.send(getExchange(req)?.requestId ? 'ok' : 'missing')
    })
    app.use('/sub', sub)
    app.get('/route-level', withFeatures({ name: 'async-route', onRequest: async () => undefined }), (_req, res) => res.send('through'))
    const base = await start(app)
    expect(await (await request(`${base}/sub/hello/ada`)).body.text()).toBe('ok')
    expect((await request(`${base}/sub/hello/ada`, { headers: { 'x-no': '1' } })).statusCode).toBe(403)
    expect(await (await request(`${base}/route-level`)).body.text()).toBe('through')
    await new Promise((r) => setTimeout(r, 20))
    expect(seen[0]).toBe('/sub/hello/:name')
    expect(seen[2]).toBe('/route-level')
  })

  it('keeps its state beside Express\'s request and response, adding no property to either', async () => {
    // Express swaps their prototype per request: a property added after that takes V8's slow path.
    const app = express()
    app.use(ri({ features: [{ name: 'h', onHeaders: (ex) => ex.setHeader('x-h', '1') }] }))
    let own: { req: string[]; res: string[]; exchange: boolean } | undefined
    app.get('/x', (req, res) => {
      own = { req: Reflect.ownKeys(req).map(String).sort(), res: Reflect.ownKeys(res).map(String).sort(), exchange: getExchange(req) !== undefined }
      res.json({ ok: true })
    })
    const base = await start(app)
    const plain = express()
    let bare: { req: string[]; res: string[] } | undefined
    plain.get('/x', (req, res) => {
      bare = { req: Reflect.ownKeys(req).map(String).sort(), res: Reflect.ownKeys(res).map(String).sort() }
      res.json({ ok: true })
    })
    const plainBase = await start(plain)
    const r = await request(`${base}/x`)
    expect(await r.body.json()).toEqual({ ok: true })
    expect(r.headers['x-h']).toBe('1')
    await (await request(`${plainBase}/x`)).body.text()
    expect(own?.exchange).toBe(true)
    expect(own?.req).toEqual(bare?.req)
    expect(own?.res).toEqual(bare?.res)
  })

  it('json(schema) adds no property to the response, leaves other routes\' res.json alone, and honours a res.json replaced before it', async () => {
    const user = json({ type: 'object', properties: { id: { type: 'string' } } })
    const app = express()
    app.use(ri())
    let added: string[] | undefined
    app.get('/fast', (req, res, next) => {
      const before = Reflect.ownKeys(res).map(String)
      user(req, res, () => {
        added = Reflect.ownKeys(res).map(String).filter((k) => !before.includes(k))
        next()
      })
    }, (_req, res) => res.json({ id: 7, secret: 'x' }))
    app.get('/plain', (_req, res) => res.json({ id: 7, secret: 'x' }))
    app.get(
      '/replaced',
      (_req, res, next) => {
        const original = res.json.bind(res)
        res.json = ((body: object) => original({ ...body, wrapped: true })) as typeof res.json
        next()
      },
      user,
      (_req, res) => res.json({ id: 7, secret: 'x' }),
    )
    const base = await start(app)
    for (let i = 0; i < 2; i++) {
      expect(await (await request(`${base}/fast`)).body.text()).toBe('{"id":"7"}')
      expect(await (await request(`${base}/plain`)).body.json()).toEqual({ id: 7, secret: 'x' })
    }
    expect(added).toEqual([])
    // the replacement ran before json(): json() takes over that response (its own res.json)
    expect(await (await request(`${base}/replaced`)).body.text()).toBe('{"id":"7"}')
    const { ServerResponse } = await import('node:http')
    expect(Object.getOwnPropertyNames(ServerResponse.prototype)).not.toContain('json')
  })
})
