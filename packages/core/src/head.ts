import type { ResponseHeaders } from './exchange.js'

/** What `mergeFeatureHeaders` reads of a response that may already carry headers (Node's `ServerResponse`, duck-typed). */
export interface HeaderHolder {
  /** The header's value, undefined when it is not set (presence is read through this alone). */
  getHeader(name: string): unknown
}

const toList = (v: unknown): string[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v.map(String) : [String(v)])

/**
 * The headers a handler passes to `writeHead(status, headers)` plus the features' (`ex.responseHeaders`),
 * in a new object, following the adapters' rules: the handler's values win (names compared
 * case-insensitively), then headers already set on the response, and Set-Cookie from features is
 * added to the handler's. Handing the result to the original `writeHead` keeps Node on its
 * one-pass head path (setting the features' headers with `setHeader` first would not).
 *
 * @example
 * args[1] = mergeFeatureHeaders(args[1], ex.responseHeaders, res) // then writeHead(...args)
 */
export function mergeFeatureHeaders(record: Readonly<Record<string, unknown>>, features: ResponseHeaders, res: HeaderHolder): Record<string, unknown> {
  const list = joinFeatureHeaderList(headerList(record), features, res)
  const merged: Record<string, unknown> = {}
  for (let i = 0; i < list.length; i += 2) merged[list[i] as string] = list[i + 1]
  return merged
}

/** A headers record's own entries as a flat `[name, value, ...]` list. */
function headerList(record: Readonly<Record<string, unknown>>): unknown[] {
  const list: unknown[] = []
  const keys = Object.keys(record)
  for (let i = 0; i < keys.length; i++) list.push(keys[i], record[keys[i]!])
  return list
}

/** The name under which `record` holds header `lowerName` (any case), or undefined. */
function findHeaderName(record: Readonly<Record<string, unknown>>, lowerName: string): string | undefined {
  for (const k in record) if (sameHeaderName(k, lowerName)) return k
  return undefined
}

/**
 * Applies feature headers to a response with `setHeader` (Node's `ServerResponse`, duck-typed):
 * the handler's own value wins for ordinary headers, but `set-cookie` is appended so a feature's
 * cookie (read-your-writes position, session) never replaces the handler's, nor the other way round.
 *
 * @example
 * applyFeatureHeaders(res, ex.responseHeaders) // right before the head is written
 */
export function applyFeatureHeaders(res: HeaderHolder & { setHeader(name: string, value: string | string[]): unknown }, headers: ResponseHeaders): void {
  for (const name in headers) {
    const value = headers[name]!
    // getHeader, not hasHeader: one method name fewer for V8 to look up on a response that has a
    // hidden class of its own (Express's), where the first lookup of each name misses its cache.
    if (res.getHeader(name) === undefined) res.setHeader(name, value)
    else if (name === 'set-cookie') res.setHeader(name, [...toList(res.getHeader(name)), ...toList(value)])
  }
}

/**
 * Joins the features' headers to a head about to be written with `writeHead(status, [reason],
 * [headers])`. A headers record is replaced in `args` by a flat `[name, value, ...]` list (Node's
 * array form, which it writes without walking an object's keys) holding the handler's headers
 * and the features'; the handler's record is returned. A flat list is joined in place. Without
 * either, the features' headers go onto the response with `setHeader`. The rules are
 * `mergeFeatureHeaders`' and `applyFeatureHeaders`'. One implementation for every adapter that
 * hooks `writeHead` (node:http binding, Hono on @hono/node-server).
 *
 * @example
 * joinFeatureHeaders(res, args, ex.responseHeaders) // then the original writeHead(...args)
 */
export function joinFeatureHeaders(
  res: HeaderHolder & { setHeader(name: string, value: string | string[]): unknown },
  args: unknown[],
  features: ResponseHeaders,
): Record<string, unknown> | undefined {
  const at = typeof args[1] === 'string' ? 2 : 1
  const head = args[at]
  const joined = joinFeatureHead(res, head, features)
  if (!isHeaderRecord(head)) return undefined // joined in place or set on the response: args unchanged
  args[at] = joined
  return head
}

/**
 * `joinFeatureHeaders` for one argument: what to pass to writeHead in place of its `head`
 * argument (a headers record, a flat list, or nothing). A record becomes a new flat list, a flat
 * list is joined in place, and without either the features' headers go onto the response with
 * `setHeader` (`head` is returned as is). Without feature headers, `head` is returned untouched.
 *
 * @example
 * return original.call(res, status, joinFeatureHead(res, headers, ex.responseHeaders))
 */
export function joinFeatureHead(res: HeaderHolder & { setHeader(name: string, value: string | string[]): unknown }, head: unknown, features: ResponseHeaders): unknown {
  // Most responses get no feature header: nothing to join, the head goes out as given.
  if (isEmpty(features)) return head
  if (isHeaderRecord(head)) return joinFeatureHeaderList(headerList(head), features, res)
  if (isFlatHeaderList(head)) joinFeatureHeaderList(head, features, res)
  else applyFeatureHeaders(res, features)
  return head
}

/**
 * Adds the features' headers to a flat `[name, value, ...]` head (changed in place and returned),
 * the one implementation of the adapters' rules: a name already in the list (any case) or set on
 * the response keeps its value, and a feature's Set-Cookie is added to the handler's (or to the
 * one set on the response).
 *
 * @example
 * res.writeHead(200, joinFeatureHeaderList(['content-type', 'text/plain'], ex.responseHeaders, res))
 */
export function joinFeatureHeaderList(list: unknown[], features: ResponseHeaders, res: HeaderHolder): unknown[] {
  for (const name in features) {
    let own = -1
    for (let i = 0; i < list.length; i += 2) {
      if (sameHeaderName(list[i] as string, name)) {
        own = i
        break
      }
    }
    if (name === 'set-cookie') {
      if (own !== -1) list[own + 1] = [...toList(list[own + 1]), ...toList(features[name])]
      else list.push(name, [...toList(res.getHeader(name)), ...toList(features[name])])
    } else if (own === -1 && res.getHeader(name) === undefined) list.push(name, features[name])
  }
  return list
}

function isEmpty(record: ResponseHeaders): boolean {
  for (const _ in record) return false
  return true
}

/** True for writeHead's flat `[name, value, ...]` form (not the `[[name, value], ...]` one). */
function isFlatHeaderList(value: unknown): value is unknown[] {
  return Array.isArray(value) && value.length % 2 === 0 && (value.length === 0 || typeof value[0] === 'string')
}

/** `name` equals the lower-case `lower` ignoring ASCII case, without allocating a lower-cased copy. */
export function sameHeaderName(name: string, lower: string): boolean {
  if (name === lower) return true
  const n = lower.length
  if (typeof name !== 'string' || name.length !== n) return false
  for (let i = 0; i < n; i++) {
    let c = name.charCodeAt(i)
    if (c >= 65 && c <= 90) c += 32
    if (c !== lower.charCodeAt(i)) return false
  }
  return true
}

/** The value of header `lowerName` in a record whose names may have any case, or undefined. */
export function findHeader(record: Readonly<Record<string, unknown>>, lowerName: string): unknown {
  const name = findHeaderName(record, lowerName)
  return name === undefined ? undefined : record[name]
}

/** True for the plain-object form of writeHead's headers (not the raw `[name, value, ...]` array). */
export function isHeaderRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
