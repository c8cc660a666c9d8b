import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Feature } from '@ri/core'
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { ri } from './index.js'

// On @hono/node-server ri's headers join the head node-server writes (a record of the Response's
// headers): the merge must keep the handler-wins and Set-Cookie-appends rules of every adapter.
describe('@ri/hono on @hono/node-server: feature headers in the written head', () => {
  it('handler values win case-insensitively, cookies from both sides arrive, the rest is added', async () => {
    const feature: Feature = {
      name: 'headers',
      onHeaders(ex) {
        ex.setHeader('x-dup', 'feature')
        ex.setHeader('content-type', 'text/x-feature')
        ex.setHeader('x-extra', 'feature')
        ex.setHeader('set-cookie', 'feature=2; Path=/')
      },
    }
    const app = new Hono()
    app.use(ri({ features: [feature], echoRequestId: true }))
    app.get('/both', (c) => {
      c.header('X-Dup', 'handler')
      c.header('Set-Cookie', 'handler=1; Path=/')
      return c.json({ ok: true })
    })
    app.get('/plain', (c) => c.text('plain'))
    const server = createAdaptorServer({ fetch: app.fetch }) as Server
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const both = await fetch(`${base}/both`)
      expect(both.headers.get('x-dup')).toBe('handler')
      expect(both.headers.get('content-type')).toContain('application/json')
      expect(both.headers.get('x-extra')).toBe('feature')
      expect(both.headers.getSetCookie().sort()).toEqual(['feature=2; Path=/', 'handler=1; Path=/'])
      expect(await both.json()).toEqual({ ok: true })
      const plain = await fetch(`${base}/plain`)
      expect(plain.headers.get('content-type')).toContain('text/plain')
      expect(plain.headers.get('x-extra')).toBe('feature')
      expect(plain.headers.getSetCookie()).toEqual(['feature=2; Path=/'])
      expect(plain.headers.get('x-request-id')).toBeTruthy()
      expect(await plain.text()).toBe('plain')
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })

  it('answers from features (a shared headers record, a multi-valued one) are written as given, every time, and the record is never changed', async () => {
    const shared = Object.freeze({ 'content-type': 'application/json', etag: '"v1"', 'x-cache': 'HIT' })
    const cookies = Object.freeze({ 'content-type': 'text/plain', 'set-cookie': Object.freeze(['a=1; Path=/', 'b=2; Path=/']) })
    const feature: Feature = {
      name: 'answers',
      onRequest(ex) {
        if (ex.path === '/shared') return { status: 200, headers: shared, body: new TextEncoder().encode('{"hit":true}') }
        if (ex.path === '/cookies') return { status: 200, headers: cookies, body: 'cookies' }
        return undefined
      },
    }
    const app = new Hono()
    app.use(ri({ features: [feature], echoRequestId: true }))
    const server = createAdaptorServer({ fetch: app.fetch }) as Server
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`${base}/shared`)
        expect(r.status).toBe(200)
        expect(r.headers.get('etag')).toBe('"v1"')
        expect(r.headers.get('x-cache')).toBe('HIT')
        expect(r.headers.get('content-type')).toBe('application/json')
        expect(r.headers.get('content-length')).toBe('12')
        expect(r.headers.get('x-request-id')).toBeTruthy()
        expect(await r.text()).toBe('{"hit":true}')
      }
      expect(Object.keys(shared)).toEqual(['content-type', 'etag', 'x-cache'])
      const c = await fetch(`${base}/cookies`)
      expect(c.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/'])
      expect(await c.text()).toBe('cookies')
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })
})
