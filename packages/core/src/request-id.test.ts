import { describe, expect, it } from 'vitest'
import { generateRequestId, isSafeRequestId, resolveRequestId } from './request-id.js'

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

  it('uses a given generator for fresh ids only', () => {
    const uuid = () => '0f8fad5b-d9cb-469f-a165-70867728950e'
    expect(resolveRequestId(undefined, uuid)).toBe(uuid())
    expect(resolveRequestId('abc', uuid)).toBe('abc')
  })
})
