import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createWatchdog, type Watched } from './engine.js'

function call(name: string, expired: string[]): Watched {
  return { tick: 0, prev: null, next: null, expire: () => expired.push(name) }
}

describe('createWatchdog', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('expires only the calls still in flight after the timeout, oldest first, and stops its timer when none is left', () => {
    const expired: string[] = []
    const watch = createWatchdog(100)
    const [a, b, c] = [call('a', expired), call('b', expired), call('c', expired)]
    watch.add(a)
    watch.add(b)
    watch.add(c)
    watch.settle(b) // settled from the middle of the list
    vi.advanceTimersByTime(99)
    expect(expired).toEqual([])
    vi.advanceTimersByTime(26) // fires between 1x and 1.25x the timeout
    expect(expired).toEqual(['a', 'c'])
    expect(vi.getTimerCount()).toBe(0)
    watch.settle(a) // an expired call settling late is a no-op
    expect(expired).toEqual(['a', 'c'])
  })

  it('unlinks settled calls at once (head, tail, only element) so the list holds only what is in flight', () => {
    const expired: string[] = []
    const watch = createWatchdog(40)
    const calls = Array.from({ length: 5 }, (_, i) => call(String(i), expired))
    for (const x of calls) watch.add(x)
    watch.settle(calls[0]!)
    watch.settle(calls[4]!)
    watch.settle(calls[2]!)
    expect(calls[1]!.next).toBe(calls[3])
    expect(calls[3]!.prev).toBe(calls[1])
    watch.settle(calls[1]!)
    watch.settle(calls[3]!)
    expect(calls.every((x) => x.prev === null && x.next === null)).toBe(true)
    vi.advanceTimersByTime(1_000)
    expect(expired).toEqual([])
    expect(vi.getTimerCount()).toBe(0)
    // the list is usable again after it emptied
    const late = call('late', expired)
    watch.add(late)
    vi.advanceTimersByTime(60)
    expect(expired).toEqual(['late'])
  })

  it('a call added later gets its own full timeout', () => {
    const expired: string[] = []
    const watch = createWatchdog(100)
    watch.add(call('early', expired))
    vi.advanceTimersByTime(75)
    watch.add(call('later', expired))
    vi.advanceTimersByTime(50)
    expect(expired).toEqual(['early'])
    vi.advanceTimersByTime(75)
    expect(expired).toEqual(['early', 'later'])
  })
})
