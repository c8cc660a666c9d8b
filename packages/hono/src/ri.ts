import {
  beginSend,
  endSend,
  type FeatureSet,
  featureSet,
  type Answer,
  createOptionsChecker,
  createRiPipeline,
  type EmitFn,
  forwardEmit,
  type Exchange,
  type Feature,
  type HeaderValue,
  joinFeatureHead,
  type MaybePromise,
  type Pipeline,
  peerAddress,
  type ResponseHeaders,
  type RiOptions,
} from '@ri/core'
import type { Cache } from '@ri/cache'
import type { Throttle } from '@ri/throttle'
import type { Context, MiddlewareHandler, Next } from 'hono'

/**
 * Options of `ri()`: every `RiOptions` of @ri/core plus the Hono-only ones.
 *
 * @example
 * import { getConnInfo } from 'hono/bun'
 * const options: RiHonoOptions = { throttle, getRemoteAddress: (c) => getConnInfo(c).remote.address }
 */
export interface RiHonoOptions extends RiOptions {
  /** Use a pipeline built elsewhere (shared between apps) instead of building one from these options. */
  pipeline?: Pipeline
  /**
   * The client's socket address off Node (Bun, Deno, workers: pass your runtime's `getConnInfo`).
   * Default: `c.env.incoming.socket.remoteAddress` (@hono/node-server), else none.
   */
  getRemoteAddress?: (c: Context) => string | undefined
  /**
   * Features whose `onRequest` runs before the global ones (per-route exceptions decided from the
   * route template). Route-level `skipThrottle()` uses the same slot. Default none.
   */
  before?: readonly Feature[]
}

/**
 * What route helpers resolve from `ri()`: the cache `cached()` stores in, the throttle
 * `throttled()` shares. One frozen object per `ri()` instance.
 *
 * @example
 * const deps: RiDeps = { cache, throttle }
 */
export interface RiDeps {
  readonly cache?: Cache
  readonly throttle?: Throttle
}

/** Marks route middleware whose features run before the global ones (found in `c.req.matchedRoutes`). */
export const kEarly: unique symbol = Symbol.for('@ri/hono.early') as never

interface RouteUnit {
  readonly set: FeatureSet
  readonly pipeline: Pipeline
}

/**
 * Per-request state `ri()` keeps in the context (`c.get('ri')`).
 *
 * @example
 * const state = c.get('ri') as RiState | undefined
 */
export interface RiState {
  readonly pipeline: Pipeline
  readonly exchange: Exchange
  route: RouteUnit[] | undefined
  readonly deps: RiDeps
  /** An early answer was returned: onSend features must not treat it as a handler response. */
  answered: boolean
}

/**
 * The Hono `Env` fragment `ri()` adds: `c.get('ri')`.
 *
 * @example
 * const app = new Hono<RiEnv>()
 * app.get('/', (c) => c.text(c.get('ri')?.exchange.requestId ?? ''))
 */
export type RiEnv = { Variables: { ri?: RiState } }

/**
 * What `ri()` returns: a Hono middleware that also exposes its pipeline.
 *
 * @example
 * const middleware: RiMiddleware = ri()
 * middleware.pipeline.events.on('http.request', (e) => console.log(e.route, e.status))
 */
export type RiMiddleware = MiddlewareHandler & { readonly pipeline: Pipeline }

/** The parts of @hono/node-server's `c.env` used here, duck-typed: no node import on other runtimes. */
interface NodeBindings {
  readonly incoming?: { readonly headers?: Record<string, HeaderValue>; readonly socket?: { readonly remoteAddress?: string } }
  readonly outgoing?: Outgoing
}

interface Outgoing {
  readonly statusCode: number
  readonly writableFinished: boolean
  emit(event: string | symbol, ...args: unknown[]): boolean
  writeHead(...args: unknown[]): unknown
  hasHeader(name: string): boolean
  setHeader(name: string, value: string | string[]): unknown
  getHeader(name: string): unknown
}


const isPromise = <T>(v: MaybePromise<T>): v is Promise<T> => typeof (v as Promise<T> | undefined)?.then === 'function'
const NULL_BODY = new Set([101, 103, 204, 205, 304])

/**
 * The matched handler's template. Inside a global middleware `c.req.routePath` is the
 * middleware's own path, so the first matched route that is a handler (arity < 2, as hono/dev's
 * route inspection tells them apart) wins; undefined when only middleware matched (404).
 *
 * @example
 * app.use(async (c, next) => { console.log(routeOf(c)); await next() }) // '/users/:id'
 */
export function routeOf(c: Context): string | undefined {
  const routes = c.req.matchedRoutes
  let fallback: string | undefined
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i]!
    if (r.handler.length < 2) return r.path
    if (fallback === undefined && r.method !== 'ALL') fallback = r.path
  }
  return fallback
}

/**
 * Features to run before the global ones: `before` plus the early features of the matched route
 * middleware (`skipThrottle()`), compiled once per distinct combination.
 */
function earlyResolver(before: readonly Feature[]): (c: Context) => FeatureSet | undefined {
  const beforeSet = before.length > 0 ? featureSet(before) : undefined
  const perHandler = new WeakMap<object, FeatureSet>()
  return (c) => {
    const routes = c.req.matchedRoutes
    for (let i = 0; i < routes.length; i++) {
      const f = (routes[i]!.handler as { [kEarly]?: readonly Feature[] })[kEarly]
      if (f) {
        let set = perHandler.get(f)
        if (!set) {
          set = featureSet(Object.freeze([...before, ...f]))
          perHandler.set(f, set)
        }
        return set
      }
    }
    return beforeSet
  }
}

function headersOf(c: Context, env: NodeBindings | undefined): Record<string, HeaderValue> {
  const node = env?.incoming?.headers
  if (node) return node
  const out: Record<string, HeaderValue> = Object.create(null)
  c.req.raw.headers.forEach((value, name) => {
    out[name] = value
  })
  return out
}

function splitUrl(url: string): { path: string; query: string } {
  const scheme = url.indexOf('://')
  let start = scheme === -1 ? 0 : url.indexOf('/', scheme + 3)
  if (start === -1) start = url.length
  const q = url.indexOf('?', start)
  return q === -1 ? { path: url.slice(start) || '/', query: '' } : { path: url.slice(start, q) || '/', query: url.slice(q + 1) }
}

/** @internal A Response for an early answer. */
export function answerResponse(answer: Answer): Response {
  const body = NULL_BODY.has(answer.status) ? null : (answer.body ?? null)
  const from = answer.headers
  // A plain record when every value is a single string: @hono/node-server writes it straight to
  // writeHead (a Headers object it must iterate and rebuild, a large share of a cached hit). A
  // fresh copy each time: the server adds Content-Length to the record it is given, and an
  // answer's headers may be shared (a cached response's).
  let record: Record<string, string> | undefined = {}
  if (from) {
    for (const name in from) {
      const v = from[name]!
      if (typeof v !== 'string') {
        record = undefined
        break
      }
      record[name] = v
    }
  }
  if (record !== undefined) return new Response(body, { status: answer.status, headers: record })
  const headers = new Headers()
  for (const name in from) {
    const v = from[name]!
    if (typeof v === 'string') headers.set(name, v)
    else for (const item of v) headers.append(name, item)
  }
  return new Response(body, { status: answer.status, headers })
}

/** Handler headers win; Set-Cookie from features adds to the handler's. */
function setAll(headers: Headers, from: Record<string, string | string[]>): void {
  for (const name in from) {
    if (name !== 'set-cookie' && headers.has(name)) continue
    const v = from[name]!
    if (name === 'set-cookie') {
      for (const item of typeof v === 'string' ? [v] : v) headers.append(name, item)
      continue
    }
    if (typeof v === 'string') headers.set(name, v)
    else for (const item of v) headers.append(name, item)
  }
}

function runOnHeaders(st: RiState): void {
  if (st.route) for (const u of st.route) if (u.set.hasHeaders) u.pipeline.headers(st.exchange)
  st.pipeline.headers(st.exchange)
}

const kOut = Symbol('@ri/hono.outgoing')
type BoundOutgoing = Outgoing & { [kOut]?: { readonly st: RiState; readonly writeHead: Outgoing['writeHead']; readonly emit: Outgoing['emit'] } }

// Shared by every response (the state lives on the Node response): no closure per request.
// writeHead(status, [reason], [headers]) takes its arguments by name: no rest array or `apply`.
function riWriteHead(this: BoundOutgoing, status: unknown, reason?: unknown, headers?: unknown): unknown {
  const b = this[kOut]!
  this.writeHead = b.writeHead
  runOnHeaders(b.st)
  // node-server hands the Response's headers to writeHead as a record: ri's join it there.
  const features = b.st.exchange.responseHeaders
  return typeof reason === 'string'
    ? b.writeHead.call(this, status, reason, joinFeatureHead(this, headers, features))
    : b.writeHead.call(this, status, joinFeatureHead(this, reason, features))
}

// The finish comes through the response's own emit ('close' follows 'finish' on a completed
// response and is the only event of an aborted one): no listener per response, whose call at
// emit time would go through Reflect.apply.
function emitOutgoing(this: BoundOutgoing, event: string | symbol): boolean {
  const b = this[kOut]!
  if (event === 'close') b.st.pipeline.finish(b.st.exchange, { status: this.statusCode, aborted: !this.writableFinished })
  return forwardEmit(b.emit as EmitFn, this, arguments)
}

/**
 * On @hono/node-server: onHeaders and ri's headers join the Node response's head right before it
 * is written, so `c.res` is never touched and node-server keeps its fast response path.
 */
function bindOutgoing(st: RiState, out: Outgoing): void {
  const o = out as BoundOutgoing
  o[kOut] = { st, writeHead: out.writeHead, emit: out.emit }
  o.writeHead = riWriteHead
  ;(o as { emit: Outgoing['emit'] }).emit = emitOutgoing
}

/** Off Node: runs onHeaders (route-level first) and applies the exchange's headers to `c.res`. */
function applyHeaders(c: Context, st: RiState): void {
  const ex = st.exchange
  runOnHeaders(st)
  try {
    setAll(c.res.headers, ex.responseHeaders)
  } catch {
    // immutable headers (Response.redirect, a fetch() response): copy the response once
    c.res = new Response(c.res.body, c.res)
    setAll(c.res.headers, ex.responseHeaders)
  }
}

/** @internal Buffers `c.res`, runs `send`, and replaces the response when the body changed. */
export async function captureBody(c: Context, ex: Exchange, send: (ex: Exchange, body: Uint8Array) => MaybePromise<Uint8Array | string>): Promise<void> {
  const res = c.res
  if (res.body === null || NULL_BODY.has(res.status)) return
  const bytes = new Uint8Array(await res.arrayBuffer())
  // onSend contract (core): features see the handler's status and headers; what they change wins.
  const handlerHeaders: ResponseHeaders = Object.create(null)
  res.headers.forEach((value, name) => {
    if (name !== 'set-cookie') handlerHeaders[name] = value
  })
  const cookies = res.headers.getSetCookie()
  if (cookies.length > 0) handlerHeaders['set-cookie'] = cookies
  const snapshot = beginSend(ex, res.status, handlerHeaders)
  let out: Uint8Array | string = bytes
  try {
    out = await send(ex, bytes)
  } catch {
    out = bytes
  }
  const changed = endSend(ex, snapshot)
  const headers = new Headers(res.headers)
  if (changed) {
    for (const name in changed) {
      const v = changed[name]!
      headers.delete(name)
      if (typeof v === 'string') headers.set(name, v)
      else for (const item of v) headers.append(name, item)
    }
  }
  if (out !== bytes) headers.delete('content-length')
  // Reset first: Hono's `c.res` setter would merge the old headers (a stale content-length) in.
  c.res = undefined as unknown as Response
  c.res = new Response(out, { status: res.status, statusText: res.statusText, headers })
}

/** @internal Attaches a route-level feature set to the request. */
export function attach(st: RiState, set: FeatureSet): RouteUnit {
  const unit: RouteUnit = { set, pipeline: set.pipelineFor(st.pipeline.logger) }
  ;(st.route ??= []).push(unit)
  set.observeFinish(st.exchange, st.pipeline.logger)
  return unit
}

/**
 * The exchange `ri()` created for this request, or undefined when `ri()` is not installed.
 *
 * @example
 * app.get('/me', (c) => c.json({ requestId: getExchange(c)?.requestId }))
 */
export function getExchange(c: Context): Exchange | undefined {
  return (c.get('ri') as RiState | undefined)?.exchange
}

/**
 * One middleware wires ri's global features (metrics, health, slow log, db scope, throttle and
 * your own): `app.use(ri({...}))` before your routes. No Node-only import: on @hono/node-server
 * it reads the socket and the response's finish; elsewhere it finishes when the response is ready.
 *
 * @example
 * import { Hono } from 'hono'
 * import { serve } from '@hono/node-server'
 * import { ri } from '@ri/hono'
 * const app = new Hono()
 * app.use(ri({ metrics, health, slowlog, throttle }))
 * app.get('/users/:id', (c) => c.json({ id: c.req.param('id') }))
 * serve({ fetch: app.fetch, port: 3000 })
 */
export function ri(options: RiHonoOptions = {}): RiMiddleware {
  const check = createOptionsChecker('ri')
  const { pipeline: given, getRemoteAddress, before = [], ...riOptions } = options
  if (!Array.isArray(before)) check.problem('before', before, 'an array of features')
  if (getRemoteAddress !== undefined && typeof getRemoteAddress !== 'function') check.problem('getRemoteAddress', getRemoteAddress, 'a function (c) => string | undefined')
  if (given !== undefined) {
    if (typeof given?.request !== 'function' || typeof given?.exchange !== 'function') check.problem('pipeline', given, 'a pipeline from createRiPipeline()')
    const extra = Object.keys(riOptions)
    if (extra.length > 0) check.problem(extra[0]!, '(set)', 'nothing else besides pipeline, getRemoteAddress when "pipeline" is given')
  }
  check.done()
  if (before.length > 0) featureSet(before) // validates the features now
  const pipeline = given ?? createRiPipeline(riOptions)
  const deps: RiDeps = Object.freeze({ cache: riOptions.cache as RiDeps['cache'], throttle: riOptions.throttle as RiDeps['throttle'] })
  const earlyFor = earlyResolver(before)
  const health = given === undefined ? (riOptions.health as { attach?(server: unknown): () => void } | undefined) : undefined
  const attached = typeof health?.attach === 'function' ? new WeakSet<object>() : undefined
  const globalSend = pipeline.features.some((f) => f.onSend)
  const globalSendFn = (ex: Exchange, body: Uint8Array) => pipeline.send(ex, body)

  const middleware = function riMiddleware(c: Context, next: Next): Promise<Response | void> {
    const env = c.env as NodeBindings | undefined
    const { path, query } = splitUrl(c.req.url)
    const ex = pipeline.exchange({
      method: c.req.method,
      path,
      query,
      route: routeOf(c),
      headers: headersOf(c, env),
      remoteAddress: getRemoteAddress ? getRemoteAddress(c) : peerAddress(env?.incoming?.socket),
    })
    const st: RiState = { pipeline, exchange: ex, route: undefined, answered: false, deps }
    c.set('ri', st)
    const out = env?.outgoing
    const node = out !== undefined && typeof out.writeHead === 'function' && typeof out.emit === 'function'
    if (node) bindOutgoing(st, out)
    if (attached) {
      // health.attach() on the Node server the first request arrives on (@hono/node-server)
      const server = (env?.incoming?.socket as { server?: object } | undefined)?.server
      if (server && !attached.has(server)) {
        attached.add(server)
        health!.attach!(server)
      }
    }
    const early = earlyFor(c)
    if (early) {
      const first = early.pipelineFor(pipeline.logger).request(ex)
      if (isPromise(first)) return first.then<Response | void>((a) => (a ? respond(c, st, node, a) : global(c, next, st, node)))
      if (first) return Promise.resolve(respond(c, st, node, first))
    }
    return global(c, next, st, node)
  }
  /** The global onRequest hooks, then the early answer or the handler. */
  const global = (c: Context, next: Next, st: RiState, node: boolean): Promise<Response | void> => {
    const result = pipeline.request(st.exchange)
    if (isPromise(result)) return result.then<Response | void>((a) => (a ? respond(c, st, node, a) : handle(c, next, st, node)))
    return result ? Promise.resolve(respond(c, st, node, result)) : handle(c, next, st, node)
  }
  const respond = (c: Context, st: RiState, node: boolean, answer: Answer): Response => {
    st.answered = true
    c.res = answerResponse(answer)
    if (!node) {
      applyHeaders(c, st)
      pipeline.finish(st.exchange, { status: answer.status })
    }
    return c.res
  }
  // On Node without a global onSend the headers and the finish come from the Node response: the
  // handler's promise is handed back as is, without an async frame of ri's around it.
  const handle = (c: Context, next: Next, st: RiState, node: boolean): Promise<void> => (node && !globalSend ? next() : after(c, next, st, node))
  const after = async (c: Context, next: Next, st: RiState, node: boolean): Promise<void> => {
    await next()
    const ex = st.exchange
    if (globalSend && !st.answered) await captureBody(c, ex, globalSendFn)
    if (!node) {
      applyHeaders(c, st)
      pipeline.finish(ex, { status: c.res.status })
    }
  }
  return Object.assign(middleware, { pipeline }) as RiMiddleware
}

/**
 * Turns any core `Feature` into Hono route-level middleware: its hooks run on the exchange `ri()`
 * created, after the global features. `cached()` and `throttled()` are built on it.
 *
 * @example
 * const poweredBy: Feature = { name: 'powered-by', onHeaders: (ex) => ex.setHeader('x-powered-by', 'ri') }
 * app.get('/users/:id', withFeatures(poweredBy), (c) => c.json({ id: c.req.param('id') }))
 */
export function withFeatures(...features: Feature[]): MiddlewareHandler & { readonly features: readonly Feature[] } {
  const list = Object.freeze([...features])
  const set = featureSet(list)
  const sendFn = (unit: RouteUnit) => (ex: Exchange, body: Uint8Array) => unit.pipeline.send(ex, body)
  const mw = async function riRouteFeatures(c: Context, next: Next): Promise<Response | void> {
    const st = c.get('ri') as RiState | undefined
    if (!st) return next()
    const ex = st.exchange
    if (ex.route === undefined) ex.route = c.req.routePath
    const unit = attach(st, set)
    const result = unit.pipeline.request(ex)
    const answer = isPromise(result) ? await result : result
    if (answer) {
      st.answered = true
      return answerResponse(answer)
    }
    await next()
    if (set.hasSend && !st.answered) await captureBody(c, ex, sendFn(unit))
  }
  return Object.assign(mw, { features: list })
}
