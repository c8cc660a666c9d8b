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
  type ResponseHeaders,
  type RiOptions,
} from '@ri/core'
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
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
  /** onHeaders ran and ri's headers are on the reply. */
  headersDone: boolean
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

const isPromise = <T>(v: MaybePromise<T>): v is Promise<T> => typeof (v as Promise<T> | undefined)?.then === 'function'

// The state also sits on the raw response, so one shared 'close' listener serves every request.
const kRiRaw = Symbol('@ri/fastify.raw-state')
/** The state as the plugin keeps it: plus the reply, whose headers the raw response does not hold. */
interface OwnState extends RiRequestState {
  readonly reply: FastifyReply
}
type RawWithRi = FastifyReply['raw'] & { [kRiRaw]?: OwnState }

// The finish is reported from the raw response's 'close' (it follows 'finish', and is the only
// event of an aborted response), as in the node binding. Not from an onResponse hook as well:
// once one is registered, Fastify sets up its response listeners and runs the hook list for every
// request, and 'close' already sees every request that hook would.
function finishOnClose(this: RawWithRi): void {
  const st = this[kRiRaw]
  if (st === undefined) return
  // Fastify hands its headers to writeHead() as a record, of which node keeps no getHeader() copy.
  const length = Number(st.reply.getHeader('content-length'))
  st.pipeline.finish(st.exchange, { status: this.statusCode, aborted: !this.writableFinished, responseBytes: Number.isFinite(length) ? length : undefined })
}

function attach(st: RiRequestState, set: FeatureSet): RouteUnit {
  const unit: RouteUnit = { set, pipeline: set.pipelineFor(st.pipeline.logger) }
  ;(st.route ??= []).push(unit)
  set.observeFinish(st.exchange, st.pipeline.logger)
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
  const st = (request as unknown as WithRi)[kRi]
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

  // Route config (`cache`, `throttle`, `slowMs`, `withFeatures()`) is compiled once per route, here.
  fastify.addHook('onRoute', (routeOptions) => {
    const config = (routeOptions.config ?? {}) as Record<string | symbol, unknown>
    const compiled = compileRoute(config, deps, before)
    if (compiled) routeOptions.config = { ...config, [kRoute]: compiled } as typeof routeOptions.config
  })

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
    const { config } = request.routeOptions
    const ex = pipeline.exchange({
      method: raw.method ?? 'GET',
      url: raw.url,
      route: config?.url,
      headers: raw.headers,
      remoteAddress: raw.socket.remoteAddress,
    })
    const st: OwnState = { pipeline, exchange: ex, route: undefined, answered: false, headersDone: false, reply }
    ;(request as unknown as WithRi)[kRi] = st
    const res = reply.raw as RawWithRi
    res[kRiRaw] = st
    res.on('close', finishOnClose)
    const compiled = (config as { [kRoute]?: RouteCompiled } | undefined)?.[kRoute]
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

  const applyHeaders = (st: RiRequestState, reply: FastifyReply) => {
    // onSend runs again when an error replaces a payload: headers (and Set-Cookie) go on once
    if (st.headersDone) return
    st.headersDone = true
    const ex = st.exchange
    if (st.route) for (const u of st.route) if (u.set.hasHeaders) u.pipeline.headers(ex)
    pipeline.headers(ex)
    const headers = ex.responseHeaders
    // handler headers win; Set-Cookie from features adds to the handler's (reply.header appends it)
    for (const name in headers) if (name === 'set-cookie' || !reply.hasHeader(name)) reply.header(name, headers[name])
  }

  fastify.addHook('onSend', function riOnSend(request, reply, payload, next) {
    const st = (request as unknown as WithRi)[kRi]
    if (!st) return next(null, payload)
    const capture =
      !st.answered &&
      (typeof payload === 'string' || payload instanceof Uint8Array) &&
      (globalSend || (st.route !== undefined && st.route.some((u) => u.set.hasSend)))
    if (!capture) {
      applyHeaders(st, reply)
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
      applyHeaders(st, reply)
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
  })

  done()
}

/**
 * The Fastify plugin (wrapped with fastify-plugin, so its hooks apply to every route): global ri
 * features run in `onRequest`/`onSend` hooks (the finish is reported from the raw response's `close`); per-route features come from the
 * route's `config` (`withFeatures()`, and later `cache`, `throttle`, `slowMs`).
 *
 * @example
 * import Fastify from 'fastify'
 * import { riPlugin } from '@ri/fastify'
 * const app = Fastify()
 * await app.register(riPlugin, { metrics, health, slowlog, throttle })
 * app.get('/users/:id', async (req) => ({ id: (req.params as { id: string }).id }))
 */
export const riPlugin = fp(plugin, { fastify: '5.x', name: '@ri/fastify' })
