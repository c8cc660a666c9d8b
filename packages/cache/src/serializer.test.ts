import { describe, expect, it } from 'vitest'
import { decodeEntry, encodeBody, escapeTag, jsonCodec, knownTagLine, NEEDS_BYTES, safeJsonParse } from './serializer.js'

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

  it('decodes the same entry read as text or as bytes, multi-byte tags included', () => {
    const now = Date.now()
    const known = knownTagLine(['ünï', '#ns:'])
    for (const line of ['ünï\x1f#ns:', 'a\x1f💡\x1f#ns:', '#ns:', '']) {
      const n = line === '' ? 0 : line.split('\x1f').length
      const versions = Array.from({ length: n }, (_, i) => String(i * 7 + 1)).join(',')
      const body = encodeBody(jsonCodec, { s: 'é💡', n: [1, -2.5] }, now + 10, now + 20, now, Number.POSITIVE_INFINITY) as string
      const text = `${line}\n${versions}\n${body}`
      const fromText = decodeEntry(jsonCodec, text, known)
      const fromBytes = decodeEntry(jsonCodec, Buffer.from(text), known)
      expect(fromText).toMatchObject({ value: { s: 'é💡', n: [1, -2.5] }, fresh: now + 10, hard: now + 20, created: now })
      expect({ ...fromText, bytes: 0 }).toEqual({ ...fromBytes, bytes: 0 })
      expect(fromBytes.bytes).toBe(Buffer.byteLength(text)) // bytes, though decoded as text
      expect(fromText.tags).toEqual(line === '' ? [] : line.split('\x1f'))
      if (line === 'ünï\x1f#ns:') expect(fromText.tags).toBe(known.tags)
    }
  })

  it('an entry read as text whose payload is compressed asks for its bytes', () => {
    const body = encodeBody(jsonCodec, { a: 'x'.repeat(200) }, 2, 3, 1, 10) as Buffer
    const bytes = entry('#ns:', '1', body)
    expect(decodeEntry(jsonCodec, bytes).value).toEqual({ a: 'x'.repeat(200) })
    expect(() => decodeEntry(jsonCodec, bytes.toString('utf8'))).toThrow(NEEDS_BYTES)
  })

  it('throws on malformed entries (the cache turns that into a miss)', () => {
    for (const raw of ['', 'x', 'a\nb', 'a\n1\nmeta\n{}', 'a\nNaN\n1,2,3,0\n{}', '\n\n1,2,3,0\n{bad json', '\n\n1,2,3,1\nnot-gzip', 'a\n1\n1,2,3\n0,{}', 'a\n1,2\n1,2,3,0\n{}', 'a\x1fb\n1\n1,2,3,0\n{}', 'a\n1,\n1,2,3,0\n{}', '\n\n1,2,3\n{"a":1,"b":2,"c":3}']) {
      expect(() => decodeEntry(jsonCodec, Buffer.from(raw))).toThrow()
      expect(() => decodeEntry(jsonCodec, Buffer.from(raw), knownTagLine(['a']))).toThrow()
      expect(() => decodeEntry(jsonCodec, raw)).toThrow()
      expect(() => decodeEntry(jsonCodec, raw, knownTagLine(['a']))).toThrow()
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
