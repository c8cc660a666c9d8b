import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Feature } from '@ri/core'
import express from 'express'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ri, withFeatures } from './index.js'

describe('@ri/express body capture (routes with onSend features)', () => {
  const seen: string[] = []
  const upper: Feature = {
    name: 'upper',
    onSend: async (_ex, body) => {
      const text = Buffer.from(body as Uint8Array).toString('utf8')
      seen.push(text)
      await new Promise((r) => setTimeout(r, 1))
      return text.toUpperCase()
    },
  }
  let server: Server
  let base = ''
  beforeAll(async () => {
    const app = express()
    app.use(ri())
    app.get('/chunks', withFeatures(upper), (_req, res) => {
      res.setHeader('content-type', 'text/plain')
      res.write('abc')
      res.write(Buffer.from('déf'))
      res.end('ghi')
    })
    app.get('/early-head', withFeatures(upper), (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' })
      res.end('hello')
    })
    app.get('/send', withFeatures(upper), (_req, res) => {
      res.send('send me')
    })
    server = createServer(app)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })

  it('buffers write()+end() chunks, runs an async onSend once, and fixes Content-Length', async () => {
    const r = await request(`${base}/chunks`)
    const text = await r.body.text()
    expect(text).toBe('ABCDÉFGHI')
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength('ABCDÉFGHI'))
    expect(seen.at(-1)).toBe('abcdéfghi')
  })

  it('holds back a head the handler wrote before the body, so onSend features still apply (Fastify writes that way)', async () => {
    const r = await request(`${base}/early-head`)
    expect(await r.body.text()).toBe('HELLO')
    expect(r.headers['content-type']).toBe('text/plain')
    expect(Number(r.headers['content-length'])).toBe(5)
  })

  it('drops the ETag Express computed for a body the feature replaced, and answers HEAD without a body', async () => {
    const r = await request(`${base}/send`)
    expect(await r.body.text()).toBe('SEND ME')
    expect(r.headers.etag).toBeUndefined()
    const h = await request(`${base}/send`, { method: 'HEAD' })
    expect(h.statusCode).toBe(200)
    expect(await h.body.text()).toBe('')
  })
})
