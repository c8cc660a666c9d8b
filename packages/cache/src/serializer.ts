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
  /** Encoded size in bytes (used as the L1 size estimate). */
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
  readonly line: Buffer
  /** Shared by every entry decoded with it: callers must not mutate it. */
  readonly tags: string[]
}

export function knownTagLine(tags: string[]): KnownTagLine {
  return { line: Buffer.from(tags.join('\x1f'), 'utf8'), tags }
}

/**
 * Decodes a stored entry; throws on anything malformed (the caller turns that into a miss).
 * A first line equal to `known.line` reuses `known.tags`: no string or array for it per hit.
 */
export function decodeEntry(codec: Codec, raw: Buffer, known?: KnownTagLine): StoredEntry {
  const len = raw.length
  const a = byteIndex(raw, 10, 0, len)
  if (a < 0) throw new Error('malformed cache entry: missing header lines')
  const b = byteIndex(raw, 10, a + 1, len)
  if (b < 0) throw new Error('malformed cache entry: missing header lines')
  const c = byteIndex(raw, 10, b + 1, len)
  if (c < 0) throw new Error('malformed cache entry: missing header lines')
  const tags = a === 0 ? [] : known !== undefined && sameBytes(raw, known.line, a) ? known.tags : raw.toString('utf8', 0, a).split('\x1f')
  // Versions and meta are ASCII integers: parsed from the bytes, no intermediate strings. One
  // version per tag: sized up front (push() would give a one-tag entry room for 17).
  const n = tags.length
  const versions: number[] = new Array<number>(n)
  let from = a + 1
  let count = 0
  if (b > from) {
    for (;;) {
      let end = byteIndex(raw, 44, from, b)
      if (end < 0) end = b
      if (count === n) throw new Error('malformed cache entry: tag versions')
      versions[count++] = readInt(raw, from, end)
      if (end === b) break
      from = end + 1
    }
  }
  if (count !== n) throw new Error('malformed cache entry: tag versions')
  const m1 = byteIndex(raw, 44, b + 1, c)
  const m2 = m1 < 0 ? -1 : byteIndex(raw, 44, m1 + 1, c)
  const m3 = m2 < 0 ? -1 : byteIndex(raw, 44, m2 + 1, c)
  if (m3 < 0) throw new Error('malformed cache entry: meta')
  const fresh = readInt(raw, b + 1, m1)
  const hard = readInt(raw, m1 + 1, m2)
  const created = readInt(raw, m2 + 1, m3)
  const flags = readInt(raw, m3 + 1, c)
  let value: unknown
  if ((flags & FLAG_UNDEFINED) === 0) {
    if ((flags & FLAG_GZIP) !== 0) value = codec.decode(gunzipSync(raw.subarray(c + 1)))
    // The default codec reads the text straight from the reply: no Buffer view per hit.
    else if (codec === jsonCodec) value = safeJsonParse(raw.toString('utf8', c + 1))
    else value = codec.decode(raw.subarray(c + 1))
  }
  return { value, tags, versions, fresh, hard, created, bytes: raw.length }
}

// The header is a few dozen bytes: a JS loop over them beats a native Buffer#indexOf /
// Buffer#compare call per field (seven of them per hit showed up in the L2 hit profile).
function byteIndex(raw: Buffer, byte: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (raw[i] === byte) return i
  return -1
}

/** `raw[0, n)` equals `line` (whose length must be n). */
function sameBytes(raw: Buffer, line: Buffer, n: number): boolean {
  if (line.length !== n) return false
  for (let i = 0; i < n; i++) if (raw[i] !== line[i]) return false
  return true
}

/** A non-negative (or `-`-prefixed) decimal integer in `raw[from, to)`; throws otherwise. */
function readInt(raw: Buffer, from: number, to: number): number {
  if (to <= from || to - from > 16) throw new Error('malformed cache entry: number')
  let i = from
  let sign = 1
  if (raw[i] === 45) {
    sign = -1
    i++
    if (i === to) throw new Error('malformed cache entry: number')
  }
  let n = 0
  for (; i < to; i++) {
    const d = raw[i]! - 48
    if (d < 0 || d > 9) throw new Error('malformed cache entry: number')
    n = n * 10 + d
  }
  return sign * n
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
