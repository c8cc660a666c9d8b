import { describe, expect, it } from 'vitest'
import { median, pairedRatio } from './http.js'

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
