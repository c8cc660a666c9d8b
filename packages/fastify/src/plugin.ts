import {
  type Answer,
  beginSend,
  createOptionsChecker,
  createRiPipeline,
  endSend,
  type Exchange,
  type Feature,
  type FeatureSet,
  featureSet,
  type MaybePromise,
  type Pipeline,
  peerAddress,
  type ResponseHeaders,
  type RiOptions,
} from '@ri/core'
import { addRouteHeaders, bindResponse, captureBody } from '@ri/core/node'
import type { FastifyPluginCallback, FastifyReply, FastifyRequest, onSendHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { compileRoute, kRoute, type RiDeps, type RouteCompiled } from './features.js'

/**
 * Options of `riPlugin`: every `RiOptions` of @ri/core, or a pipeline built elsewhere.
 *
 * @example
 * const options: RiFastifyOptions = { throttle, health, trustProxy: 'loopback' }
 * await app.register(riPlugin, options)
 */
export interface RiFastifyOptions extends RiOptions {
  /** Use a pipeline built elsewhere (shared between servers, or by @ri/nest) instead of building one. */
  pipeline?: Pipeline
  /**
   * Features whose `onRequest` runs before the global ones, for per-route exceptions decided from
   * the route template (@ri/nest's `@SkipThrottle()` map). A route's `config.throttle: false`
   * uses the same slot. Default none.
   */
  before?: readonly Feature[]
}

interface RouteUnit {
  readonly set: FeatureSet
  readonly pipeline: Pipeline
}

/**
 * Per-request state of the plugin (read the exchange with `getExchange(request)`).
 *
 * @example
 * const ex = getExchange(request) // RiRequestState['exchange']
 */
export interface RiRequestState {
  readonly pipeline: Pipeline
  readonly exchange: Exchange
  /** Route-level feature sets, from the route config and from integrations (`applyFeatures`). */
  route: RouteUnit[] | undefined
  /** An early answer was sent: onSend features must not treat it as a handler response. */
  answered: boolean
}

export const kRi: unique symbol = Symbol.for('@ri/fastify.state') as never

type WithRi = { [kRi]?: RiRequestState | null }

/**
 * The exchange the plugin created for this request (undefined when the plugin is not registered).
 *
 * @example
 * app.get('/me', async (req) => ({ requestId: getExchange(req)?.requestId }))
 */
export function getExchange(request: FastifyRequest): Exchange | undefined {
  return (request as unknown as WithRi)[kRi]?.exchange
}

// Fastify keeps a request's route context, whose `config` is the route's, under an own symbol
// property ('fastify.context'). Its public `request.routeOptions` getter builds a new object of
// eleven fields per call (and asks the router about version constraints), several hundred
// instructions per request; the symbol is found on the first request and read directly after.
let kContext: symbol | null | undefined

/** @internal The route's config (`request.routeOptions.config`) without building `routeOptions`. */
export function routeConfigOf(request: FastifyRequest): FastifyRequest['routeOptions']['config'] | undefined {
  if (kContext === undefined) kContext = Object.getOwnPropertySymbols(request).find((s) => s.description === 'fastify.context') ?? null
  if (kContext !== null) {
    const context = (request as unknown as Record<symbol, { config?: FastifyRequest['routeOptions']['config'] } | undefined>)[kContext]
    if (context !== undefined && context !== null && typeof context === 'object') return context.config
  }
  return request.routeOptions.config
}

/** @internal Whether `routeConfigOf()` reads the route context directly (false: through `routeOptions`). */
export const readsRouteContext = (): boolean => typeof kContext === 'symbol'

const isPromise = <T>(v: MaybePromise<T>): v is Promise<T> => typeof (v as Promise<T> | undefined)?.then === 'function'

/** The state as the plugin keeps it. */
interface OwnState extends RiRequestState {
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  /** ri's onSend hook runs for this request (global onSend features, or a route whose config has some). */
  readonly sendHook: boolean
}

// Headers and the finish come from the raw response, as in core's node binding (bindResponse):
// features' headers join the record Fastify hands to writeHead(), and the finish is reported from
// 'close' (it follows 'finish', and is the only event of an aborted response). So a request whose
// features have no onSend runs no onSend hook of ri's (Fastify skips its hook runner when a route
// has none), and no onResponse hook either (once one is registered, Fastify sets up its response
// listeners and runs the hook list for every request, and 'close' already sees every request).

function attach(st: OwnState, set: FeatureSet): RouteUnit {
  const unit: RouteUnit = { set, pipeline: set.pipelineFor(st.pipeline.logger) }
  ;(st.route ??= []).push(unit)
  set.observeFinish(st.exchange, st.pipeline.logger)
  const raw = st.reply.raw
  // Route-level onHeaders run before the global ones, in the order their units were attached;
  // a unit added after the head went out has nothing to add to it.
  if (set.hasHeaders) addRouteHeaders(raw, unit.pipeline)
  // A unit with onSend features on a route without ri's onSend hook (attached at request time by
  // an integration, applyFeatures()): its body is captured on the raw response, as core's binding
  // does. No global onSend runs for such a route, so the innermost-first order holds.
  if (set.hasSend && !st.sendHook) {
    const ex = st.exchange
    captureBody(st.request.raw, raw, ex, (body) => unit.pipeline.send(ex, body), () => st.answered)
  }
  return unit
}

/**
 * Low-level: applies route-level features to a request the plugin is handling and returns their
 * early answer (not sent). For integrations with their own per-route unit, such as @ri/nest's
 * interceptor; apps use `withFeatures()` in the route config.
 *
 * @example
 * const answer = await applyFeatures(request, [myFeature])
 * if (answer) return sendAnswer(request, reply, answer)
 */
export function applyFeatures(request: FastifyRequest, features: readonly Feature[]): MaybePromise<Answer | undefined> {
  const st = (request as unknown as WithRi)[kRi] as OwnState | null | undefined
  if (!st) return undefined
  return attach(st, featureSet(features)).pipeline.request(st.exchange)
}

/**
 * Sends an early answer through Fastify (its onSend hooks still apply the features' headers; onSend
 * features do not see it as a handler response).
 *
 * @example
 * const answer = await applyFeatures(request, [myFeature])
 * if (answer) return sendAnswer(request, reply, answer)
 */
export function sendAnswer(request: FastifyRequest, reply: FastifyReply, answer: Answer): void {
  const st = (request as unknown as WithRi)[kRi]
  if (st) st.answered = true
  reply.code(answer.status)
  if (answer.headers) reply.headers(answer.headers as Record<string, string | string[]>)
  reply.send(answer.body ?? '')
}

function buildPipeline(options: RiFastifyOptions): { pipeline: Pipeline; before: readonly Feature[]; deps: RiDeps } {
  const check = createOptionsChecker('riPlugin')
  const { pipeline: given, before = [], ...riOptions } = options
  if (!Array.isArray(before)) check.problem('before', before, 'an array of features')
  // fastify passes its own plugin options through; drop the ones it adds
  for (const k of ['prefix', 'logLevel', 'logSerializers'] as const) delete (riOptions as Record<string, unknown>)[k]
  if (given !== undefined) {
    if (typeof given?.request !== 'function' || typeof given?.exchange !== 'function') check.problem('pipeline', given, 'a pipeline from createRiPipeline()')
    const extra = Object.keys(riOptions)
    if (extra.length > 0) check.problem(extra[0]!, '(set)', 'nothing else when "pipeline" is given')
  }
  check.done()
  if (before.length > 0) featureSet(before) // validates the features now
  const deps: RiDeps = Object.freeze({ cache: riOptions.cache as RiDeps['cache'], throttle: riOptions.throttle as RiDeps['throttle'] })
  return { pipeline: given ?? createRiPipeline(riOptions), before, deps }
}

interface Attachable {
  attach?(server: unknown): () => void
}

const plugin: FastifyPluginCallback<RiFastifyOptions> = (fastify, options, done) => {
  let built: ReturnType<typeof buildPipeline>
  try {
    built = buildPipeline(options)
  } catch (error) {
    done(error as Error)
    return
  }
  const { pipeline, before, deps } = built
  const globalSend = pipeline.features.some((f) => f.onSend)
  const beforeSet = before.length > 0 ? featureSet(before) : undefined

  fastify.decorateRequest(kRi as unknown as string, null)

  const riOnSend: onSendHookHandler = function riOnSend(request, reply, payload, next) {
    const st = (request as unknown as WithRi)[kRi]
    if (
      !st ||
      st.answered ||
      !(typeof payload === 'string' || payload instanceof Uint8Array) ||
      !(globalSend || (st.route !== undefined && st.route.some((u) => u.set.hasSend)))
    ) {
      return next(null, payload)
    }
    const ex = st.exchange
    const original = payload as string | Uint8Array
    // onSend contract (core): features see the handler's status and headers; what they change wins.
    const current = reply.getHeaders()
    const handlerHeaders: ResponseHeaders = Object.create(null)
    for (const name in current) {
      const v = current[name]
      if (v !== undefined) handlerHeaders[name] = typeof v === 'number' ? String(v) : v
    }
    const snapshot = beginSend(ex, reply.statusCode, handlerHeaders)
    const finish = (out: string | Uint8Array) => {
      const changed = endSend(ex, snapshot)
      if (changed) {
        for (const name in changed) {
          reply.removeHeader(name) // reply.header() appends Set-Cookie: replace instead
          reply.header(name, changed[name])
        }
      }
      if (out !== original) reply.removeHeader('content-length')
      next(null, out)
    }
    // innermost first: route-level onSend, then the global ones
    const steps: Pipeline[] = []
    if (st.route) for (const u of st.route) if (u.set.hasSend) steps.push(u.pipeline)
    if (globalSend) steps.push(pipeline)
    let body: MaybePromise<string | Uint8Array> = original
    for (const p of steps) body = isPromise(body) ? body.then((b) => p.send(ex, b)) : p.send(ex, body)
    if (isPromise(body)) body.then(finish, () => finish(original))
    else finish(body)
  }

  // Route config (`cache`, `throttle`, `slowMs`, `withFeatures()`) is compiled once per route, here.
  // ri's onSend hook goes on every route when a global feature has onSend, else only on the routes
  // whose config has onSend features.
  fastify.addHook('onRoute', (routeOptions) => {
    const config = (routeOptions.config ?? {}) as Record<string | symbol, unknown>
    const compiled = compileRoute(config, deps, before)
    if (compiled) routeOptions.config = { ...config, [kRoute]: compiled } as typeof routeOptions.config
    if (!globalSend && compiled?.set?.hasSend) {
      const hooks = routeOptions.onSend === undefined ? [] : Array.isArray(routeOptions.onSend) ? routeOptions.onSend : [routeOptions.onSend]
      // First, where a global hook would run: before the route's own onSend hooks, and before the
      // one Fastify puts on a HEAD route copied from its GET (hooks included), which drops the body.
      routeOptions.onSend = [riOnSend, ...hooks.filter((h) => h !== riOnSend)]
    }
  })
  if (globalSend) fastify.addHook('onSend', riOnSend)

  const health = options.pipeline === undefined ? (options.health as Attachable | undefined) : undefined
  if (typeof health?.attach === 'function') {
    const detach = health.attach(fastify.server)
    fastify.addHook('onClose', (_instance, closed) => {
      detach()
      closed()
    })
  }

  fastify.addHook('onRequest', function riOnRequest(request, reply, next) {
    const raw = request.raw
    const config = routeConfigOf(request)
    const ex = pipeline.exchange({
      method: raw.method ?? 'GET',
      url: raw.url,
      route: config?.url,
      headers: raw.headers,
      remoteAddress: peerAddress(raw.socket),
    })
    const compiled = (config as { [kRoute]?: RouteCompiled } | undefined)?.[kRoute]
    const st: OwnState = { pipeline, exchange: ex, route: undefined, answered: false, request, reply, sendHook: globalSend || compiled?.set?.hasSend === true }
    ;(request as unknown as WithRi)[kRi] = st
    bindResponse(pipeline, ex, reply.raw)
    const unit = compiled?.set ? attach(st, compiled.set) : undefined
    const early = compiled ? compiled.early : beforeSet
    // The common case (no route unit, no early features, synchronous global hooks) allocates no closure.
    if (unit === undefined && early === undefined) {
      const result = pipeline.request(ex)
      if (result === undefined) return next()
      if (!isPromise(result)) return sendAnswer(request, reply, result)
      result.then(
        (a) => (a ? sendAnswer(request, reply, a) : next()),
        (error: unknown) => next(error as Error),
      )
      return
    }

    const answer = (a: Answer | undefined): void => {
      if (!a) return next()
      sendAnswer(request, reply, a)
    }
    const routeStep = (): void => {
      if (!unit) return next()
      const r = unit.pipeline.request(ex)
      if (isPromise(r)) r.then(answer, next)
      else answer(r)
    }
    const globalStep = (): void => {
      const result = pipeline.request(ex)
      if (result === undefined) return routeStep()
      if (isPromise(result)) {
        result.then((a) => (a ? answer(a) : routeStep()), next)
        return
      }
      answer(result)
    }
    if (!early) return globalStep()
    const first = early.pipelineFor(pipeline.logger).request(ex)
    if (first === undefined) return globalStep()
    if (isPromise(first)) first.then((a) => (a ? answer(a) : globalStep()), next)
    else answer(first)
  })

  done()
}

/**
 * The Fastify plugin (wrapped with fastify-plugin, so its hooks apply to every route): ri's
 * features run in an `onRequest` hook, their headers join the head as the raw response writes it,
 * the finish is reported from its `close`, and an `onSend` hook runs where features have onSend;
 * per-route features come from the route's `config` (`cache`, `throttle`, `slowMs`, `withFeatures()`).
 *
 * @example
 * import Fastify from 'fastify'
 * import { riPlugin } from '@ri/fastify'
 * const app = Fastify()
 * await app.register(riPlugin, { metrics, health, slowlog, throttle })
 * app.get('/users/:id', async (req) => ({ id: (req.params as { id: string }).id }))
 */
export const riPlugin = fp(plugin, { fastify: '5.x', name: '@ri/fastify' })
