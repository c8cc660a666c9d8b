import { describe, expect, it } from 'vitest'
import { isSafeRequestId, resolveRequestId } from './request-id.js'

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

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
    expect(out).toMatch(UUID_RE)
  })

  it('rejects repeated headers and absent values', () => {
    expect(resolveRequestId(['a', 'b'])).toMatch(UUID_RE)
    expect(resolveRequestId(undefined)).toMatch(UUID_RE)
    expect(resolveRequestId(undefined)).not.toBe(resolveRequestId(undefined))
  })
})
