import type { HeaderValue } from './ip.js'
import { Timings } from './server-timing.js'

/** How a request ended. */
export interface FinishInfo {
  readonly status: number
  /** High-resolution duration in milliseconds (sub-millisecond precision). */
  readonly durationMs: number
  /** The client went away before the response was complete. */
  readonly aborted: boolean
  readonly requestBytes?: number
  readonly responseBytes?: number
}

/** An early answer from a feature (429, a cached 200/304, a health probe ...). */
export interface Answer {
  readonly status: number
  readonly headers?: Readonly<Record<string, string | readonly string[]>>
  readonly body?: string | Uint8Array
}

export type ResponseHeaders = Record<string, string | string[]>

/**
 * Objects for per-request maps: no inherited properties (like `Object.create(null)`), but V8
 * keeps them in fast mode, where `Object.create(null)` starts as a dictionary (about 3x slower to
 * fill and walk with `for...in` for the few keys a request has).
 */
/** @internal */
export const Bag = function Bag() {} as unknown as new () => Record<string, never>
Bag.prototype = Object.create(null)

/**
 * How an exchange works out a value the first time it is read (its client address, its request
 * id): one function per pipeline, called with the exchange. Most requests never read them.
 */
export type ExchangeResolver = (ex: Exchange) => string

/** What an adapter knows about the incoming request. */
export interface ExchangeInit {
  readonly method: string
  /** Raw request target (path and query). Used when `path` is not given. */
  readonly url?: string
  readonly path?: string
  /** Query string without the `?`. */
  readonly query?: string
  /** Route template (`/users/:id`) when the framework already knows it. */
  readonly route?: string
  /** Lower-case header names, as Node delivers them. */
  readonly headers: Readonly<Record<string, HeaderValue>>
  readonly remoteAddress?: string
}

/**
 * One HTTP request/response, independent of the framework. Features read the request side,
 * write response headers, keep per-request state and subscribe to the finish.
 */
export class Exchange {
  readonly method: string
  /** Route template from the framework's router, never the raw path; undefined if unmatched. */
  route: string | undefined
  readonly path: string
  readonly query: string
  readonly headers: Readonly<Record<string, HeaderValue>>
  /** The socket's peer address, before any proxy header was considered. */
  readonly remoteAddress: string | undefined
  // The values, or the per-pipeline functions that work them out on first read.
  private ipOf: string | ExchangeResolver
  private idOf: string | ExchangeResolver
  /** `performance.now()` when the exchange was created. */
  readonly startedAt: number
  // Created on first use: most requests never mark a phase.
  private timingsStore: Timings | undefined
  /** Per-request state of features, keyed by feature name. */
  readonly state: Record<string, unknown> = new Bag()
  /** Headers features want on the response; the adapter applies them. */
  readonly responseHeaders: ResponseHeaders = new Bag()
  status = 200
  finished = false
  private finishListeners: Array<(info: FinishInfo) => void> | undefined

  /** `ip` and `requestId` are the values, or functions that work them out when first read. */
  constructor(init: ExchangeInit, ip: string | ExchangeResolver, requestId: string | ExchangeResolver, startedAt = performance.now()) {
    this.method = normalizeMethod(init.method)
    this.route = init.route
    if (init.path !== undefined) {
      this.path = init.path
      this.query = init.query ?? ''
    } else {
      const url = init.url ?? '/'
      const q = url.indexOf('?')
      this.path = q === -1 ? url : url.slice(0, q)
      this.query = q === -1 ? '' : url.slice(q + 1)
    }
    this.headers = init.headers
    this.remoteAddress = init.remoteAddress
    this.ipOf = ip
    this.idOf = requestId
    this.startedAt = startedAt
  }

  /** Client address as resolved through `trustProxy`. */
  get ip(): string {
    const ip = this.ipOf
    return typeof ip === 'string' ? ip : (this.ipOf = ip(this))
  }

  /**
   * The inbound request id when the request carried a safe one, else a generated one. Made on
   * first read and fixed from then on.
   */
  get requestId(): string {
    const id = this.idOf
    return typeof id === 'string' ? id : (this.idOf = id(this))
  }

  /** Phase timings marked during the request (cache, db, handler ...), for Server-Timing and the slow log. */
  get timings(): Timings {
    return (this.timingsStore ??= new Timings())
  }

  /** First value of a request header (names are lower-case). */
  header(name: string): string | undefined {
    const v = this.headers[name]
    return v === undefined ? undefined : typeof v === 'string' ? v : v[0]
  }

  /** Sets a response header (the adapter applies it before the response is written). */
  setHeader(name: string, value: string | string[]): void {
    this.responseHeaders[name.toLowerCase()] = value
  }

  /** Milliseconds since the exchange started. */
  elapsed(): number {
    return performance.now() - this.startedAt
  }

  /** Runs `listener` once the response is finished (or the client aborted). */
  onFinish(listener: (info: FinishInfo) => void): void {
    ;(this.finishListeners ??= []).push(listener)
  }

  /** @internal Called once by the pipeline. */
  runFinishListeners(info: FinishInfo, onError: (error: unknown) => void): void {
    const list = this.finishListeners
    if (!list) return
    this.finishListeners = undefined
    for (const l of list) {
      try {
        l(info)
      } catch (error) {
        onError(error)
      }
    }
  }
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY'])

/** Upper-cases standard methods; anything else becomes `_OTHER` (bounded label cardinality). */
export function normalizeMethod(method: string): string {
  if (method === 'GET' || KNOWN_METHODS.has(method)) return method
  const upper = method.toUpperCase()
  return KNOWN_METHODS.has(upper) ? upper : '_OTHER'
}
