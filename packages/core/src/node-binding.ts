import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Answer, Exchange } from './exchange.js'
import type { Feature, MaybePromise, Pipeline } from './pipeline.js'
import { type FeatureSet, featureSet } from './route-features.js'
import { addRouteHeaders, bindResponse, writeAnswer } from './node.js'
import { captureBody } from './node-capture.js'
import { peerAddress } from './ip.js'

/**
 * What `createNodeBinding()` leaves on a node request, for route-level features applied later
 * (`applyNodeFeatures`) and early answers (`markAnswered`).
 *
 * @example
 * const ex = nodeStateOf(req)?.exchange
 */
export interface NodeRequestState {
  readonly pipeline: Pipeline
  readonly exchange: Exchange
  /** An early answer was written: onSend features must not store it as a handler response. */
  answered: boolean
}

// Beside the request, not on it: a property added to a request costs a hidden-class transition,
// which on Express (it swaps the prototype of every request) goes through V8's slow path each
// time. One map per process (Symbol.for), even if two copies of @ri/core end up in it.
const kStates: unique symbol = Symbol.for('@ri/core.node-states') as never
const states: WeakMap<object, NodeRequestState> = ((globalThis as { [kStates]?: WeakMap<object, NodeRequestState> })[kStates] ??= new WeakMap())

/**
 * The state `createNodeBinding()` left on this request, or undefined when it did not run.
 *
 * @example
 * app.get('/me', (req, res) => res.json({ requestId: nodeStateOf(req)?.exchange.requestId }))
 */
export function nodeStateOf(req: object): NodeRequestState | undefined {
  return states.get(req)
}

/**
 * Options of `createNodeBinding()`.
 *
 * @example
 * const options: NodeBindingOptions = { before: [skipFeature], route: (req) => router.match(req.method!, pathOf(req))?.route }
 */
export interface NodeBindingOptions {
  /** Features whose `onRequest` runs before the global ones (per-route exceptions such as skip-throttle). */
  readonly before?: readonly Feature[]
  /** The route template of a request, when the framework knows it before routing. */
  readonly route?: (req: IncomingMessage, path: string) => string | undefined
  /** Writes an early answer; default `writeAnswer` on the node response. */
  readonly answer?: (req: IncomingMessage, res: ServerResponse, answer: Answer) => void
}

/**
 * The node-level step of a pipeline, for frameworks whose request and response are node's own
 * objects or wrap them (Express, Nest on Express or Fastify, connect): creates the exchange,
 * applies feature headers when the head is written, reports the finish, buffers the body for
 * global onSend features, runs `before` then the global `onRequest` hooks, and either writes an
 * early answer or calls `next()`.
 *
 * @example
 * const bind = createNodeBinding(pipeline)
 * app.use((req, res, next) => bind(req, res, next))
 */
export function createNodeBinding(
  pipeline: Pipeline,
  options: NodeBindingOptions = {},
): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void {
  const beforeSet = options.before && options.before.length > 0 ? featureSet(options.before) : undefined
  const early = beforeSet?.pipelineFor(pipeline.logger)
  const globalSend = pipeline.features.some((f) => f.onSend)
  const routeOf = options.route
  const write = options.answer ?? ((req: IncomingMessage, res: ServerResponse, a: Answer) => writeAnswer(res, a, req.method === 'HEAD'))

  /** Buffers the body for global onSend features, then hands over to the framework. */
  const proceed = (req: IncomingMessage, res: ServerResponse, st: NodeRequestState, next: (error?: unknown) => void): void => {
    if (globalSend) captureBody(req, res, st.exchange, (body) => pipeline.send(st.exchange, body), () => st.answered)
    next()
  }
  const answer = (req: IncomingMessage, res: ServerResponse, st: NodeRequestState, next: (error?: unknown) => void, a: Answer | undefined): void => {
    if (!a) return proceed(req, res, st, next)
    st.answered = true
    write(req, res, a)
  }
  const globalStep = (req: IncomingMessage, res: ServerResponse, st: NodeRequestState, next: (error?: unknown) => void): void => {
    const result = pipeline.request(st.exchange)
    if (result === undefined) proceed(req, res, st, next)
    else if (isPromise(result)) result.then((a) => answer(req, res, st, next, a), next)
    else answer(req, res, st, next, result)
  }

  // The common case (no early features, synchronous global hooks) allocates no closure per request.
  return function riNodeBinding(req, res, next) {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const ex = pipeline.exchange({
      method: req.method ?? 'GET',
      path,
      query: q === -1 ? '' : url.slice(q + 1),
      route: routeOf?.(req, path),
      headers: req.headers,
      remoteAddress: peerAddress(req.socket),
    })
    const st: NodeRequestState = { pipeline, exchange: ex, answered: false }
    states.set(req, st)
    bindResponse(pipeline, ex, res)
    if (!early) return globalStep(req, res, st, next)
    const first = early.request(ex)
    if (first === undefined) return globalStep(req, res, st, next)
    if (isPromise(first)) first.then((a) => (a ? answer(req, res, st, next, a) : globalStep(req, res, st, next)), next)
    else answer(req, res, st, next, first)
  }
}

const isPromise = <T>(v: MaybePromise<T>): v is Promise<T> => typeof (v as Promise<T> | undefined)?.then === 'function'

/**
 * Wires a compiled route-level set into a live node request: onHeaders before the global ones,
 * onSend on the buffered body (innermost, so before the global onSend), onResponse on finish;
 * then runs its onRequest hooks and returns their early answer (not written).
 *
 * @example
 * const answer = await runNodeFeatures(set, state, req, res)
 */
export function runNodeFeatures(set: FeatureSet, st: NodeRequestState, req: IncomingMessage, res: ServerResponse): MaybePromise<Answer | undefined> {
  const ex = st.exchange
  const sub = set.pipelineFor(st.pipeline.logger)
  if (set.hasHeaders && !addRouteHeaders(res, sub)) {
    const prev = res.writeHead
    res.writeHead = function routeWriteHead(this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
      res.writeHead = prev
      sub.headers(ex)
      return prev.apply(this, args)
    } as ServerResponse['writeHead']
  }
  set.observeFinish(ex, st.pipeline.logger)
  const result = sub.request(ex)
  if (!set.hasSend) return result
  // The body is captured only for the handler's response: an early answer (a cached hit, a 429)
  // is written as is, without the capture's write/end wrappers. No closure on the sync path.
  if (!isPromise(result)) {
    if (!result) captureRouteBody(sub, st, req, res)
    return result
  }
  return result.then((answer) => {
    if (!answer) captureRouteBody(sub, st, req, res)
    return answer
  })
}

/** Buffers the handler's body for a route-level set's onSend features (innermost, before the global ones). */
function captureRouteBody(sub: Pipeline, st: NodeRequestState, req: IncomingMessage, res: ServerResponse): void {
  const ex = st.exchange
  captureBody(req, res, ex, (body) => sub.send(ex, body), () => st.answered)
}

/**
 * Applies route-level features to a request a node binding (`createNodeBinding()`, or an adapter
 * built on it) is handling, and returns their early answer (not written). Undefined when no
 * binding ran for this request.
 *
 * @example
 * const answer = await applyNodeFeatures(req, res, [myFeature])
 * if (answer) sendNodeAnswer(req, res, answer)
 */
export function applyNodeFeatures(req: IncomingMessage, res: ServerResponse, features: readonly Feature[]): MaybePromise<Answer | undefined> {
  const st = nodeStateOf(req)
  if (!st) return undefined
  return runNodeFeatures(featureSet(features), st, req, res)
}

/**
 * Writes an early answer on a node response (feature headers applied when the head goes out;
 * onSend features do not see it as a handler response).
 *
 * @example
 * if (answer) sendNodeAnswer(req, res, answer)
 */
export function sendNodeAnswer(req: IncomingMessage, res: ServerResponse, answer: Answer): void {
  markAnswered(req)
  writeAnswer(res, answer, req.method === 'HEAD')
}

/**
 * Marks a request's response as an early answer (onSend features then pass it through), for
 * integrations that write the answer through their framework instead of `sendNodeAnswer()`.
 *
 * @example
 * markAnswered(req); reply.send(answer.body)
 */
export function markAnswered(req: object): void {
  const st = nodeStateOf(req)
  if (st) st.answered = true
}
