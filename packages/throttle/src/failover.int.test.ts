import { createPipeline, type Logger, noopLogger } from '@ri/core'
import { describeWithRedis, type RedisServer, startRedis } from '@ri/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createThrottle, type ThrottleResult } from './index.js'

const TIMEOUT_MS = 300
// Generous bound on "no hang": without the insurance timeout a dead or frozen Redis makes
// ioredis wait for ~20 reconnection attempts (or forever when paused).
const HANG_BOUND_MS = TIMEOUT_MS + 1500

function recordingLogger() {
  const lines: Array<{ level: string; msg: string }> = []
  const log = (level: string) =>
    ((obj: unknown, msg?: unknown) => {
      lines.push({ level, msg: typeof obj === 'string' ? obj : String(msg ?? '') })
    }) as Logger['warn']
  const logger: Logger = { ...noopLogger, warn: log('warn'), info: log('info'), error: log('error'), child: () => logger }
  return { logger, lines }
}

describeWithRedis('Redis failure: insurance limiter takes over and hands back', () => {
  let server: RedisServer
  let client: Redis
  beforeAll(async () => {
    server = await startRedis()
    client = new Redis(server.url)
    client.on('error', () => {}) // ioredis reports every reconnection attempt; the test kills Redis on purpose
    await new Promise<void>((resolve) => client.once('ready', () => resolve()))
  })
  afterAll(async () => {
    client?.disconnect()
    await server?.stop()
  })

  it('kill mid-run -> insurance decides without throwing or hanging; restore -> shared counting again', async () => {
    const { logger, lines } = recordingLogger()
    const throttle = createThrottle({ store: { redis: client, prefix: 'fo' }, default: { limit: 30, window: '30s' }, insurance: { timeout: TIMEOUT_MS, processes: 3 }, logger })
    const insuranceEvents: string[] = []
    const decisions: Array<{ store: string; result: string }> = []
    throttle.events.on('throttle.insurance', (e) => insuranceEvents.push(e.state))
    throttle.events.on('throttle.decision', (e) => decisions.push({ store: e.store, result: e.result }))
    const pipeline = createPipeline([])
    const ex = () => pipeline.exchange({ method: 'GET', url: '/a', route: '/a', headers: {}, remoteAddress: '198.51.100.1' })
    const timed = async (): Promise<ThrottleResult & { ms: number }> => {
      const t0 = performance.now()
      const r = await throttle.check(ex())
      return { ...(r as unknown as { toJSON(): ThrottleResult }).toJSON(), ms: performance.now() - t0 }
    }

    const before = [await timed(), await timed()]
    expect(before.map((r) => [r.store, r.remaining])).toEqual([
      ['redis', 29],
      ['redis', 28],
    ])

    // Requests in flight while Redis dies, then more while it is down.
    const inFlight = Array.from({ length: 10 }, () => timed())
    await server.kill()
    const during: Array<ThrottleResult & { ms: number }> = [...(await Promise.all(inFlight))]
    for (let i = 0; i < 10; i++) during.push(await timed())
    const concurrent = await Promise.all(Array.from({ length: 20 }, () => timed()))
    during.push(...concurrent)
    for (const r of during) expect(r.ms).toBeLessThan(HANG_BOUND_MS)
    const insured = during.filter((r) => r.store === 'insurance')
    expect(insured.length).toBeGreaterThanOrEqual(30)
    // The insurance limiter still limits: ceil(30 / 3 processes) = 10 per window in this process.
    expect(insured.filter((r) => r.allowed).length).toBeLessThanOrEqual(10)
    expect(insured.every((r) => r.limit === 30)).toBe(true)
    expect(insured.some((r) => !r.allowed)).toBe(true)
    expect(insuranceEvents).toEqual(['engaged'])
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1)

    await server.restart()
    const deadline = Date.now() + 15_000
    let back: ThrottleResult | undefined
    while (Date.now() < deadline) {
      const r = await timed()
      expect(r.ms).toBeLessThan(HANG_BOUND_MS)
      if (r.store === 'redis') {
        back = r
        break
      }
      await new Promise((res) => setTimeout(res, 100))
    }
    expect(back?.store).toBe('redis')
    // The restarted Redis is empty: shared counting starts again from the limit. Commands that
    // were in flight when Redis died are re-sent by ioredis on reconnect and may count too
    // (never fewer counted than allowed).
    expect(back!.remaining).toBeLessThanOrEqual(29)
    expect(back!.remaining).toBeGreaterThanOrEqual(29 - 10)
    expect((await timed()).remaining).toBe(back!.remaining - 1)
    expect(insuranceEvents).toEqual(['engaged', 'released'])
    expect(lines.filter((l) => l.level === 'info')).toHaveLength(1)
  }, 40_000)

  it('a frozen Redis (SIGSTOP) costs at most the timeout, then decisions stay in memory until it answers', async () => {
    const throttle = createThrottle({ store: { redis: client, prefix: 'frozen' }, default: { limit: 50, window: '30s' }, insurance: { timeout: TIMEOUT_MS } })
    const pipeline = createPipeline([])
    const ex = () => pipeline.exchange({ method: 'GET', url: '/b', route: '/b', headers: {}, remoteAddress: '198.51.100.2' })
    for (let i = 0; i < 20 && client.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 100))
    expect((await throttle.check(ex())).store).toBe('redis')
    server.pause()
    try {
      const t0 = performance.now()
      const first = await Promise.all(Array.from({ length: 10 }, () => throttle.check(ex())))
      const firstMs = performance.now() - t0
      expect(first.every((r) => r.store === 'insurance' && r.allowed)).toBe(true)
      expect(firstMs).toBeLessThan(HANG_BOUND_MS)
      // Right after a timeout Redis is not asked: these answer from memory at once.
      const t1 = performance.now()
      const next = await throttle.check(ex())
      expect(next.store).toBe('insurance')
      expect(performance.now() - t1).toBeLessThan(firstMs)
    } finally {
      server.resume()
    }
  }, 30_000)
})
