import { describe, expect, it } from 'vitest'
import { decodeEntry, encodeBody, escapeTag, jsonCodec, knownTagLine, safeJsonParse } from './serializer.js'

const entry = (tags: string, versions: string, body: string | Buffer) =>
  Buffer.concat([Buffer.from(`${tags}\n${versions}\n`), Buffer.isBuffer(body) ? body : Buffer.from(body)])

describe('serializer', () => {
  it('safeJsonParse drops __proto__ and constructor.prototype, escaped or not', () => {
    for (const text of ['{"__proto__":{"x":1},"a":1}', '{"\\u005f_proto__":{"x":1},"a":1}', '{"constructor":{"prototype":{"x":1}},"a":1}', '{"n":{"__proto__":{"x":1}},"a":1}']) {
      const v = safeJsonParse(text) as Record<string, unknown>
      expect(v.a).toBe(1)
      expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
      expect(Object.assign({}, v, v.n as object).x).toBeUndefined()
      expect(({} as Record<string, unknown>).x).toBeUndefined()
    }
    expect(safeJsonParse('{"constructor":"ok"}')).toEqual({ constructor: 'ok' })
  })

  it('round-trips an entry, with and without compression, and undefined', () => {
    const now = Date.now()
    for (const threshold of [Number.POSITIVE_INFINITY, 0]) {
      const body = encodeBody(jsonCodec, { a: [1, 'é', null] }, now + 10, now + 20, now, threshold)
      const e = decodeEntry(jsonCodec, entry('t1\x1f#ns:', '3,0', Buffer.isBuffer(body) ? body : Buffer.from(body)))
      expect(e).toMatchObject({ value: { a: [1, 'é', null] }, tags: ['t1', '#ns:'], versions: [3, 0], fresh: now + 10, hard: now + 20, created: now })
    }
    const u = encodeBody(jsonCodec, undefined, 1, 2, 0, Number.POSITIVE_INFINITY)
    expect(decodeEntry(jsonCodec, entry('', '', u as string)).value).toBeUndefined()
  })

  it('throws on malformed entries (the cache turns that into a miss)', () => {
    for (const raw of ['', 'x', 'a\nb', 'a\n1\nmeta\n{}', 'a\nNaN\n1,2,3,0\n{}', '\n\n1,2,3,0\n{bad json', '\n\n1,2,3,1\nnot-gzip', 'a\n1\n1,2,3\n0,{}', 'a\n1,2\n1,2,3,0\n{}', 'a\x1fb\n1\n1,2,3,0\n{}']) {
      expect(() => decodeEntry(jsonCodec, Buffer.from(raw))).toThrow()
      expect(() => decodeEntry(jsonCodec, Buffer.from(raw), knownTagLine(['a']))).toThrow()
    }
  })

  it('reuses a known tag line only when the bytes match it exactly', () => {
    const known = knownTagLine(['#ns:'])
    const body = '5,6,4,0\n1'
    expect(decodeEntry(jsonCodec, Buffer.from(`#ns:\n2\n${body}`), known).tags).toBe(known.tags)
    for (const line of ['#ns:x', '#ns', '#nt:']) {
      const e = decodeEntry(jsonCodec, Buffer.from(`${line}\n2\n${body}`), known)
      expect(e.tags).toEqual([line])
      expect(e).toMatchObject({ versions: [2], fresh: 5, hard: 6, created: 4, value: 1 })
    }
  })

  it('escapes separators in tags so the tag line and key names stay unambiguous', () => {
    expect(escapeTag('plain:tag')).toBe('plain:tag')
    expect(escapeTag('a\nb\x1fc}d%')).toBe('a%0ab%1fc%7dd%25')
  })
})
