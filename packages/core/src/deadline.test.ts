import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createDeadlineList, type DeadlineEntry, promiseInto, type Settleable } from './deadline.js'

function entry(name: string, expired: string[]): DeadlineEntry {
  return { deadline: 0, prev: undefined, next: undefined, expire: () => expired.push(name) }
}

describe('createDeadlineList', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('expires only the calls still in flight after the timeout, oldest first, and stops its timer when none is left', () => {
    const expired: string[] = []
    const list = createDeadlineList(100)
    const [a, b, c] = [entry('a', expired), entry('b', expired), entry('c', expired)]
    for (const e of [a, b, c]) list.add(e)
    expect(list.remove(b)).toBe(true) // settled from the middle of the list
    vi.advanceTimersByTime(99)
    expect(expired).toEqual([])
    vi.advanceTimersByTime(26) // fires between 1x the timeout and one tick (25 ms) later
    expect(expired).toEqual(['a', 'c'])
    expect(list.idle).toBe(true)
    expect(vi.getTimerCount()).toBe(0)
    expect(list.remove(a)).toBe(false) // an expired call settling late: ignore its outcome
    expect(list.remove(b)).toBe(false) // removed twice
  })

  it('unlinks settled calls at once (head, tail, middle) so the list holds only what is in flight', () => {
    const expired: string[] = []
    const list = createDeadlineList(40)
    const all = Array.from({ length: 5 }, (_, i) => entry(String(i), expired))
    for (const e of all) list.add(e)
    list.remove(all[0]!)
    list.remove(all[4]!)
    list.remove(all[2]!)
    expect(all[1]!.next).toBe(all[3])
    expect(all[3]!.prev).toBe(all[1])
    list.remove(all[1]!)
    list.remove(all[3]!)
    expect(all.every((e) => e.prev === undefined && e.next === undefined && e.deadline === -1)).toBe(true)
    expect(list.idle).toBe(true)
    vi.advanceTimersByTime(1_000)
    expect(expired).toEqual([])
    expect(vi.getTimerCount()).toBe(0)
    const late = entry('late', expired) // usable again after it emptied
    list.add(late)
    vi.advanceTimersByTime(60)
    expect(expired).toEqual(['late'])
  })

  it('gives a call added later its own full timeout; calls onTick when the timer starts and on each tick', () => {
    const expired: string[] = []
    let ticks = 0
    const list = createDeadlineList(100, () => ticks++)
    list.add(entry('early', expired))
    expect(ticks).toBe(1)
    vi.advanceTimersByTime(75)
    list.add(entry('later', expired))
    vi.advanceTimersByTime(50)
    expect(expired).toEqual(['early'])
    vi.advanceTimersByTime(75)
    expect(expired).toEqual(['early', 'later'])
    expect(ticks).toBe(1 + 8) // start + one per 25 ms tick until 'later' (added after the third) expired at 200 ms
  })
})

describe('promiseInto', () => {
  it('stores the settle functions of the promise it returns on the holder', async () => {
    const a: Settleable<number> = { resolve: undefined, reject: undefined }
    const b: Settleable<number> = { resolve: undefined, reject: undefined }
    const pa = promiseInto(a)
    const pb = promiseInto(b)
    b.reject!(new Error('no'))
    a.resolve!(42)
    expect(await pa).toBe(42)
    await expect(pb).rejects.toThrow('no')
  })
})
