import { describe, expect, it } from 'vitest'
import { formatLsn, parseLsn } from './lsn.js'

describe('lsn', () => {
  it('parses and formats pg_lsn text exactly, including 64-bit positions', () => {
    expect(parseLsn('0/0')).toBe(0n)
    expect(parseLsn('0/16B3748')).toBe(0x16b3748n)
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe(0xffffffffffffffffn)
    expect(formatLsn(parseLsn('16/B374D848')!)).toBe('16/B374D848')
    expect(parseLsn('1/0')! > parseLsn('0/FFFFFFFF')!).toBe(true)
  })
  it('rejects anything else', () => {
    for (const bad of ['', '0', '0/', '/0', 'G/0', '0/0/0', '123456789/0', 12, null]) expect(parseLsn(bad)).toBeUndefined()
  })
})
