import { createEvents, type Feature, RiConfigError } from '@ri/core'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { getExchange, ri, withFeatures } from './index.js'

describe('@ri/hono ri() without Node bindings (app.fetch)', () => {
  it('validates its options', () => {
    expect(() => ri({ getRemoteAddress: 'x' as never })).toThrow(RiConfigError)
    expect(() => ri({ nope: 1 } as never)).toThrow(/nope/)
  })

  it('resolves templates through app.route() and basePath, finishes when the response is ready', async () => {
    const events = createEvents()
    const seen: Array<{ route: string | undefined; status: number }> = []
    events.on('http.request', (e) => seen.push({ route: e.route, status: e.status }))
    const app = new Hono()
    app.use(ri({ events, getRemoteAddress: () => '198.51.100.4', echoRequestId: true }))
    const users = new Hono()
    users.get('/:id', (c) => c.json({ id: c.req.param('id'), ip: getExchange(c)?.ip }))
    app.route('/users', users)
    app.basePath('/v2').get('/ping', (c) => c.text('pong'))
    app.get('/moved', () => Response.redirect('http://example.com/', 302))
    const r = await app.fetch(new Request('http://x/users/5'))
    expect(await r.json()).toEqual({ id: '5', ip: '198.51.100.4' })
    expect(r.headers.get('x-request-id')).toBeTruthy()
    expect(await (await app.fetch(new Request('http://x/v2/ping'))).text()).toBe('pong')
    const moved = await app.fetch(new Request('http://x/moved'))
    expect(moved.status).toBe(302)
    expect(moved.headers.get('x-request-id')).toBeTruthy() // immutable redirect headers were copied
    expect((await app.fetch(new Request('http://x/none'))).status).toBe(404)
    expect(seen).toEqual([
      { route: '/users/:id', status: 200 },
      { route: '/v2/ping', status: 200 },
      { route: '/moved', status: 302 },
      { route: undefined, status: 404 },
    ])
  })

  it('route-level onSend replaces the body; HEAD and 204 pass through', async () => {
    const upper: Feature = { name: 'upper', onSend: (_ex, body) => new TextDecoder().decode(body as Uint8Array).toUpperCase() }
    const app = new Hono()
    app.use(ri())
    app.get('/shout', withFeatures(upper), (c) => c.text('hello'))
    app.get('/empty', withFeatures(upper), (c) => c.body(null, 204))
    const r = await app.fetch(new Request('http://x/shout'))
    expect(await r.text()).toBe('HELLO')
    expect((await app.fetch(new Request('http://x/empty'))).status).toBe(204)
    expect((await app.fetch(new Request('http://x/shout', { method: 'HEAD' }))).status).toBe(200)
  })
})
