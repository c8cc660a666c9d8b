import { createEpisodes, createEvents, noopLogger } from '@ri/core'
import { describeWithRedis, type RedisServer, startRedis } from '@ri/testing'
import { type Span, type SpanStatus, trace, type Tracer } from '@opentelemetry/api'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { createL2Driver, FAIL } from './driver.js'

// The driver's in-flight bookkeeping (timeouts from @ri/core's deadline list, spans) against a real
// Redis that the test pauses (SIGSTOP) so some commands get no reply in time.
describeWithRedis('L2 driver over real Redis: in-flight requests', () => {
  let redis: RedisServer
  const clients: Redis[] = []
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    for (const c of clients) c.disconnect()
    await redis?.stop()
  })
  afterEach(() => {
    redis.resume()
    trace.disable()
  })

  const driverFor = async (timeout = 80) => {
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 })
    client.on('error', () => {})
    clients.push(client)
    await client.set('a', 'A')
    const driver = createL2Driver({
      client,
      timeout,
      circuitFailures: 1_000,
      circuitCooldown: 1_000,
      tagPrefix: 't:{',
      channel: '',
      namespace: '',
      events: createEvents(),
      logger: noopLogger,
      episodes: createEpisodes(noopLogger),
    })
    return driver
  }

  it('times out exactly the requests Redis does not answer in time; late replies change nothing; usable after', async () => {
    const driver = await driverFor()
    const answered = driver.getThen('a', (raw, n: number) => (raw === FAIL ? 'fail' : `${String(raw)}${n}`), 1)
    expect(await answered).toBe('A1')
    redis.pause()
    const t0 = performance.now()
    const lost = [driver.get('a'), driver.getThen('a', (raw) => (raw === FAIL ? 'fail' : String(raw)), 0)]
    expect(await Promise.all(lost)).toEqual([FAIL, 'fail'])
    const waited = performance.now() - t0
    expect(waited).toBeGreaterThanOrEqual(75)
    expect(waited).toBeLessThan(1_000)
    expect(driver.errors()).toBe(2)
    redis.resume() // the two replies now arrive late
    expect(String(await driver.get('a'))).toBe('A')
    await new Promise((r) => setTimeout(r, 50))
    expect(driver.errors()).toBe(2)
  })

  it('records spans only while a tracer provider is registered, including one registered after creation', async () => {
    const driver = await driverFor(60)
    const ended: Array<{ name: string; status?: SpanStatus }> = []
    const tracer = {
      startSpan(name: string) {
        const record: { name: string; status?: SpanStatus } = { name }
        return {
          setStatus(status: SpanStatus) {
            record.status = status
            return this
          },
          end: () => void ended.push(record),
        } as unknown as Span
      },
    } as unknown as Tracer
    expect(String(await driver.get('a'))).toBe('A')
    expect(ended).toEqual([])

    expect(trace.setGlobalTracerProvider({ getTracer: () => tracer })).toBe(true)
    // Seen by the first request after a quiet spell (or on the next tick while requests are in flight).
    expect(String(await driver.get('a'))).toBe('A')
    redis.pause()
    expect(await driver.get('a')).toBe(FAIL)
    expect(ended).toEqual([{ name: 'cache.l2.get' }, { name: 'cache.l2.get', status: expect.objectContaining({ message: 'timeout' }) }])
  })
})
