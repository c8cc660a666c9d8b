import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { brotliCompress, constants as zlibConstants, gzip } from 'node:zlib'
import { type Answer, createOptionsChecker, type Duration, type Exchange, type Feature } from '@ri/core'
import { type Cache, kPeekFresh, type PeekFresh } from '../cache/types.js'
import { now as clockNow } from '../clock.js'

/**
 * Options of the HTTP response cache.
 *
 * @example
 * const options: CachedOptions = { cache: cache.namespace('http'), ttl: '30s', vary: ['accept-language'] }
 */
export interface CachedOptions {
  /** The cache (or namespace) responses are stored in, e.g. `cache.namespace('http')`. */
  cache: Cache
  /** Freshness of a stored response. Default: the cache namespace's `ttl`. */
  ttl?: Duration
  /** Tags of the stored response; `cache.invalidateTags()` purges responses too. */
  tags?: readonly string[] | ((exchange: Exchange) => readonly string[] | undefined)
  /** Cache key of a request; return undefined to bypass. Default: path + query + `vary` headers. */
  key?: (exchange: Exchange) => string | undefined
  /** Request headers that select a different stored response (e.g. `accept-language`). */
  vary?: readonly string[]
  /** Which statuses are stored. Default: 2xx. */
  statuses?: readonly number[] | ((status: number) => boolean)
  /** Store responses carrying `Set-Cookie`. Default false (never do this for per-user pages). */
  allowSetCookie?: boolean
  /** Add `Cache-Control: public, max-age=<remaining>` when the handler set none. Default true. */
  cacheControl?: boolean
  /** Feature name (several response caches can coexist). Default `cached`. */
  name?: string
  /**
   * Compressed variants stored beside the identity body, produced once when the response is
   * stored and served to clients whose `Accept-Encoding` accepts them (`Vary: Accept-Encoding`).
   * Only for compressible content types, bodies of at least `threshold` bytes, responses without
   * their own `Content-Encoding` or `Cache-Control: no-transform`, and variants smaller than the
   * identity body. Default `{ threshold: 1024, encodings: ['br', 'gzip'] }`; `false` stores none.
   */
  compress?: false | CompressOptions
}

/**
 * Compressed variants of stored responses.
 *
 * @example
 * cached({ cache, compress: { threshold: 2048, encodings: ['gzip'] } })
 */
export interface CompressOptions {
  /** Smallest body (bytes) worth compressing. Default 1024. */
  threshold?: number
  /** Variants to produce, in order of preference when a client accepts several. Default `['br', 'gzip']`. */
  encodings?: ReadonlyArray<'br' | 'gzip'>
}

const COMPRESS_DEFAULTS = Object.freeze({ threshold: 1024, encodings: Object.freeze(['br', 'gzip'] as const) })
const COMPRESSIBLE = /^\s*(?:text\/|application\/(?:json|javascript|ecmascript|xml|x-www-form-urlencoded|(?:[\w.-]+\+)(?:json|xml))|image\/svg\+xml)/i
const gzipAsync = promisify(gzip)
const brotliAsync = promisify(brotliCompress)
// Quality 5 with a size hint: most of brotli's gain at a fraction of quality 11's CPU (done once per store).
const brotliOptions = (size: number) => ({ params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: size } })
const ETAG_SUFFIX: Readonly<Record<string, string>> = Object.freeze({ br: '-br', gzip: '-gz' })

/**
 * What is stored per response. `bodies` is keyed by content-coding so compressed variants
 * (`gzip`, `br`, added by the adapters) sit beside the identity body under one key and one ETag
 * family; `d` is base64 when `b` is true.
 *
 * @example
 * // { v: 1, status: 200, headers: [['content-type', 'application/json']], etag: '"…"', bodies: { identity: { d: '{…}', b: false } } }
 */
export interface StoredResponse {
  readonly v: 1
  readonly status: number
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly etag: string
  readonly bodies: Readonly<Record<string, { readonly d: string; readonly b: boolean }>>
}

// Per-request or hop-by-hop headers that are never replayed from the cache.
const UNSAFE_HEADERS = new Set([
  'set-cookie', 'date', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'age', 'x-cache', 'etag',
  'server-timing', 'x-request-id', 'proxy-authenticate', 'www-authenticate', 'upgrade', 'trailer', 'te',
])
const NO_STORE = /(?:^|,)\s*(?:private|no-store|no-cache)\b/i
const STATE = 'ri.cached'

interface PendingState {
  readonly key: string
  readonly refreshing: boolean
}

/**
 * The HTTP response cache as a core `Feature`: `onRequest` answers a HIT (or 304 for a matching
 * `If-None-Match`) from the cache; `onSend` stores the body of a cacheable MISS. Adapters wrap
 * it with no logic of their own. Only GET/HEAD are cached; responses with `Set-Cookie`,
 * `Cache-Control: private|no-store|no-cache` or a non-2xx status are never stored unless told.
 *
 * It takes the cache instance explicitly (`cached({ cache, ... })`) rather than being a cache
 * method: the DESIGN name stays `cached(...)`, the feature is tree-shakable, and the caller
 * picks the namespace (and so what `clear()` drops) in plain sight.
 *
 * Adapter contract: before `pipeline.send(ex, body)`, set `ex.status` and copy the handler's
 * response headers into `ex.responseHeaders` (the feature reads status, `set-cookie`,
 * `cache-control`, `content-type` from there).
 *
 * @example
 * const pipeline = createPipeline([cached({ cache: cache.namespace('http'), ttl: '30s', tags: (ex) => ['products'] })])
 * // later: await cache.invalidateTags(['products']) purges the stored responses too
 */
export function cached(options: CachedOptions): Feature {
  const check = createOptionsChecker('cached')
  check.known(options, ['cache', 'ttl', 'tags', 'key', 'vary', 'statuses', 'allowSetCookie', 'cacheControl', 'name', 'compress'])
  const cache = options?.cache
  if (!cache || typeof cache.getEntry !== 'function' || typeof cache.set !== 'function') check.problem('cache', cache, 'a cache from createCache()')
  const ttl = check.duration('ttl', options?.ttl)
  if (ttl !== undefined && ttl <= 0) check.problem('ttl', options.ttl, 'a duration above 0')
  const tagsOpt = options?.tags
  if (tagsOpt !== undefined && typeof tagsOpt !== 'function' && !(Array.isArray(tagsOpt) && tagsOpt.every((t) => typeof t === 'string' && t.length > 0))) {
    check.problem('tags', tagsOpt, 'an array of non-empty strings or a function (exchange) => tags')
  }
  const keyFn = check.fn<(ex: Exchange) => string | undefined>('key', options?.key)
  const vary = (options?.vary ?? []).map((h) => String(h).toLowerCase())
  if (options?.vary !== undefined && (!Array.isArray(options.vary) || options.vary.some((h) => typeof h !== 'string' || !/^[a-z0-9-]+$/i.test(h)))) {
    check.problem('vary', options.vary, 'an array of request header names')
  }
  const statuses = options?.statuses
  let cacheable: (status: number) => boolean = (s) => s >= 200 && s < 300
  if (typeof statuses === 'function') cacheable = statuses
  else if (Array.isArray(statuses) && statuses.every((s) => Number.isInteger(s))) {
    const set = new Set(statuses)
    cacheable = (s) => set.has(s)
  } else if (statuses !== undefined) check.problem('statuses', statuses, 'an array of status codes or a function (status) => boolean')
  const allowSetCookie = check.boolean('allowSetCookie', options?.allowSetCookie, false)
  const cacheControl = check.boolean('cacheControl', options?.cacheControl, true)
  const name = check.string('name', options?.name, 'cached', /^[\w.-]{1,64}$/)
  const compressOpt = options?.compress
  let threshold: number = COMPRESS_DEFAULTS.threshold
  let encodings: ReadonlyArray<'br' | 'gzip'> = COMPRESS_DEFAULTS.encodings
  if (compressOpt === false) encodings = []
  else if (compressOpt !== undefined) {
    if (typeof compressOpt !== 'object' || compressOpt === null) check.problem('compress', compressOpt, 'false or { threshold, encodings }')
    else {
      check.known(compressOpt, ['threshold', 'encodings'], 'compress')
      threshold = check.integer('compress.threshold', compressOpt.threshold, threshold, { min: 0 })
      const e = compressOpt.encodings
      if (e !== undefined && (!Array.isArray(e) || e.length === 0 || e.some((x) => x !== 'br' && x !== 'gzip') || new Set(e).size !== e.length)) {
        check.problem('compress.encodings', e, "a non-empty array of 'br' and/or 'gzip'")
      } else if (e !== undefined) encodings = Object.freeze([...e])
    }
  }
  check.done()
  const varyHeader = vary.length > 0 ? vary.join(', ') : undefined
  const setOptions = (ex: Exchange) => {
    const tags = typeof tagsOpt === 'function' ? tagsOpt(ex) : tagsOpt
    return { ttl, tags }
  }
  // Requests refreshing a stale response right now: others get STALE meanwhile.
  const refreshing = new Set<string>()

  const defaultKey = (ex: Exchange): string => {
    let k = ex.query === '' ? ex.path : `${ex.path}?${ex.query}`
    for (const h of vary) k += `\n${h}=${ex.header(h) ?? ''}`
    return k
  }

  const answer = (ex: Exchange, stored: StoredResponse, state: 'HIT' | 'STALE', createdAt: number, freshUntil: number): Answer => {
    const now = clockNow()
    // A plain object (a null-prototype one is a dictionary: slower to fill and for every adapter
    // to walk); `__proto__` is the one name it cannot hold, and no HTTP client needs it.
    const headers: Record<string, string | string[]> = {}
    let hasCacheControl = false
    const list = stored.headers
    for (let i = 0; i < list.length; i++) {
      const [k, v] = list[i]!
      if (k === '__proto__') continue
      if (k === 'cache-control') hasCacheControl = true
      const prev = headers[k]
      headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
    }
    headers.etag = stored.etag
    headers.age = String(Math.max(0, Math.floor((now - createdAt) / 1000)))
    headers['x-cache'] = state
    if (cacheControl && !hasCacheControl) headers['cache-control'] = `public, max-age=${Math.max(0, Math.floor((freshUntil - now) / 1000))}`
    if (varyHeader !== undefined && headers.vary === undefined) headers.vary = varyHeader
    let coding = 'identity'
    if (hasVariants(stored)) {
      headers.vary = withAcceptEncoding(headers.vary)
      coding = negotiate(ex.header('accept-encoding'), stored.bodies, encodings)
      if (coding !== 'identity') {
        headers.etag = stored.etag.slice(0, -1) + ETAG_SUFFIX[coding] + '"'
        headers['content-encoding'] = coding
      }
    }
    const inm = ex.header('if-none-match')
    if (matches(inm, headers.etag as string) || (coding !== 'identity' && matches(inm, stored.etag))) {
      // 304 keeps the validators and caching headers, drops the representation headers.
      delete headers['content-type']
      delete headers['content-encoding']
      delete headers['content-language']
      return { status: 304, headers }
    }
    return { status: stored.status, headers, body: bodyOf(stored, coding) }
  }

  /** The compressed variants worth storing, or undefined (produced off the event loop by zlib's pool). */
  const compressVariants = async (body: Uint8Array | string, rh: Exchange['responseHeaders']): Promise<Array<[string, Buffer]> | undefined> => {
    if (encodings.length === 0) return undefined
    const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength
    if (size < threshold || rh['content-encoding'] !== undefined) return undefined
    const type = rh['content-type']
    if (typeof type !== 'string' || !COMPRESSIBLE.test(type)) return undefined
    const cc = rh['cache-control']
    if (cc !== undefined && /no-transform/i.test(Array.isArray(cc) ? cc.join(',') : cc)) return undefined
    const input = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
    const out = await Promise.all(
      encodings.map((coding) =>
        (coding === 'br' ? brotliAsync(input, brotliOptions(size)) : gzipAsync(input)).then(
          (bytes): [string, Buffer] | undefined => (bytes.byteLength < size ? [coding, bytes] : undefined),
          () => undefined,
        ),
      ),
    )
    const kept = out.filter((v): v is [string, Buffer] => v !== undefined)
    return kept.length > 0 ? kept : undefined
  }

  const lookup = async (ex: Exchange, key: string): Promise<Answer | undefined> => {
    const entry = await cache.getEntry<StoredResponse>(key)
    const stored = entry?.value
    if (entry !== undefined && isStored(stored)) {
      if (entry.state === 'fresh') return answer(ex, stored, 'HIT', entry.createdAt, entry.freshUntil)
      if (refreshing.has(key)) return answer(ex, stored, 'STALE', entry.createdAt, entry.freshUntil)
      refreshing.add(key)
      ex.state[STATE] = { key, refreshing: true } satisfies PendingState
      return undefined
    }
    ex.state[STATE] = { key, refreshing: false } satisfies PendingState
    return undefined
  }
  const peekFresh = (cache as { [kPeekFresh]?: PeekFresh })[kPeekFresh]

  return {
    name,
    // Synchronous on a fresh L1 hit (no promise, so adapters answer in the same tick); the L2
    // lookup, stale handling and misses go through `getEntry`.
    onRequest(ex) {
      if (ex.method !== 'GET' && ex.method !== 'HEAD') return undefined
      const reqCc = ex.header('cache-control')
      if (reqCc !== undefined && /no-store/i.test(reqCc)) return undefined
      const key = keyFn ? keyFn(ex) : defaultKey(ex)
      if (key === undefined) return undefined
      const fresh = peekFresh?.<StoredResponse>(key)
      if (fresh === undefined) return lookup(ex, key)
      if (isStored(fresh.value)) return answer(ex, fresh.value, 'HIT', fresh.createdAt, fresh.freshUntil)
      ex.state[STATE] = { key, refreshing: false } satisfies PendingState
      return undefined
    },
    async onSend(ex, body) {
      const st = ex.state[STATE] as PendingState | undefined
      if (st === undefined) return undefined
      ex.setHeader('x-cache', 'MISS')
      try {
        if (ex.method !== 'GET' || !cacheable(ex.status)) return undefined
        const rh = ex.responseHeaders
        if (!allowSetCookie && rh['set-cookie'] !== undefined) return undefined
        const cc = rh['cache-control']
        if (cc !== undefined && NO_STORE.test(Array.isArray(cc) ? cc.join(',') : cc)) return undefined
        const isText = typeof body === 'string'
        const etag = `"${createHash('sha1').update(body).digest('base64url')}"`
        const headers: Array<[string, string]> = []
        for (const k in rh) {
          if (UNSAFE_HEADERS.has(k)) continue
          const v = rh[k]!
          if (Array.isArray(v)) for (const x of v) headers.push([k, String(x)])
          else headers.push([k, String(v)])
        }
        const bodies: Record<string, { d: string; b: boolean }> = {
          identity: isText ? { d: body, b: false } : { d: Buffer.from(body).toString('base64'), b: true },
        }
        const variants = await compressVariants(body, rh)
        if (variants) for (const [coding, bytes] of variants) bodies[coding] = { d: bytes.toString('base64'), b: true }
        const stored: StoredResponse = { v: 1, status: ex.status, headers, etag, bodies }
        const o = setOptions(ex)
        await cache.set(st.key, stored, o)
        ex.setHeader('etag', etag)
        if (cacheControl && cc === undefined) {
          const seconds = Math.floor((o.ttl ?? cache.ttl) / 1000)
          ex.setHeader('cache-control', `public, max-age=${seconds}`)
        }
        if (varyHeader !== undefined && rh.vary === undefined) ex.setHeader('vary', varyHeader)
        if (variants) ex.setHeader('vary', withAcceptEncoding(rh.vary ?? varyHeader))
        return undefined
      } finally {
        if (st.refreshing) refreshing.delete(st.key)
      }
    },
    onResponse(ex) {
      const st = ex.state[STATE] as PendingState | undefined
      if (st?.refreshing) refreshing.delete(st.key)
    },
  }
}

const hasVariants = (stored: StoredResponse): boolean => {
  for (const k in stored.bodies) if (k !== 'identity') return true
  return false
}

function withAcceptEncoding(vary: string | string[] | undefined): string {
  const v = Array.isArray(vary) ? vary.join(', ') : vary
  if (v === undefined || v === '') return 'accept-encoding'
  return /(?:^|,)\s*(?:accept-encoding|\*)\s*(?:,|$)/i.test(v) ? v : `${v}, accept-encoding`
}

/** The stored coding to send: the first of `preference` the client accepts (q > 0), else identity. */
function negotiate(header: string | undefined, bodies: StoredResponse['bodies'], preference: ReadonlyArray<string>): string {
  if (header === undefined || header === '') return 'identity'
  let star: number | undefined
  const q: Record<string, number> = Object.create(null)
  for (const part of header.split(',')) {
    const [rawCoding, ...params] = part.split(';')
    const coding = rawCoding!.trim().toLowerCase()
    if (coding === '') continue
    let value = 1
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)
      if (m) value = Number(m[1])
    }
    if (!Number.isFinite(value)) continue
    if (coding === '*') star = value
    else q[coding] = value
  }
  for (const coding of preference) {
    if (bodies[coding] === undefined) continue
    const accepted = q[coding] ?? star ?? 0
    if (accepted > 0) return coding
  }
  return 'identity'
}

// Decoded bodies per stored object: an L1 hit returns the same object, so base64 is decoded once.
const decoded = new WeakMap<StoredResponse, Record<string, Buffer>>()

function bodyOf(stored: StoredResponse, coding: string): string | Uint8Array {
  const body = stored.bodies[coding]
  if (body === undefined) return ''
  if (!body.b) return body.d
  let cache = decoded.get(stored)
  if (!cache) {
    cache = Object.create(null) as Record<string, Buffer>
    decoded.set(stored, cache)
  }
  return (cache[coding] ??= Buffer.from(body.d, 'base64'))
}

function isStored(value: unknown): value is StoredResponse {
  return (
    typeof value === 'object' && value !== null && (value as StoredResponse).v === 1 && typeof (value as StoredResponse).etag === 'string' &&
    Array.isArray((value as StoredResponse).headers) && typeof (value as StoredResponse).bodies === 'object'
  )
}

/** `If-None-Match` uses the weak comparison (RFC 9110 13.1.2). */
function matches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  const target = etag.startsWith('W/') ? etag.slice(2) : etag
  for (const part of header.split(',')) {
    const t = part.trim()
    if (t === '*') return true
    if ((t.startsWith('W/') ? t.slice(2) : t) === target) return true
  }
  return false
}
