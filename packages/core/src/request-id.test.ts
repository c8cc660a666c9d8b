import { describe, expect, it } from 'vitest'
import { generateRequestId, isSafeRequestId, resolveRequestId, setRequestIdCounter } from './request-id.js'

// A default id: 12 hex digits of per-process randomness, a dash, a base-36 counter.
const ID_RE = /^[0-9a-f]{12}-[0-9a-z]{1,11}$/

describe('request id', () => {
  it.each(['abc', 'req-123', '0f8fad5b-d9cb-469f-a165-70867728950e', 'a.b:c_d~e', 'x'.repeat(64)])('accepts %j', (id) => {
    expect(isSafeRequestId(id)).toBe(true)
    expect(resolveRequestId(id)).toBe(id)
  })

  it.each([
    ['empty', ''],
    ['overlong', 'x'.repeat(65)],
    ['CRLF header injection', 'abc\r\nSet-Cookie: a=b'],
    ['newline', 'abc\ndef'],
    ['NUL', 'abc\u0000'],
    ['DEL', 'abc\u007f'],
    ['space', 'abc def'],
    ['quote', 'abc"def'],
    ['unicode', 'abcé'],
    ['leading dash', '-abc'],
    ['log forging', '{"level":60}'],
  ])('rejects %s and generates a fresh id', (_label, id) => {
    expect(isSafeRequestId(id)).toBe(false)
    const out = resolveRequestId(id)
    expect(out).not.toBe(id)
    expect(out).toMatch(ID_RE)
  })

  it('rejects repeated headers and absent values', () => {
    expect(resolveRequestId(['a', 'b'])).toMatch(ID_RE)
    expect(resolveRequestId(undefined)).toMatch(ID_RE)
    expect(resolveRequestId(undefined)).not.toBe(resolveRequestId(undefined))
  })

  it('generates distinct safe ids sharing one per-process prefix', () => {
    const ids = Array.from({ length: 10_000 }, () => generateRequestId())
    expect(new Set(ids).size).toBe(ids.length)
    for (const id of ids) {
      expect(id).toMatch(ID_RE)
      expect(isSafeRequestId(id)).toBe(true)
    }
    expect(new Set(ids.map((id) => id.slice(0, 13))).size).toBe(1)
  })

  it('counts in base 36 across the digit table\'s edges, as toString(36) would', () => {
    const prefix = generateRequestId().slice(0, 13)
    for (const start of [0, 34, 1294, 1295, 1296, 36 * 36 * 2 - 2, 46655, 46656, 2 ** 40, Number.MAX_SAFE_INTEGER - 3]) {
      setRequestIdCounter(start)
      for (let n = start + 1; n <= start + 3 && n < Number.MAX_SAFE_INTEGER; n++) expect(generateRequestId()).toBe(prefix + n.toString(36))
    }
    // At the end of the counter a new prefix starts it again from 1.
    setRequestIdCounter(Number.MAX_SAFE_INTEGER)
    const next = generateRequestId()
    expect(next.slice(0, 13)).not.toBe(prefix)
    expect(next.slice(13)).toBe('1')
  })

  it('uses a given generator for fresh ids only', () => {
    const uuid = () => '0f8fad5b-d9cb-469f-a165-70867728950e'
    expect(resolveRequestId(undefined, uuid)).toBe(uuid())
    expect(resolveRequestId('abc', uuid)).toBe('abc')
  })
})
