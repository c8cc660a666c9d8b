import { createCache } from '@ri/cache'
import { type Logger, RiConfigError } from '@ri/core'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { cached, ri, skipThrottle, slowThreshold, throttled } from './index.js'

function capture(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const log = (obj: unknown) => void lines.push(obj as Record<string, unknown>)
  const logger = { lines, trace: log, debug: log, info: log, warn: log, error: log, fatal: log, child: () => logger } as unknown as Logger & { lines: Array<Record<string, unknown>> }
  return logger
}

const get = (app: Hono, path: string, headers: Record<string, string> = {}) => app.fetch(new Request(`http://x${path}`, { headers }))

describe('@ri/hono route helpers (app.fetch)', () => {
  it('validate their options when the route is defined', () => {
    expect(() => cached({ ttl: 'soon' as never })).toThrow(RiConfigError)
    expect(() => throttled({ limit: -1, window: '1s' })).toThrow(RiConfigError)
    expect(() => slowThreshold('later' as never)).toThrow(RiConfigError)
  })

  it('cached() uses ri()\'s cache (MISS, HIT, 304); skipThrottle() runs before the global throttle', async () => {
    const cache = createCache()
    const throttle = createThrottle({ default: { limit: 3, window: '1m' } })
    const app = new Hono()
    app.use(ri({ cache, throttle }))
    let calls = 0
    app.get('/c', cached({ ttl: '1m', tags: ['c'] }), (c) => c.json({ calls: ++calls }))
    app.get('/free', skipThrottle(), (c) => c.text('free'))
    const miss = await get(app, '/c')
    expect(miss.headers.get('x-cache')).toBe('MISS')
    const etag = miss.headers.get('etag')!
    const hit = await get(app, '/c')
    expect(hit.headers.get('x-cache')).toBe('HIT')
    expect(await hit.text()).toBe(await miss.text())
    expect((await get(app, '/c', { 'if-none-match': etag })).status).toBe(304)
    expect(calls).toBe(1)
    expect((await get(app, '/c')).status).toBe(429)
    for (let i = 0; i < 4; i++) expect((await get(app, '/free')).status).toBe(200)
  })

  it('throttled() limits its route only; slowThreshold() overrides the slow log threshold', async () => {
    const logger = capture()
    const app = new Hono()
    app.use(ri({ slowlog: createSlowLog({ logger, thresholdMs: '10s' }) }))
    app.get('/tight', throttled({ limit: 1, window: '1m' }), slowThreshold(0), (c) => c.text('tight'))
    app.get('/open', (c) => c.text('open'))
    expect((await get(app, '/tight')).status).toBe(200)
    const limited = await get(app, '/tight')
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toBeTruthy()
    expect((await get(app, '/open')).status).toBe(200)
    const routes = logger.lines.map((l) => (l as { route?: string }).route)
    expect(routes).toContain('/tight')
    expect(routes).not.toContain('/open')
  })

  it('cached() without any cache logs once and serves the route uncached', async () => {
    const logger = capture()
    const app = new Hono()
    app.use(ri({ logger }))
    app.get('/c', cached({ ttl: '1m' }), (c) => c.text('x'))
    expect(await (await get(app, '/c')).text()).toBe('x')
    expect((await get(app, '/c')).headers.get('x-cache')).toBeNull()
    expect(logger.lines.filter((l) => l.err instanceof RiConfigError)).toHaveLength(1)
  })
})
