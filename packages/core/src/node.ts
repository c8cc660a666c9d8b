import { type IncomingMessage, type OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Answer, Exchange, ResponseHeaders } from './exchange.js'
import { beginSend, endSend } from './send-contract.js'
import type { Pipeline } from './pipeline.js'
import { createRouter } from './router.js'
import { adoptWriteHeadArgs } from './node-capture.js'
import { peerAddress } from './ip.js'
import { findHeader, isHeaderRecord, joinFeatureHead, sameHeaderName } from './head.js'
import { type EmitFn, forwardEmit } from './emit.js'

export { applyFeatureHeaders } from './head.js'

/** What a plain node:http route handler receives besides `req`/`res`. */
export interface NodeContext {
  readonly exchange: Exchange
  readonly params: Record<string, string>
  /** Sends a complete body through the pipeline's `onSend` features (response cache ...). */
  send(status: number, body: string | Uint8Array, headers?: Record<string, string>): Promise<void>
  /** `send` with JSON. */
  json(status: number, value: unknown, headers?: Record<string, string>): Promise<void>
}

export type NodeHandler = (req: IncomingMessage, res: ServerResponse, ctx: NodeContext) => void | Promise<void>

export interface NodeRoute {
  readonly method: string
  /** Route template: `/users/:id`, `/files/*`. */
  readonly path: string
  readonly handler: NodeHandler
}

/**
 * The plain node:http binding of a pipeline: matches a route table, runs the features and the
 * handler, and applies their headers. It is also the reference for what a framework adapter does.
 *
 * @example
 * const pipeline = createPipeline([feature])
 * http.createServer(createNodeHandler(pipeline, [
 *   { method: 'GET', path: '/users/:id', handler: (req, res, ctx) => ctx.json(200, { id: ctx.params.id }) },
 * ])).listen(3000)
 */
export function createNodeHandler(pipeline: Pipeline, routes: readonly NodeRoute[]): (req: IncomingMessage, res: ServerResponse) => void {
  const router = createRouter<NodeHandler>()
  for (const r of routes) router.add(r.method, r.path, r.handler)
  const hasSend = pipeline.features.some((f) => f.onSend)
  const notFound: NodeHandler = (_req, _res, ctx) => ctx.json(404, { error: 'Not Found' })

  return (req, res) => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const match = router.match(req.method ?? 'GET', path)
    const ex = pipeline.exchange({
      method: req.method ?? 'GET',
      path,
      query: q === -1 ? '' : url.slice(q + 1),
      route: match?.route,
      headers: req.headers,
      remoteAddress: peerAddress(req.socket),
    })
    bindResponse(pipeline, ex, res)
    const ctx = new Context(pipeline, ex, req, res, match?.params ?? EMPTY_PARAMS, hasSend, match?.value ?? notFound)
    // Stays synchronous while features answer synchronously: no promise or closure per request on that path.
    try {
      const answer = pipeline.request(ex)
      if (answer instanceof Promise) answer.then((a) => ctx.proceed(a)).catch((error: unknown) => ctx.fail(error))
      else ctx.proceed(answer) // a handler that throws synchronously lands in the catch below
    } catch (error) {
      ctx.fail(error)
    }
  }
}

const RESOLVED = Promise.resolve()
const EMPTY_PARAMS: Record<string, string> = Object.freeze(Object.create(null))
const JSON_TYPE = 'application/json; charset=utf-8'

class Context implements NodeContext {
  constructor(
    private readonly pipeline: Pipeline,
    readonly exchange: Exchange,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    readonly params: Record<string, string>,
    private readonly hasSend: boolean,
    private readonly handler: NodeHandler,
  ) {}

  /** @internal Writes the features' early answer, or runs the handler. */
  proceed(answer: Answer | undefined): void {
    if (answer) return writeAnswer(this.res, answer, this.req.method === 'HEAD')
    const result: unknown = this.handler(this.req, this.res, this)
    // Only a promise is awaited: `return res.end(...)` hands back the response, not a failure.
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      ;(result as PromiseLike<unknown>).then(undefined, (error: unknown) => this.fail(error))
    }
  }

  /** @internal */
  fail(error: unknown): void {
    failed(this.pipeline, this.exchange, this.res, error)
  }

  send(status: number, body: string | Uint8Array, headers?: Record<string, string>): Promise<void> {
    return this.sendWith(status, body, undefined, headers)
  }

  json(status: number, value: unknown, headers?: Record<string, string>): Promise<void> {
    return this.sendWith(status, JSON.stringify(value), JSON_TYPE, headers)
  }

  /** `send` with a default Content-Type (`type`) that the handler's `headers` may override. */
  private sendWith(status: number, body: string | Uint8Array, type: string | undefined, headers: Record<string, string> | undefined): Promise<void> {
    const res = this.res
    if (!this.hasSend && !res.headersSent) {
      // The whole head in one writeHead(status, [name, value, ...]): the features' headers join
      // the list (see writeHeadWith) and Node writes it in one pass, without a setHeader per
      // header or a walk over an object's keys.
      const head: unknown[] = []
      let length: number | undefined
      let typed = type === undefined
      if (headers) {
        for (const k in headers) {
          head.push(k, headers[k])
          if (length === undefined && sameHeaderName(k, 'content-length')) length = Number(headers[k]) || 0
          if (!typed && sameHeaderName(k, 'content-type')) typed = true
        }
      }
      if (!typed) head.push('content-type', type)
      const b = boundOf(res)
      if (b !== undefined && length === undefined && this.req.method !== 'HEAD' && !res.hasHeader('content-length')) {
        // Node adds the Content-Length of a body given to end() itself, unvalidated (it made the
        // value): the head goes out from end(), whose writeHead(status) picks this list up.
        b.own = head
        b.length = Buffer.byteLength(body)
        res.statusCode = status
        res.end(body)
        return RESOLVED
      }
      if (length === undefined && !res.hasHeader('content-length')) head.push('content-length', (length = Buffer.byteLength(body)))
      if (b !== undefined) {
        b.own = head
        b.length = length
      }
      res.writeHead(status, head as unknown as OutgoingHttpHeaders)
      res.end(this.req.method === 'HEAD' ? undefined : body)
      return RESOLVED
    }
    if (type !== undefined) headers = headers ? { 'content-type': type, ...headers } : { 'content-type': type }
    res.statusCode = status
    if (headers) for (const k in headers) res.setHeader(k, headers[k]!)
    if (!this.hasSend) {
      this.end(body)
      return RESOLVED
    }
    // onSend features see the handler's status and headers (the core send contract).
    const snapshot = beginSend(this.exchange, status, handlerHeadersOf(res))
    const flush = (out: string | Uint8Array) => {
      const changed = endSend(this.exchange, snapshot)
      if (changed) for (const name in changed) res.setHeader(name, changed[name]!)
      if (out !== body) res.removeHeader('content-length')
      this.end(out)
    }
    const out = this.pipeline.send(this.exchange, body)
    if (out instanceof Promise) return out.then(flush)
    flush(out)
    return RESOLVED
  }

  private end(body: string | Uint8Array): void {
    const res = this.res
    if (!res.headersSent && !res.hasHeader('content-length')) res.setHeader('content-length', Buffer.byteLength(body))
    res.end(this.req.method === 'HEAD' ? undefined : body)
  }
}

/** The headers a handler set on a node response, as the exchange's header map (numbers as strings). */
export function handlerHeadersOf(res: ServerResponse): ResponseHeaders {
  const headers = res.getHeaders()
  const out: ResponseHeaders = Object.create(null)
  for (const name in headers) {
    const v = headers[name]
    if (v !== undefined) out[name] = typeof v === 'number' ? String(v) : v
  }
  return out
}

function failed(pipeline: Pipeline, ex: Exchange, res: ServerResponse, error: unknown): void {
  pipeline.logger.error({ err: error, requestId: ex.requestId }, 'request handler failed')
  if (!res.headersSent) {
    res.statusCode = 500
    res.setHeader('content-type', 'application/json; charset=utf-8')
    res.end('{"error":"Internal Server Error"}')
  } else {
    res.destroy()
  }
}

interface Bound {
  readonly pipeline: Pipeline
  readonly ex: Exchange
  /** The writeHead that writes the head once ri's headers joined it. */
  readonly writeHead: ServerResponse['writeHead']
  /** Hooked through the response's prototype (see bindResponse): state in `protoBound`. */
  readonly viaProto: boolean
  /** The head went out (prototype hook: later calls go straight to `writeHead`). */
  written: boolean
  /** Content-Length given in writeHead's headers (Node keeps no getHeader() copy of those). */
  length: number | undefined
  /** The head list `Context.send` hands to writeHead: joined in place, never adopted. */
  own: unknown[] | undefined
  /** Route-level units whose onHeaders run before the global ones (see `addRouteHeaders`). */
  routes: Pipeline[] | undefined
  /** The status the head went out with (what `res.statusCode` reads then, without the read). */
  status: number | undefined
  /** The finish is seen through the prototype's `emit` hook (see `protoHooksOf`), not a listener. */
  viaEmit: boolean
  /** 'finish' was emitted: everything was handed to the socket (what `writableFinished` tells). */
  flushed: boolean
  /** The emit a plain response had when bound, which `emitPlain` calls on (see bindResponse). */
  emit: ServerResponse['emit'] | undefined
}
const newBound = (
  pipeline: Pipeline,
  ex: Exchange,
  writeHead: ServerResponse['writeHead'],
  viaProto: boolean,
  viaEmit = false,
  emit: ServerResponse['emit'] | undefined = undefined,
): Bound => ({
  pipeline,
  ex,
  writeHead,
  viaProto,
  written: false,
  length: undefined,
  own: undefined,
  routes: undefined,
  status: undefined,
  viaEmit,
  flushed: false,
  emit,
})
const kBound = Symbol('ri.bound')
type WithBound = ServerResponse & { [kBound]?: Bound }

// Responses whose prototype a framework swaps in per request (Express sets app.response as the
// prototype of every response): adding a property to one of those goes through V8's slow path
// on every request (a new hidden class each time, about 50,000 instructions per request for
// ri's two). Their state lives beside them, and writeHead and emit are hooked once on the
// prototype. Such a response also gets a new hidden class of its own, so every property V8 has
// not yet looked up on it (an `on`, a `writableFinished`) misses its inline caches: the emit hook
// sees 'finish' and 'close' without a listener, and the status comes from writeHead's argument.
const protoBound = new WeakMap<ServerResponse, Bound>()
type WriteHead = ServerResponse['writeHead']
type Emit = ServerResponse['emit']
interface ProtoHooks {
  readonly writeHead: PrototypeHook<WriteHead>
  readonly emit: PrototypeHook<Emit>
}
const protoHooks = new WeakMap<object, ProtoHooks>()
const PLAIN = ServerResponse.prototype

/** The ri state of a bound response. */
function boundOf(res: ServerResponse): Bound | undefined {
  return (res as WithBound)[kBound] ?? protoBound.get(res)
}

/** What `hookPrototypeMethod` installed: the hook (null when the prototype is frozen), and the method it shadows. */
export interface PrototypeHook<F> {
  readonly hook: F | null
  /** The method the hook shadows, looked up at call time (a later patch of the parent prototype's, such as an APM's, is honoured). */
  readonly parent: () => F
}

/**
 * Puts `make(parent)` on `proto` as its method `name`, shadowing the one it has (its own or an
 * inherited one). For state kept beside objects whose prototype a framework swaps per request
 * (Express's `app.response`): one hook on the prototype instead of a property on every object,
 * which would take V8's slow path each time. Call it once per prototype and keep the result.
 *
 * @example
 * const { hook, parent } = hookPrototypeMethod(proto, 'json', (parent) => function json(this: Response, v: unknown) {
 *   return mine.has(this) ? sendMine(this, v) : parent().call(this, v)
 * })
 */
export function hookPrototypeMethod<F extends (...args: never[]) => unknown>(proto: object, name: string, make: (parent: () => F) => F): PrototypeHook<F> {
  const shadowed = Object.getOwnPropertyDescriptor(proto, name)?.value as F | undefined
  const parent = shadowed !== undefined ? () => shadowed : () => (Object.getPrototypeOf(proto) as Record<string, F>)[name]!
  let hook: F | null = make(parent)
  try {
    Object.defineProperty(proto, name, { value: hook, writable: true, configurable: true, enumerable: false })
  } catch {
    hook = null // a frozen prototype
  }
  return { hook, parent }
}

/**
 * ri's writeHead and emit on a response prototype (installed once). writeHead joins ri's headers
 * for the responses bound through it; emit reports their finish ('finish', then 'close'; an
 * aborted response only emits 'close'). Every other call goes to the method each shadows.
 */
function protoHooksOf(proto: object): ProtoHooks {
  let known = protoHooks.get(proto)
  if (known === undefined) {
    const writeHead = hookPrototypeMethod<WriteHead>(
      proto,
      'writeHead',
      (parent) =>
        function riWriteHead(this: ServerResponse, status: unknown, reason?: unknown, headers?: unknown): ServerResponse {
          const b = protoBound.get(this)
          if (b === undefined || b.written) {
            const write = parent() as unknown as WriteHeadFn
            // As many arguments as given: a writeHead of someone else's may count them.
            return arguments.length <= 1 ? write.call(this, status) : arguments.length === 2 ? write.call(this, status, reason) : write.call(this, status, reason, headers)
          }
          return writeHeadWith(this, b, status, reason, headers)
        } as WriteHead,
    )
    const emit = hookPrototypeMethod<Emit>(
      proto,
      'emit',
      (parent) =>
        function riEmit(this: ServerResponse, event: string | symbol): boolean {
          if (event === 'finish' || event === 'close') {
            const b = protoBound.get(this)
            if (b !== undefined && b.viaEmit) {
              if (event === 'finish') b.flushed = true
              else b.pipeline.finish(b.ex, finishInfo(this, b))
            }
          }
          return forwardEmit(parent() as EmitFn, this, arguments)
        } as Emit,
    )
    known = { writeHead, emit }
    protoHooks.set(proto, known)
  }
  return known
}

type WriteHeadFn = (this: ServerResponse, status: unknown, reason?: unknown, headers?: unknown) => ServerResponse

/**
 * The head is being written: feature headers join the handler's, then the original writeHead
 * runs. Node's writeHead takes (status, [reason], [headers]); the three are passed on as named
 * arguments (no rest array or `apply` per response).
 */
function writeHeadWith(res: ServerResponse, b: Bound, status: unknown, reason: unknown, headers: unknown): ServerResponse {
  if (b.viaProto) b.written = true
  else res.writeHead = b.writeHead
  // end() wrote the head of a Context.send body: writeHead(status) gets the list send built.
  if (b.own !== undefined && reason === undefined && headers === undefined) reason = b.own
  const named = typeof reason === 'string'
  let head = named ? headers : reason
  // Raw [name, value ...] headers from other writers join the response first, so the handler-wins
  // / Set-Cookie-appends rules see them; a record, or the list Context.send built, keeps Node on
  // its one-pass head path.
  if (head !== undefined && head !== b.own && !isHeaderRecord(head)) {
    status = adoptWriteHeadArgs(res, named ? [status, reason, head] : [status, head])
    reason = head = undefined
  }
  b.own = undefined
  if (b.routes !== undefined) for (const p of b.routes) p.headers(b.ex)
  b.pipeline.headers(b.ex)
  if (isHeaderRecord(head)) b.length = Number(findHeader(head, 'content-length')) || undefined
  head = joinFeatureHead(res, head, b.ex.responseHeaders)
  const write = b.writeHead as unknown as WriteHeadFn
  const out = named ? write.call(res, status, reason, head) : head === undefined ? write.call(res, status) : write.call(res, status, head)
  // Node took it (it throws on a bad one) as `status | 0`, the statusCode the head carries.
  b.status = (status as number) | 0
  return out
}

// A Content-Length given to writeHead wins over one set with setHeader (Node writes the former).
const finishInfo = (res: ServerResponse, b: Bound) => ({
  status: b.status ?? res.statusCode,
  aborted: b.viaEmit ? !b.flushed : !res.writableFinished,
  responseBytes: b.length ?? (Number(res.getHeader('content-length')) || undefined),
})

// Shared by every response (the state lives on the response): binding allocates no closure.
function patchedWriteHead(this: WithBound, status: unknown, reason?: unknown, headers?: unknown): ServerResponse {
  return writeHeadWith(this, this[kBound]!, status, reason, headers)
}

// 'close' follows 'finish' on a completed response and is the only event of an aborted one.
// A plain response's finish comes through its own emit (shared by every response, its state in
// kBound): a 'close' listener per response would cost an EventEmitter entry and, at emit time, a
// listener call through Reflect.apply (about 700 instructions per request on node:http).
function emitPlain(this: WithBound, event: string | symbol): boolean {
  const b = this[kBound]!
  if (event === 'close') b.pipeline.finish(b.ex, finishInfo(this, b))
  return forwardEmit(b.emit as EmitFn, this, arguments)
}
function finishOnCloseProto(this: ServerResponse): void {
  const b = protoBound.get(this)
  if (b !== undefined) b.pipeline.finish(b.ex, finishInfo(this, b))
}

/** Applies feature headers right before the response head is written, and reports the finish. */
export function bindResponse(pipeline: Pipeline, ex: Exchange, res: ServerResponse): void {
  const proto = Object.getPrototypeOf(res) as object
  if (proto === PLAIN) {
    const r = res as WithBound
    if (r[kBound] === undefined) {
      r[kBound] = newBound(pipeline, ex, res.writeHead, false, false, res.emit)
      r.writeHead = patchedWriteHead as ServerResponse['writeHead']
      r.emit = emitPlain as ServerResponse['emit']
      return
    }
  } else if (proto !== null) {
    const hooks = protoHooksOf(proto)
    const { hook, parent } = hooks.writeHead
    // Unless something before ri put a writeHead of its own on this response (it would call the
    // one it found, which may predate the hook), or ri is bound to it already.
    if (hook !== null && res.writeHead === hook && !protoBound.has(res)) {
      const viaEmit = hooks.emit.hook !== null
      protoBound.set(res, newBound(pipeline, ex, parent(), true, viaEmit))
      if (!viaEmit) res.on('close', finishOnCloseProto)
      return
    }
  }
  // A second binding on the same response (two ri() layers), or a writeHead of someone else's:
  // this one keeps its state in closures.
  const b = newBound(pipeline, ex, res.writeHead, false)
  res.writeHead = function nestedWriteHead(this: ServerResponse, status: unknown, reason?: unknown, headers?: unknown) {
    return writeHeadWith(this, b, status, reason, headers)
  } as ServerResponse['writeHead']
  res.once('close', () => pipeline.finish(ex, finishInfo(res, b)))
}

/**
 * Runs a route-level unit's onHeaders when the head of a bound response is written, before the
 * global ones and after units added earlier. False when the response is not bound or its head
 * went out (the caller hooks writeHead itself then). Keeps the state in ri's binding: no property
 * is added to the response (on Express's, whose prototype is swapped per request, one would take
 * V8's slow path).
 */
export function addRouteHeaders(res: ServerResponse, unit: Pipeline): boolean {
  const b = boundOf(res)
  if (b === undefined || res.headersSent) return false
  ;(b.routes ??= []).push(unit)
  return true
}

/** Writes a feature's early answer. */
export function writeAnswer(res: ServerResponse, answer: Answer, head = false): void {
  res.statusCode = answer.status
  if (answer.headers) for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v as string | string[])
  if (answer.body !== undefined && !res.hasHeader('content-length')) res.setHeader('content-length', Buffer.byteLength(answer.body))
  res.end(head ? undefined : answer.body)
}

export { captureBody, adoptWriteHeadArgs } from './node-capture.js'
export {
  createNodeBinding,
  type NodeBindingOptions,
  type NodeRequestState,
  nodeStateOf,
  runNodeFeatures,
  applyNodeFeatures,
  sendNodeAnswer,
  markAnswered,
} from './node-binding.js'
export { compileJson, type JsonSchema, type JsonCompileOptions } from './json.js'
