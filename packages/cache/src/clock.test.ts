import { afterEach, describe, expect, it, vi } from 'vitest'
import { createCache } from './index.js'
import { now } from './clock.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

afterEach(() => {
  vi.useRealTimers()
})

describe('the read clock', () => {
  it('is never ahead of Date.now() and moves on once a millisecond has passed', async () => {
    const before = Date.now()
    const a = now()
    expect(a).toBeGreaterThanOrEqual(before)
    expect(a).toBeLessThanOrEqual(Date.now())
    await sleep(5)
    const b = now()
    expect(b - a).toBeGreaterThanOrEqual(4)
    expect(b).toBeLessThanOrEqual(Date.now())
  })

  it('moves within one long synchronous run (its reading is shared by a bounded number of reads)', () => {
    const first = now()
    const until = Date.now() + 20
    let last = first
    let reads = 0
    while (Date.now() < until || reads < 5_000) {
      last = now()
      reads++
    }
    expect(last - first).toBeGreaterThanOrEqual(15)
    expect(last).toBeLessThanOrEqual(Date.now())
  })

  it('follows a faked Date at once, and the real one again after', async () => {
    now() // a shared reading is live
    vi.useFakeTimers()
    const future = Date.now() + 3_600_000
    vi.setSystemTime(future)
    expect(now()).toBe(future)
    vi.useRealTimers()
    expect(now()).toBeLessThan(future)
    await sleep(3) // the event loop turns: the shared reading is dropped
    expect(Math.abs(now() - Date.now())).toBeLessThanOrEqual(1)
  })

  it('never shares a reading when Date was already faked as the module loaded', async () => {
    vi.useFakeTimers()
    vi.resetModules()
    const fresh = (await import('./clock.js')) as typeof import('./clock.js')
    const t = Date.now()
    expect(fresh.now()).toBe(t)
    vi.setSystemTime(t + 10_000) // fake timers never fire here: only a read of Date.now() sees this
    expect(fresh.now()).toBe(t + 10_000)
  })

  it('an L1 entry expires when a faked clock passes its ttl, with no timer run', async () => {
    const cache = createCache({ l1: { max: 100 } })
    try {
      await cache.set('k', 1, { ttl: '1s', grace: 0 })
      expect(await cache.get('k')).toBe(1)
      vi.useFakeTimers({ toFake: ['Date'] })
      vi.setSystemTime(Date.now() + 2_000)
      expect(await cache.get('k')).toBeUndefined()
      expect(await cache.getOrSet('k', () => 2)).toBe(2)
    } finally {
      vi.useRealTimers()
      await cache.close()
    }
  })
})
