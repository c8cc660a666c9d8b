import { createEpisodes, createEvents, noopLogger } from '@ri/core'
import { type Span, type SpanStatus, trace, type Tracer } from '@opentelemetry/api'
import { afterEach, describe, expect, it } from 'vitest'
import type { RedisLike } from '../options.js'
import { createL2Driver, FAIL } from './driver.js'

/** A client whose GET replies the test settles by hand. */
function fakeClient() {
  const replies = new Map<string, { resolve: (v: Buffer | null) => void; reject: (e: Error) => void }>()
  const client = {
    status: 'ready',
    defineCommand() {},
    on() {},
    once() {},
    getBuffer: (key: string) => new Promise<Buffer | null>((resolve, reject) => replies.set(key, { resolve, reject })),
  }
  return { client: client as unknown as RedisLike, replies }
}

function driverFor(client: RedisLike, timeout = 40) {
  return createL2Driver({
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
}

const settle = <T>(p: Promise<T>) => p.then((v) => ({ v }))

describe('L2 driver: in-flight requests', () => {
  afterEach(() => trace.disable())

  it('times out exactly the requests without a reply, whichever order the others settle in', async () => {
    const { client, replies } = fakeClient()
    const driver = driverFor(client)
    const keys = ['a', 'b', 'c', 'd', 'e']
    const out = keys.map((k) => settle(driver.getThen(k, (raw, n: number) => (raw === FAIL ? 'fail' : `${String(raw)}${n}`), 1)))
    // Settle the middle, the last and the first; b and d never answer.
    replies.get('c')!.resolve(Buffer.from('C'))
    replies.get('e')!.resolve(Buffer.from('E'))
    replies.get('a')!.resolve(null)
    expect((await Promise.all(out)).map((r) => r.v)).toEqual(['null1', 'fail', 'C1', 'fail', 'E1'])
    expect(driver.errors()).toBe(2)
    // A late reply to a timed-out request changes nothing.
    replies.get('b')!.resolve(Buffer.from('late'))
    await Promise.resolve()
    expect(driver.errors()).toBe(2)
    // The list is usable again once it emptied.
    const again = driver.get('f')
    replies.get('f')!.resolve(Buffer.from('F'))
    expect(String(await again)).toBe('F')
    const lost = driver.get('g')
    expect(await lost).toBe(FAIL)
    expect(driver.errors()).toBe(3)
  })

  it('records spans only while a tracer provider is registered, including one registered after creation', async () => {
    const { client, replies } = fakeClient()
    const driver = driverFor(client)
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
    const before = driver.get('x')
    replies.get('x')!.resolve(Buffer.from('X'))
    await before
    expect(ended).toEqual([])

    expect(trace.setGlobalTracerProvider({ getTracer: () => tracer })).toBe(true)
    // Registration is noticed on the sweeper's next tick (10 ms here) or its next start.
    await new Promise((r) => setTimeout(r, 30))
    const hit = driver.get('y')
    const timedOut = driver.get('z')
    replies.get('y')!.resolve(Buffer.from('Y'))
    await hit
    expect(await timedOut).toBe(FAIL)
    expect(ended).toEqual([{ name: 'cache.l2.get' }, { name: 'cache.l2.get', status: expect.objectContaining({ message: 'timeout' }) }])
  })
})
