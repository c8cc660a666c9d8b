import { createCache } from '@ri/cache'
import { type Logger, RiConfigError } from '@ri/core'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import Fastify from 'fastify'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { riPlugin } from './index.js'

function capture(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const log = (obj: unknown) => void lines.push(obj as Record<string, unknown>)
  const logger = { lines, trace: log, debug: log, info: log, warn: log, error: log, fatal: log, child: () => logger } as unknown as Logger & { lines: Array<Record<string, unknown>> }
  return logger
}

const get = async (url: string, headers: Record<string, string> = {}) => {
  const r = await request(url, { headers })
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() }
}

describe('@ri/fastify route config: cache, throttle, slowMs', () => {
  it('is validated when the route is defined', async () => {
    const app = Fastify()
    await app.register(riPlugin, {})
    expect(() => app.get('/a', { config: { cache: { ttl: '1m' } } }, async () => 'a')).toThrow(/cache/) // no cache anywhere
    expect(() => app.get('/b', { config: { throttle: { limit: -1, window: '1s' } } }, async () => 'b')).toThrow(RiConfigError)
    expect(() => app.get('/c', { config: { slowMs: 'later' as never } }, async () => 'c')).toThrow(RiConfigError)
    await app.close()
  })

  it('cache (MISS, HIT, 304), throttle (own route only), throttle: false (skips the global one), slowMs', async () => {
    const cache = createCache()
    const logger = capture()
    const app = Fastify()
    await app.register(riPlugin, {
      cache,
      throttle: createThrottle({ default: { limit: 4, window: '1m' } }),
      slowlog: createSlowLog({ logger, thresholdMs: '10s' }),
    })
    let calls = 0
    app.get('/c', { config: { cache: { ttl: '1m', tags: ['c'] } } }, async () => ({ calls: ++calls }))
    app.get('/tight', { config: { throttle: { limit: 1, window: '1m' }, slowMs: 0 } }, async () => 'tight')
    app.get('/free', { config: { throttle: false } }, async () => 'free')
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      const miss = await get(`${url}/c`)
      expect(miss.headers['x-cache']).toBe('MISS')
      const hit = await get(`${url}/c`)
      expect(hit.headers['x-cache']).toBe('HIT')
      expect(hit.text).toBe(miss.text)
      expect((await get(`${url}/c`, { 'if-none-match': String(miss.headers.etag) })).status).toBe(304)
      expect(calls).toBe(1)
      expect((await get(`${url}/tight`)).status).toBe(200)
      const limited = await get(`${url}/tight`)
      expect(limited.status).toBe(429)
      expect(limited.headers['retry-after']).toBeDefined()
      // the global 4/min is spent by now (3 on /c, 2 on /tight); /free is exempt
      expect((await get(`${url}/c`)).status).toBe(429)
      for (let i = 0; i < 5; i++) expect((await get(`${url}/free`)).status).toBe(200)
      await new Promise((r) => setTimeout(r, 20))
      const routes = logger.lines.map((l) => (l as { route?: string }).route)
      expect(routes).toContain('/tight')
      expect(routes).not.toContain('/free')
    } finally {
      await app.close()
    }
  })
})
