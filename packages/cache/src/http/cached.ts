import { createHash } from 'node:crypto'
import { type Answer, createOptionsChecker, type Duration, type Exchange, type Feature } from '@ri/core'
import type { Cache } from '../cache/types.js'

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
}

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
  check.known(options, ['cache', 'ttl', 'tags', 'key', 'vary', 'statuses', 'allowSetCookie', 'cacheControl', 'name'])
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
    const now = Date.now()
    const headers: Record<string, string | string[]> = Object.create(null)
    let hasCacheControl = false
    for (const [k, v] of stored.headers) {
      if (k === 'cache-control') hasCacheControl = true
      const prev = headers[k]
      headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
    }
    headers.etag = stored.etag
    headers.age = String(Math.max(0, Math.floor((now - createdAt) / 1000)))
    headers['x-cache'] = state
    if (cacheControl && !hasCacheControl) headers['cache-control'] = `public, max-age=${Math.max(0, Math.floor((freshUntil - now) / 1000))}`
    if (varyHeader !== undefined && headers.vary === undefined) headers.vary = varyHeader
    if (matches(ex.header('if-none-match'), stored.etag)) {
      // 304 keeps the validators and caching headers, drops the representation headers.
      delete headers['content-type']
      delete headers['content-encoding']
      delete headers['content-language']
      return { status: 304, headers }
    }
    const body = stored.bodies.identity
    return { status: stored.status, headers, body: body === undefined ? '' : body.b ? Buffer.from(body.d, 'base64') : body.d }
  }

  return {
    name,
    async onRequest(ex) {
      if (ex.method !== 'GET' && ex.method !== 'HEAD') return undefined
      const reqCc = ex.header('cache-control')
      if (reqCc !== undefined && /no-store/i.test(reqCc)) return undefined
      const key = keyFn ? keyFn(ex) : defaultKey(ex)
      if (key === undefined) return undefined
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
        const stored: StoredResponse = {
          v: 1,
          status: ex.status,
          headers,
          etag,
          bodies: { identity: isText ? { d: body, b: false } : { d: Buffer.from(body).toString('base64'), b: true } },
        }
        const o = setOptions(ex)
        await cache.set(st.key, stored, o)
        ex.setHeader('etag', etag)
        if (cacheControl && cc === undefined) {
          const seconds = Math.floor((o.ttl ?? cache.ttl) / 1000)
          ex.setHeader('cache-control', `public, max-age=${seconds}`)
        }
        if (varyHeader !== undefined && rh.vary === undefined) ex.setHeader('vary', varyHeader)
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
