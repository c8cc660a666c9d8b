import { gunzipSync, gzipSync } from 'node:zlib'

/**
 * How values are turned into bytes for Redis. `id` goes into every key prefix, so changing the
 * codec (or its version) never reads bytes written by another one.
 *
 * @example
 * import { Packr } from 'msgpackr'
 * const packr = new Packr({ useRecords: false })
 * const msgpack: Codec = { id: 'mp1', encode: (v) => packr.pack(v), decode: (b) => packr.unpack(b) }
 * createCache({ l2: redis, serializer: msgpack })
 */
export interface Codec {
  /** Short id (`a-z0-9-`, 1-16 chars) placed in the key prefix, e.g. `j1`, `mp1`. */
  readonly id: string
  encode(value: unknown): string | Uint8Array
  /** May throw: a value that does not decode is a cache miss (logged), never an error. */
  decode(bytes: Buffer): unknown
}

/** `__proto__` or `constructor` may be spelled out or \u-escaped (three scans beat a regex 2x). */
const needsSanitize = (text: string): boolean => text.includes('__proto__') || text.includes('constructor') || text.includes('\\u00')

/**
 * Parses JSON without letting `__proto__` or `constructor.prototype` reach the result. The
 * common case (no suspicious substring) costs one regex test over the text.
 *
 * @example
 * safeJsonParse('{"__proto__":{"admin":true}}') // {} : the key is dropped
 */
export function safeJsonParse(text: string): unknown {
  const value: unknown = JSON.parse(text)
  return needsSanitize(text) ? sanitize(value) : value
}

/** Removes own `__proto__` keys and `constructor.prototype` from a decoded tree, in place. */
export function sanitize(value: unknown): unknown {
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const node = stack.pop()
    if (node === null || typeof node !== 'object') continue
    if (Object.prototype.hasOwnProperty.call(node, '__proto__')) delete (node as Record<string, unknown>)['__proto__']
    const ctor = Object.prototype.hasOwnProperty.call(node, 'constructor') ? (node as Record<string, unknown>).constructor : undefined
    if (ctor !== null && typeof ctor === 'object' && Object.prototype.hasOwnProperty.call(ctor, 'prototype')) {
      delete (node as { constructor?: unknown }).constructor
    }
    for (const key in node) stack.push((node as Record<string, unknown>)[key])
  }
  return value
}

/**
 * The default codec: JSON, prototype-safe. Round-trips plain objects, arrays, strings, finite
 * numbers, booleans and null. It does NOT round-trip: `Date` (comes back as an ISO string),
 * `Map`/`Set` (empty objects), `BigInt` (throws on encode, so the value is not cached in L2),
 * `undefined` inside objects (dropped), `NaN`/`Infinity` (null). Use a codec for those.
 *
 * @example
 * createCache({ l2: redis, serializer: jsonCodec }) // the default
 */
export const jsonCodec: Codec = Object.freeze({
  id: 'j1',
  encode: (value: unknown) => JSON.stringify(value),
  decode: (bytes: Buffer) => safeJsonParse(bytes.toString('utf8')),
})

// ---- The stored L2 entry ------------------------------------------------------------------
//
// One Redis string per key, binary-safe:
//   <tags joined by 0x1f>\n<tag versions joined by ,>\n<fresh>,<hard>,<created>,<flags>\n<payload>
// The first line is read by the Lua scripts (to fetch tag versions in the same round trip);
// the second is written by the set script (the versions the value was loaded under).

export const FLAG_GZIP = 1
export const FLAG_UNDEFINED = 2

/** A decoded L2 entry. `tags` includes the namespace tag as its last element. */
export interface StoredEntry {
  readonly value: unknown
  readonly tags: string[]
  readonly versions: number[]
  readonly fresh: number
  readonly hard: number
  readonly created: number
  /** Encoded size: bytes, or characters for an entry read as text (the L1 size estimate). */
  readonly bytes: number
}

/** Escapes the two separator characters of the tag line (and `%`, `}` so keys stay unambiguous). */
export function escapeTag(tag: string): string {
  return /[%\n\x1f}]/.test(tag) ? tag.replace(/[%\n\x1f}]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`) : tag
}

/** Encodes meta + payload (everything after the two tag lines). Throws if the codec throws. */
export function encodeBody(codec: Codec, value: unknown, fresh: number, hard: number, created: number, compressAbove: number): Buffer | string {
  let flags = 0
  let payload: string | Uint8Array = ''
  if (value === undefined) flags |= FLAG_UNDEFINED
  else payload = codec.encode(value)
  const size = typeof payload === 'string' ? payload.length : payload.byteLength
  if (size > compressAbove) {
    payload = gzipSync(payload)
    flags |= FLAG_GZIP
  }
  const meta = `${fresh},${hard},${created},${flags}\n`
  if (typeof payload === 'string') return meta + payload
  return Buffer.concat([Buffer.from(meta, 'latin1'), payload])
}

/** A tag line seen on most entries (e.g. only the namespace tag), decoded once at construction. */
export interface KnownTagLine {
  readonly line: string
  /** Shared by every entry decoded with it: callers must not mutate it. */
  readonly tags: string[]
}

export function knownTagLine(tags: string[]): KnownTagLine {
  return { line: tags.join('\x1f'), tags }
}

/**
 * Thrown by `decodeEntry` for an entry read as text whose payload is compressed (its bytes did
 * not survive UTF-8 decoding): read it again as bytes. A constant, so throwing it costs no stack.
 */
export const NEEDS_BYTES: Error = Object.freeze(new Error('compressed cache entry read as text')) as Error

/**
 * Decodes a stored entry; throws on anything malformed (the caller turns that into a miss).
 * A first line equal to `known.line` reuses `known.tags`: no string or array for it per hit.
 *
 * `raw` is the reply as bytes, or as text when the reader knows the payload is text (the JSON
 * codec without compression: no Buffer in the reply, nothing to convert). A text entry whose
 * flags say compressed throws NEEDS_BYTES.
 */
export function decodeEntry(codec: Codec, raw: Buffer | string, known?: KnownTagLine): StoredEntry {
  return decode(codec, raw, known, raw.length)
}

/** decodeEntry, with the entry's encoded size given (a Buffer decoded as text keeps its byte count). */
function decode(codec: Codec, raw: Buffer | string, known: KnownTagLine | undefined, bytes: number): StoredEntry {
  let c: number
  if (typeof raw === 'string') c = parseHead(raw, -1, known)
  else {
    const len = raw.length
    const a = byteIndex(raw, 10, 0, len)
    const b = a < 0 ? -1 : byteIndex(raw, 10, a + 1, len)
    c = b < 0 ? -1 : byteIndex(raw, 10, b + 1, len)
    if (c < 0) throw new Error('malformed cache entry: missing header lines')
    // JSON, not compressed (the flags are one digit, last before the newline): all of it is
    // text, decoded once as such.
    if (codec === jsonCodec && ((raw[c - 1]! - 48) & FLAG_GZIP) === 0) return decode(codec, raw.toString('utf8'), known, len)
    const h = raw.toString('utf8', 0, c + 1)
    parseHead(h, h.length - 1, known)
  }
  // Taken before any codec runs: parseHead's object is shared.
  const { tags, versions, fresh, hard, created, flags } = head
  let value: unknown
  if ((flags & FLAG_UNDEFINED) === 0) {
    if (typeof raw === 'string') {
      if ((flags & FLAG_GZIP) !== 0) throw NEEDS_BYTES
      value = codec === jsonCodec ? safeJsonParse(raw.slice(c + 1)) : codec.decode(Buffer.from(raw.slice(c + 1), 'utf8'))
    } else if ((flags & FLAG_GZIP) !== 0) value = codec.decode(gunzipSync(raw.subarray(c + 1)))
    else value = codec.decode(raw.subarray(c + 1))
  }
  return { value, tags, versions, fresh, hard, created, bytes }
}

// parseHead's result. One object for the module: parsing is synchronous and calls out to
// nothing, so no two parses overlap.
const head = { tags: [] as string[], versions: [] as number[], fresh: 0, hard: 0, created: 0, flags: 0 }

/**
 * Parses the three header lines of `h` into `head` in one pass over their char codes (the
 * versions and meta are ASCII integers: no substring, no indexOf per field); returns the index of
 * the third newline. `end`, when known (>= 0), is that index.
 */
function parseHead(h: string, end: number, known: KnownTagLine | undefined): number {
  const len = end < 0 ? h.length : end + 1
  let a = 0
  while (a < len && h.charCodeAt(a) !== 10) a++
  if (a === len) throw new Error('malformed cache entry: missing header lines')
  const tags = a === 0 ? [] : known !== undefined && a === known.line.length && h.startsWith(known.line) ? known.tags : h.slice(0, a).split('\x1f')
  // One version per tag: sized up front (push() would give a one-tag entry room for 17).
  const n = tags.length
  const versions: number[] = new Array<number>(n)
  let i = a + 1
  let count = 0
  if (i < len && h.charCodeAt(i) !== 10) {
    for (;;) {
      if (count === n) throw new Error('malformed cache entry: tag versions')
      i = readInt(h, i, len)
      versions[count++] = parsed
      const sep = h.charCodeAt(i++)
      if (sep === 10) break
      if (sep !== 44) throw new Error('malformed cache entry: tag versions')
    }
  } else i++
  if (count !== n) throw new Error('malformed cache entry: tag versions')
  for (let f = 0; f < 4; f++) {
    i = readInt(h, i, len)
    meta[f] = parsed
    if (h.charCodeAt(i++) !== (f === 3 ? 10 : 44)) throw new Error('malformed cache entry: meta')
  }
  head.tags = tags
  head.versions = versions
  head.fresh = meta[0]!
  head.hard = meta[1]!
  head.created = meta[2]!
  head.flags = meta[3]!
  return i - 1
}
const meta = [0, 0, 0, 0]
// readInt's number (it returns where the digits end).
let parsed = 0

// The header lines are a few dozen bytes: a JS loop finds their ends in a Buffer without a
// native call per line.
function byteIndex(raw: Buffer, byte: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (raw[i] === byte) return i
  return -1
}

/**
 * Reads a decimal integer (optionally `-`-prefixed, at most 16 digits) starting at `from` into
 * `parsed`; returns the index after its last digit. Throws when there is no digit.
 */
function readInt(h: string, from: number, len: number): number {
  let i = from
  let sign = 1
  if (i < len && h.charCodeAt(i) === 45) {
    sign = -1
    i++
  }
  const start = i
  let n = 0
  for (; i < len; i++) {
    const d = h.charCodeAt(i) - 48
    if (d < 0 || d > 9) break
    n = n * 10 + d
  }
  if (i === start || i - start > 16) throw new Error('malformed cache entry: number')
  parsed = sign * n
  return i
}

/** A rough size of a value, for `l1.maxSize` without a `sizeCalculation`. */
export function estimateSize(value: unknown): number {
  if (value === null || value === undefined) return 8
  if (typeof value === 'string') return 16 + value.length * 2
  if (typeof value !== 'object') return 16
  try {
    return 16 + (JSON.stringify(value)?.length ?? 0) * 2
  } catch {
    return 1024
  }
}
