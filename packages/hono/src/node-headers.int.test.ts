import { once } from 'node:events'
import type { Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Feature } from '@ri/core'
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import { leaveMidBody } from '@ri/testing'
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

  it('the finish comes through the response emit: no listener per response, the status written, aborted when the client left, the app hears every event', async () => {
    const finished: string[] = []
    const added: number[] = []
    const seen: string[] = []
    const app = new Hono<{ Bindings: { outgoing: ServerResponse }; Variables: { before: number } }>()
    const listeners = (res: ServerResponse) => res.listenerCount('close') + res.listenerCount('finish')
    app.use(async (c, next) => {
      c.set('before', listeners(c.env.outgoing))
      await next()
    })
    app.use(ri({ features: [{ name: 'finish', onResponse: (ex, info) => void finished.push(`${ex.path}:${info.status}:${info.aborted}`) }] }))
    app.use(async (c, next) => {
      const res = c.env.outgoing
      added.push(listeners(res) - c.get('before'))
      res.on('finish', (...args: unknown[]) => void seen.push(`finish:${c.req.path}:${args.length}`))
      res.on('close', () => void seen.push(`close:${c.req.path}`))
      await next()
    })
    app.get('/ok', (c) => c.text('ok', 201))
    app.get('/abort', (c) => {
      // a body that never ends: the client goes away after the first chunk
      const body = new ReadableStream({ start: (ctl) => ctl.enqueue(new TextEncoder().encode('partial')) })
      return c.body(body, 200, { 'content-type': 'text/plain' })
    })
    const server = createAdaptorServer({ fetch: app.fetch }) as Server
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as AddressInfo).port
    try {
      const ok = await fetch(`http://127.0.0.1:${port}/ok`)
      expect(ok.status).toBe(201)
      expect(await ok.text()).toBe('ok')
      await leaveMidBody(`http://127.0.0.1:${port}/abort`)
      for (let i = 0; i < 100 && finished.length < 2; i++) await new Promise((done) => setTimeout(done, 10))
      expect(finished).toEqual(['/ok:201:false', '/abort:200:true'])
      expect(added).toEqual([0, 0])
      expect(seen).toEqual(expect.arrayContaining(['finish:/ok:0', 'close:/ok', 'close:/abort']))
      expect(seen).not.toContain('finish:/abort:0')
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })
})
