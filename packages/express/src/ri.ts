import type { IncomingMessage, ServerResponse } from 'node:http'
import { type Answer, createOptionsChecker, createRiPipeline, type Feature, type FeatureSet, featureSet, type MaybePromise, type Pipeline, peerAddress, type RiOptions } from '@ri/core'
import { bindResponse, captureBody, writeAnswer } from '@ri/core/node'
import compression, { type CompressionOptions } from 'compression'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { type RiContext, type RiDeps, setContext } from './context.js'
import { kEarly } from './helpers.js'
import { createRouteResolver, joinRoute, type RouteLike } from './route.js'

/**
 * Options of `ri()`: every `RiOptions` of @ri/core plus the Express-only ones.
 *
 * @example
 * const options: RiExpressOptions = { throttle, health, trustProxy: 'loopback', compression: { threshold: 2048 } }
 * app.use(ri(options))
 */
export interface RiExpressOptions extends RiOptions {
  /**
   * Compress handler responses with the `compression` package (early answers such as cached
   * responses, 429s and probes are never compressed here: the cache stores its own variants).
   * `true` uses compression's defaults; an object is passed to it. Default `false`: most
   * deployments compress at the proxy or CDN, and compressing on the event loop costs CPU.
   */
  compression?: boolean | CompressionOptions
  /** Use a pipeline built elsewhere (shared between servers, or by @ri/nest) instead of building one from these options. */
  pipeline?: Pipeline
  /**
   * Features whose `onRequest` runs before the global ones, for per-route exceptions to global
   * features decided from the route template (@ri/nest's `@SkipThrottle()` map). Route-level
   * `skipThrottle()` uses the same slot. Default none.
   */
  before?: readonly Feature[]
}

/**
 * The middleware `ri()` returns; `pipeline` is the one it runs (events, logger, features).
 *
 * @example
 * const middleware: RiMiddleware = ri()
 * middleware.pipeline.events.on('http.request', (e) => console.log(e.route, e.status))
 */
export type RiMiddleware = RequestHandler & { readonly pipeline: Pipeline }

/**
 * Defaults of the Express-only options.
 *
 * @example
 * DEFAULTS.compression // false
 */
export const DEFAULTS = Object.freeze({ compression: false as boolean | CompressionOptions })

const EXPRESS_ONLY = ['compression', 'pipeline', 'before'] as const

interface Built {
  pipeline: Pipeline
  compress: RequestHandler | undefined
  before: readonly Feature[]
  deps: RiDeps
}

function build(options: RiExpressOptions): Built {
  const check = createOptionsChecker('ri')
  const { compression: compressionOption = DEFAULTS.compression, pipeline: given, before = [], ...riOptions } = options
  if (!Array.isArray(before)) check.problem('before', before, 'an array of features')
  if (typeof compressionOption !== 'boolean' && (typeof compressionOption !== 'object' || compressionOption === null)) {
    check.problem('compression', compressionOption, 'true, false or compression options')
  }
  if (given !== undefined) {
    if (typeof given?.request !== 'function' || typeof given?.exchange !== 'function') check.problem('pipeline', given, 'a pipeline from createRiPipeline()')
    const extra = Object.keys(riOptions)
    if (extra.length > 0) check.problem(extra[0]!, '(set)', `nothing else besides ${EXPRESS_ONLY.join(', ')} when "pipeline" is given`)
  }
  check.done()
  if (before.length > 0) featureSet(before) // validates the features now
  const pipeline = given ?? createRiPipeline(riOptions)
  const compress = compressionOption === false ? undefined : (compression(compressionOption === true ? {} : compressionOption) as unknown as RequestHandler)
  const deps: RiDeps = Object.freeze({ cache: riOptions.cache as RiDeps['cache'], throttle: riOptions.throttle as RiDeps['throttle'] })
  return { pipeline, compress, before, deps }
}

interface Attachable {
  attach?(server: unknown): () => void
}

/**
 * The features to run before the global ones for a route: `before` plus the route's own early
 * middleware (`skipThrottle()`), compiled once per route object.
 */
function earlyResolver(before: readonly Feature[]): (route: RouteLike | undefined) => FeatureSet | undefined {
  const beforeSet = before.length > 0 ? featureSet(before) : undefined
  const perRoute = new WeakMap<RouteLike, FeatureSet | null>()
  return (route) => {
    if (!route) return beforeSet
    let set = perRoute.get(route)
    if (set === undefined) {
      const early: Feature[] = [...before]
      const stack = Array.isArray(route.stack) ? (route.stack as Array<{ handle?: { [kEarly]?: readonly Feature[] } }>) : []
      for (const layer of stack) {
        const f = layer.handle?.[kEarly]
        if (f) early.push(...f)
      }
      set = early.length > 0 ? featureSet(Object.freeze(early)) : null
      perRoute.set(route, set)
    }
    return set ?? undefined
  }
}

const isPromise = <T>(v: MaybePromise<T>): v is Promise<T> => typeof (v as Promise<T> | undefined)?.then === 'function'

/** An absolute-form request target (`GET http://host/path`) as Express routes it: path and query. */
function originForm(url: string): string {
  try {
    const u = new URL(url)
    return u.pathname + u.search
  } catch {
    return url
  }
}

/**
 * One middleware wires ri's global features (metrics, health, slow log, db scope, throttle and
 * your own): `app.use(ri({...}))` before your routes. Works on Express 5 and 4.
 *
 * @example
 * import express from 'express'
 * import { ri } from '@ri/express'
 * const app = express()
 * app.use(ri({ metrics, health, slowlog, throttle, trustProxy: 'loopback' }))
 * app.get('/users/:id', (req, res) => res.json({ id: req.params.id }))
 */
export function ri(options: RiExpressOptions = {}): RiMiddleware {
  const { pipeline, compress, before, deps } = build(options)
  const resolve = createRouteResolver()
  const earlyFor = earlyResolver(before)
  const globalSend = pipeline.features.some((f) => f.onSend)
  // health.attach() on the server the first request arrives on (ri() never sees app.listen()).
  const health = options.pipeline === undefined ? (options.health as Attachable | undefined) : undefined
  const attached = typeof health?.attach === 'function' ? new WeakSet<object>() : undefined

  function proceed(req: IncomingMessage, res: ServerResponse, next: NextFunction, ctx: RiContext): void {
    if (globalSend) captureBody(req, res, ctx.exchange, (body) => pipeline.send(ctx.exchange, body), () => ctx.answered)
    if (compress) compress(req as Request, res as Response, next)
    else next()
  }

  function answer(req: IncomingMessage, res: ServerResponse, next: NextFunction, ctx: RiContext, a: Answer | undefined): void {
    if (!a) return proceed(req, res, next, ctx)
    ctx.answered = true
    writeAnswer(res, a, req.method === 'HEAD')
  }

  // The common case (no early features, synchronous global hooks) allocates no closure per request.
  function globalStep(req: IncomingMessage, res: ServerResponse, next: NextFunction, ctx: RiContext): void {
    const result = pipeline.request(ctx.exchange)
    if (result === undefined) proceed(req, res, next, ctx)
    else if (isPromise(result)) result.then((a) => answer(req, res, next, ctx, a), next)
    else answer(req, res, next, ctx, result)
  }

  const middleware = function riMiddleware(req: Request, res: Response, next: NextFunction): void {
    let url = req.originalUrl ?? req.url ?? '/'
    if (url.charCodeAt(0) !== 47 /* '/' */) url = originForm(url)
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const method = req.method
    const resolved = resolve(req.app, method, path)
    // One read of each: an Express request has a hidden class of its own (its prototype is set per
    // request), so every property read on it that V8 has not seen yet misses its inline cache.
    const socket = req.socket
    const ex = pipeline.exchange({
      method,
      path,
      query: q === -1 ? '' : url.slice(q + 1),
      route: resolved?.template,
      headers: req.headers,
      remoteAddress: peerAddress(socket),
    })
    if (attached) {
      const server = (socket as { server?: object }).server
      if (server && !attached.has(server)) {
        attached.add(server)
        health!.attach!(server)
      }
    }
    const ctx: RiContext = { pipeline, exchange: ex, answered: false, deps }
    setContext(req, ctx)
    if (ex.route === undefined) {
      // Fallback for what the layer walk cannot see (mounted sub-apps): Express knows by the end.
      const fill = () => {
        if (ex.route === undefined && req.route) ex.route = joinRoute(req.baseUrl ?? '', String(req.route.path))
      }
      res.once('finish', fill)
      res.once('close', fill)
    }
    bindResponse(pipeline, ex, res)
    const early = earlyFor(resolved?.route)
    if (!early) return globalStep(req, res, next, ctx)
    const first = early.pipelineFor(pipeline.logger).request(ex)
    if (first === undefined) return globalStep(req, res, next, ctx)
    if (isPromise(first)) first.then((a) => (a ? answer(req, res, next, ctx, a) : globalStep(req, res, next, ctx)), next)
    else answer(req, res, next, ctx, first)
  }
  return Object.assign(middleware, { pipeline }) as RiMiddleware
}
