import { createPipeline } from '@ri/core'
import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible'
import { describe, expect, it } from 'vitest'
import { memoryEngine, syncConsumer } from './engine.js'
import { createThrottle } from './index.js'

const summary = (allowed: boolean, r: RateLimiterRes) => ({ allowed, consumed: r.consumedPoints, remaining: r.remainingPoints, first: r.isFirstInDuration })

describe('memory engine: synchronous decisions', () => {
  it('decides exactly as RateLimiterMemory.consume() for every cost, over the limit and while blocked', async () => {
    for (const blockDuration of [0, 5]) {
      const opts = { points: 5, duration: 60, keyPrefix: '', blockDuration }
      const reference = new RateLimiterMemory(opts)
      const mine = new RateLimiterMemory(opts)
      const consume = syncConsumer(mine)!
      expect(consume).toBeTypeOf('function')
      for (const [key, cost] of [['a', 1], ['a', 2], ['b', 1], ['a', 2], ['a', 1], ['a', 3], ['b', 4], ['b', 1], ['a', 1]] as const) {
        const expected = await reference.consume(key, cost).then(
          (r) => summary(true, r),
          (r: RateLimiterRes) => summary(false, r),
        )
        const r = consume(key, cost)
        expect(summary(r.consumedPoints <= opts.points, r), `${key} cost ${cost} block ${blockDuration}`).toEqual(expected)
        // the same window (or block) is left, give or take the time between the two calls
        const left = await reference.get(key)
        expect(Math.abs(r.msBeforeNext - left!.msBeforeNext)).toBeLessThan(50)
      }
    }
  })

  it('answers without a promise for a plain limit, through consume() for a bursty one', () => {
    const done = (allowed: boolean, res: Pick<RateLimiterRes, 'remainingPoints'> | null) => ({ allowed, remaining: res?.remainingPoints })
    const plain = memoryEngine({ points: 2, windowSec: 60, keyPrefix: 'k', blockSec: 0, burst: undefined })
    expect(plain.run('x', 1, done)).toEqual({ allowed: true, remaining: 1 })
    expect(plain.run('x', 1, done)).toEqual({ allowed: true, remaining: 0 })
    expect(plain.run('x', 1, done)).toEqual({ allowed: false, remaining: 0 })
    const bursty = memoryEngine({ points: 2, windowSec: 60, keyPrefix: 'k', blockSec: 0, burst: { points: 1, windowSec: 60 } })
    const r = bursty.run('x', 1, done)
    expect(r).toBeInstanceOf(Promise)
    return expect(r).resolves.toEqual({ allowed: true, remaining: 1 })
  })

  it('falls back to consume() for limiters it does not cover', () => {
    expect(syncConsumer(new RateLimiterMemory({ points: 1, duration: 1, execEvenly: true }))).toBeUndefined()
    const changed = new RateLimiterMemory({ points: 1, duration: 1 }) as unknown as { _memoryStorage: unknown }
    changed._memoryStorage = undefined
    expect(syncConsumer(changed as unknown as RateLimiterMemory)).toBeUndefined()
  })

  it('keeps the pipeline synchronous: a memory-store decision is not a promise, single or several limits', () => {
    const pipeline = createPipeline([])
    const ex = () => pipeline.exchange({ method: 'GET', url: '/p/1', route: '/p/:id', headers: {}, remoteAddress: '192.0.2.7' })
    const one = createThrottle({ default: { limit: 2, window: '1m' } }).feature()
    const first = one.onRequest!(ex())
    expect(first).toBeUndefined() // allowed, decided now
    one.onRequest!(ex())
    const refused = one.onRequest!(ex())
    expect(refused).toMatchObject({ status: 429, headers: { 'retry-after': '60' } })

    const two = createThrottle({ default: { limits: [{ limit: 1, window: '1s' }, { limit: 10, window: '1m' }] } }).feature()
    const e = ex()
    expect(two.onRequest!(e)).toBeUndefined()
    expect(e.responseHeaders['ratelimit-policy']).toBe('"1-per-1s";q=1;w=1, "10-per-1m";q=10;w=60')
    expect(e.responseHeaders.ratelimit).toBe('"1-per-1s";r=0;t=1, "10-per-1m";r=9;t=60')
    expect(two.onRequest!(ex())).toMatchObject({ status: 429 })
  })
})
