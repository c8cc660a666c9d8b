import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createCache } from '@ri/cache'
import { type Logger, RiConfigError } from '@ri/core'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import express from 'express'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { cached, ri, skipThrottle, slowThreshold, throttled } from './index.js'

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

const get = async (url: string, headers: Record<string, string> = {}) => {
  const r = await request(url, { headers })
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() }
}

function capture(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const log = (obj: unknown) => void lines.push(obj as Record<string, unknown>)
  const logger = { lines, trace: log, debug: log, info: log, warn: log, error: log, fatal: log, child: () => logger } as unknown as Logger & { lines: Array<Record<string, unknown>> }
  return logger
}

describe('@ri/express route helpers', () => {
  it('validate their options when the route is defined', () => {
    expect(() => cached({ ttl: 'soon' as never })).toThrow(RiConfigError)
    expect(() => throttled({ limit: -1, window: '1s' })).toThrow(RiConfigError)
    expect(() => slowThreshold('later' as never)).toThrow(RiConfigError)
  })

  it('cached() uses the cache given to ri(); throttled() shares ri()\'s throttle; skipThrottle() runs before it', async () => {
    const cache = createCache()
    const throttle = createThrottle({ default: { limit: 2, window: '1m' } })
    const app = express()
    app.use(ri({ cache, throttle }))
    let calls = 0
    app.get('/c', cached({ ttl: '1m', tags: ['c'] }), (_req, res) => {
      calls++
      res.json({ calls })
    })
    app.get('/free', skipThrottle(), (_req, res) => res.send('free'))
    app.get('/tight', throttled({ limit: 1, window: '1m' }), (_req, res) => res.send('tight'))
    const base = await start(app)
    const miss = await get(`${base}/c`)
    expect(miss.headers['x-cache']).toBe('MISS')
    const hit = await get(`${base}/c`)
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(hit.text).toBe(miss.text)
    expect(calls).toBe(1)
    // the global limit (2/min) is spent by now; skipThrottle() routes stay open
    expect((await get(`${base}/c`)).status).toBe(429)
    for (let i = 0; i < 4; i++) expect((await get(`${base}/free`)).status).toBe(200)
  })

  it('a route-level limit answers 429 for its route only', async () => {
    const app = express()
    app.use(ri({ throttle: createThrottle({ default: false }) }))
    app.get('/tight', throttled({ limit: 1, window: '1m' }), (_req, res) => res.send('tight'))
    app.get('/open', (_req, res) => res.send('open'))
    const base = await start(app)
    expect((await get(`${base}/tight`)).status).toBe(200)
    const limited = await get(`${base}/tight`)
    expect(limited.status).toBe(429)
    expect(limited.headers['retry-after']).toBeDefined()
    expect((await get(`${base}/open`)).status).toBe(200)
  })

  it('cached() without any cache logs once and serves the route uncached', async () => {
    const logger = capture()
    const app = express()
    app.use(ri({ logger }))
    app.get('/c', cached({ ttl: '1m' }), (_req, res) => res.send('x'))
    const base = await start(app)
    expect((await get(`${base}/c`)).text).toBe('x')
    expect((await get(`${base}/c`)).headers['x-cache']).toBeUndefined()
    expect(logger.lines.filter((l) => l.err instanceof RiConfigError)).toHaveLength(1)
  })

  it('slowThreshold() overrides the slow log threshold of its route', async () => {
    const logger = capture()
    const slowlog = createSlowLog({ logger, thresholdMs: '10s' })
    const app = express()
    app.use(ri({ slowlog }))
    app.get('/strict', slowThreshold(0), (_req, res) => res.send('a'))
    app.get('/default', (_req, res) => res.send('b'))
    const base = await start(app)
    await get(`${base}/strict`)
    await get(`${base}/default`)
    await new Promise((r) => setTimeout(r, 20))
    const routes = logger.lines.map((l) => (l as { route?: string }).route)
    expect(routes).toContain('/strict')
    expect(routes).not.toContain('/default')
  })
})
