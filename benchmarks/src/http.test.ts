import { describe, expect, it } from 'vitest'
import { median, medianInterval, pairedRatio, pairedRatioInterval, percentRange, timesRange } from './http.js'

describe('median', () => {
  it('takes the middle value of an odd count and the mean of the two middle values of an even one', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5) // not the upper middle (3): that would favour the higher side
    expect(median([5])).toBe(5)
  })
})

describe('pairedRatio', () => {
  it('is the median of the per-round ratios, not the ratio of the medians', () => {
    // Round by round ri keeps 90 %, 80 %, 50 % and 95 % of bare: median 85 %.
    const bare = { rounds: [100, 200, 100, 200] }
    const ri = { rounds: [90, 160, 50, 190] }
    expect(pairedRatio(ri, bare)).toBeCloseTo(0.85, 10)
    expect(median(ri.rounds) / median(bare.rounds)).toBeCloseTo(125 / 150, 10)
  })

  it('refuses subjects measured in different rounds', () => {
    expect(() => pairedRatio({ rounds: [1, 2] }, { rounds: [1] })).toThrow(/different rounds/)
    expect(() => pairedRatio({ rounds: [] }, { rounds: [] })).toThrow(/different rounds/)
  })
})

describe('medianInterval', () => {
  it('takes the order statistics whose binomial coverage is at least the confidence asked', () => {
    const xs = Array.from({ length: 24 }, (_, i) => 24 - i) // 24 .. 1, unsorted on purpose
    const iv = medianInterval(xs)!
    // P(Binomial(24, 1/2) <= 6) = 190051 / 2^24: the 7th and 18th values cover 97.7 %; the 8th and 17th only 93.6 %
    expect([iv.low, iv.high]).toEqual([7, 18])
    expect(iv.coverage).toBeCloseTo(1 - (2 * 190_051) / 2 ** 24, 12)
    expect(medianInterval(xs, 0.9)).toMatchObject({ low: 8, high: 17 })
  })

  it('is the smallest and largest value for 6 to 8 values, and undefined for fewer at 95 %', () => {
    expect(medianInterval([5, 1, 4, 2, 3, 6, 8, 7])).toMatchObject({ low: 1, high: 8, coverage: 1 - 2 / 256 })
    expect(medianInterval([1, 2, 3, 4, 5, 6])).toMatchObject({ low: 1, high: 6, coverage: 1 - 2 / 64 })
    expect(medianInterval([1, 2, 3, 4, 5])).toBeUndefined() // min-max covers only 93.75 %
    expect(medianInterval([])).toBeUndefined()
    expect(() => medianInterval([1, 2, 3], 1)).toThrow(/between 0 and 1/)
  })

  it('of paired ratios: round by round, like pairedRatio', () => {
    const bare = { rounds: [100, 100, 100, 100, 100, 100] }
    const ri = { rounds: [90, 95, 80, 85, 70, 99] }
    expect(pairedRatioInterval(ri, bare)).toMatchObject({ low: 0.7, high: 0.99 })
    expect(() => pairedRatioInterval({ rounds: [1] }, { rounds: [1, 2] })).toThrow(/different rounds/)
  })
})

describe('percentRange', () => {
  it('prints an interval of ratios as percentages, mapped and in order', () => {
    expect(percentRange({ low: 0.74, high: 0.831 })).toBe('74.0-83.1 %')
    expect(percentRange({ low: 0.74, high: 0.9 }, (r) => 1 - r)).toBe('10.0-26.0 %') // a loss: the ends swap
    expect(percentRange(undefined)).toBe('n/a (too few rounds)')
  })

  it('prints an interval of ratios as multiples', () => {
    expect(timesRange({ low: 1.4, high: 2.149 })).toBe('1.40-2.15x')
    expect(timesRange(undefined)).toBe('n/a (too few rounds)')
  })
})
