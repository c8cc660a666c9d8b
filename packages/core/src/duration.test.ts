import { describe, expect, it } from 'vitest'
import { formatDuration, parseDuration, tryParseDuration } from './duration.js'
import { RiConfigError } from './errors.js'

describe('parseDuration', () => {
  it.each([
    [0, 0],
    [250, 250],
    [1.5, 1.5],
    ['150ms', 150],
    ['0ms', 0],
    ['2s', 2_000],
    ['1.5s', 1_500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
  ])('accepts %j as %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms)
  })

  it.each([
    -1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    '',
    '5',
    '5 m',
    ' 5m',
    '5m ',
    '5min',
    '5M',
    '1h30m',
    '-1s',
    '+1s',
    '1e3ms',
    '.5s',
    '5.s',
    'soon',
    '5minutes',
    null,
    undefined,
    true,
    {},
    [],
    '9'.repeat(40) + 'ms',
  ])('rejects %j', (input) => {
    expect(tryParseDuration(input)).toBeUndefined()
    expect(() => parseDuration(input, 'createCache.ttl')).toThrow(RiConfigError)
  })

  it('names the option, the value and what is accepted', () => {
    try {
      parseDuration('5 minutes', 'createCache.ttl')
      expect.unreachable()
    } catch (err) {
      const e = err as RiConfigError
      expect(e.code).toBe('RI_CONFIG')
      expect(e.option).toBe('createCache.ttl')
      expect(e.received).toBe('5 minutes')
      expect(e.message).toContain('createCache.ttl')
      expect(e.message).toContain('"5 minutes"')
      expect(e.message).toContain("'150ms', '5m', '1h', '7d'")
    }
  })

  it('formats round values compactly', () => {
    expect(formatDuration(300_000)).toBe('5m')
    expect(formatDuration(3_600_000)).toBe('1h')
    expect(formatDuration(1_500)).toBe('1500ms')
  })
})
