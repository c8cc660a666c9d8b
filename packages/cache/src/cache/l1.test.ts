import { describe, expect, it } from 'vitest'
import { L1Store } from './l1.js'

interface E {
  v: string
  used: number
  size?: number
}
const e = (v: string, size = 1): E => ({ v, used: 0, size })
const keysIn = (s: L1Store<E>, n: number, prefix = 'k') => Array.from({ length: n }, (_, i) => `${prefix}${i}`).filter((k) => s.get(k) !== undefined)

describe('L1Store', () => {
  it('holds at most max entries and evicts the least recently written first', () => {
    const s = new L1Store<E>({ max: 10 })
    for (let i = 0; i < 25; i++) s.set(`k${i}`, e(`v${i}`))
    expect(s.size).toBe(10)
    expect(keysIn(s, 25)).toEqual(Array.from({ length: 10 }, (_, i) => `k${15 + i}`))
  })

  it('a read moves an entry that is not among the most recent quarter, so it outlives the others', () => {
    const s = new L1Store<E>({ max: 8 })
    for (let i = 0; i < 8; i++) s.set(`k${i}`, e(`v${i}`))
    expect(s.get('k0')?.v).toBe('v0') // 7 moves since k0 was written: moved to the front
    for (let i = 0; i < 7; i++) s.set(`n${i}`, e(`n${i}`))
    expect(s.get('k0')?.v).toBe('v0')
    expect(keysIn(s, 8)).toEqual(['k0'])
  })

  it('below 4 entries of bound it is plain LRU', () => {
    const s = new L1Store<E>({ max: 2 })
    s.set('a', e('a'))
    s.set('b', e('b'))
    s.get('a')
    s.set('c', e('c'))
    expect(s.get('a')?.v).toBe('a')
    expect(s.get('b')).toBeUndefined()
    expect(s.get('c')?.v).toBe('c')
  })

  it('a read within the most recent quarter does not reorder (the documented approximation)', () => {
    const s = new L1Store<E>({ max: 8 }) // a quarter: 2 moves
    for (let i = 0; i < 8; i++) s.set(`k${i}`, e(`v${i}`))
    s.get('k6') // 1 move since: stays behind k7 (plain LRU would put it in front of k7)
    for (let i = 0; i < 7; i++) s.set(`n${i}`, e(`n${i}`))
    expect(keysIn(s, 8)).toEqual(['k7'])
  })

  it('an entry read at least once per quarter of the bound survives any churn', () => {
    const s = new L1Store<E>({ max: 100 })
    s.set('hot', e('hot'))
    for (let i = 0; i < 10_000; i++) {
      s.set(`k${i}`, e(`v${i}`))
      if (i % 25 === 0) expect(s.get('hot')?.v).toBe('hot')
    }
    expect(s.get('hot')?.v).toBe('hot')
    expect(s.size).toBe(100)
  })

  it('delete, overwrite and clear keep the index equal to lru-cache', () => {
    const s = new L1Store<E>({ max: 4 })
    s.set('a', e('a1'))
    s.set('a', e('a2'))
    expect(s.get('a')?.v).toBe('a2')
    expect(s.size).toBe(1)
    expect(s.delete('a')).toBe(true)
    expect(s.delete('a')).toBe(false)
    expect(s.get('a')).toBeUndefined()
    s.set('b', e('b'))
    s.set('c', e('c'))
    s.clear()
    expect(s.size).toBe(0)
    expect(s.get('b')).toBeUndefined()
    s.set('b', e('b2'))
    expect(s.get('b')?.v).toBe('b2')
  })

  it('with maxSize: bounded by size, and a value larger than maxSize is refused and drops the old one', () => {
    const s = new L1Store<E>({ max: 1_000, maxSize: 10, sizeCalculation: (x) => x.size! })
    for (let i = 0; i < 8; i++) s.set(`k${i}`, e(`v${i}`, 3))
    expect(s.calculatedSize).toBeLessThanOrEqual(10)
    expect(s.size).toBe(3)
    expect(keysIn(s, 8)).toEqual(['k5', 'k6', 'k7'])
    s.set('k7', e('too big', 11))
    expect(s.get('k7')).toBeUndefined()
    expect(s.size).toBe(2)
    expect(s.calculatedSize).toBe(6)
  })

  it('with maxSize, reads move entries older than a quarter of those held', () => {
    const s = new L1Store<E>({ max: 1_000, maxSize: 8, sizeCalculation: () => 1 })
    for (let i = 0; i < 8; i++) s.set(`k${i}`, e(`v${i}`))
    s.get('k0')
    for (let i = 0; i < 7; i++) s.set(`n${i}`, e(`n${i}`))
    expect(keysIn(s, 8)).toEqual(['k0'])
  })

  it('the index never outgrows the bound under random sets, reads and deletes', () => {
    const s = new L1Store<E>({ max: 50 })
    let seed = 7
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    for (let i = 0; i < 20_000; i++) {
      const k = `k${Math.floor(rnd() * 200)}`
      const r = rnd()
      if (r < 0.5) s.set(k, e(k))
      else if (r < 0.9) {
        const got = s.get(k)
        if (got !== undefined) expect(got.v).toBe(k)
      } else s.delete(k)
      expect(s.size).toBeLessThanOrEqual(50)
    }
    expect(keysIn(s, 200).length).toBe(s.size)
  })
})
