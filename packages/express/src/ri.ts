import type { IncomingMessage, ServerResponse } from 'node:http'
import { type Answer, createOptionsChecker, createRiPipeline, type Pipeline, type RiOptions } from '@ri/core'
import { bindResponse, writeAnswer } from '@ri/core/node'
import compression, { type CompressionOptions } from 'compression'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { captureBody } from './body.js'
import { kRi, type RiContext, type WithRi } from './context.js'
import { createRouteResolver, joinRoute } from './route.js'

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

const EXPRESS_ONLY = ['compression', 'pipeline'] as const

function build(options: RiExpressOptions): { pipeline: Pipeline; compress: RequestHandler | undefined } {
  const check = createOptionsChecker('ri')
  const { compression: compressionOption = DEFAULTS.compression, pipeline: given, ...riOptions } = options
  if (typeof compressionOption !== 'boolean' && (typeof compressionOption !== 'object' || compressionOption === null)) {
    check.problem('compression', compressionOption, 'true, false or compression options')
  }
  if (given !== undefined) {
    if (typeof given?.request !== 'function' || typeof given?.exchange !== 'function') check.problem('pipeline', given, 'a pipeline from createRiPipeline()')
    const extra = Object.keys(riOptions)
    if (extra.length > 0) check.problem(extra[0]!, '(set)', `nothing else besides ${EXPRESS_ONLY.join(', ')} when "pipeline" is given`)
  }
  check.done()
  const pipeline = given ?? createRiPipeline(riOptions)
  const compress = compressionOption === false ? undefined : (compression(compressionOption === true ? {} : compressionOption) as unknown as RequestHandler)
  return { pipeline, compress }
}

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
  const { pipeline, compress } = build(options)
  const resolve = createRouteResolver()
  const globalSend = pipeline.features.some((f) => f.onSend)

  function proceed(req: IncomingMessage, res: ServerResponse, next: NextFunction, ctx: RiContext): void {
    if (globalSend) captureBody(req, res, ctx.exchange, (body) => pipeline.send(ctx.exchange, body), () => ctx.answered)
    if (compress) compress(req as Request, res as Response, next)
    else next()
  }

  const middleware = function riMiddleware(req: Request, res: Response, next: NextFunction): void {
    let url = req.originalUrl ?? req.url ?? '/'
    if (url.charCodeAt(0) !== 47 /* '/' */) url = originForm(url)
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const method = req.method
    const ex = pipeline.exchange({
      method,
      path,
      query: q === -1 ? '' : url.slice(q + 1),
      route: resolve(req.app, method, path),
      headers: req.headers,
      remoteAddress: req.socket.remoteAddress,
    })
    const ctx: RiContext = { pipeline, exchange: ex, answered: false }
    ;(req as WithRi)[kRi] = ctx
    if (ex.route === undefined) {
      // Fallback for what the layer walk cannot see (mounted sub-apps): Express knows by the end.
      const fill = () => {
        if (ex.route === undefined && req.route) ex.route = joinRoute(req.baseUrl ?? '', String(req.route.path))
      }
      res.once('finish', fill)
      res.once('close', fill)
    }
    bindResponse(pipeline, ex, res)
    const answer = (a: Answer | undefined) => {
      if (!a) return proceed(req, res, next, ctx)
      ctx.answered = true
      writeAnswer(res, a, method === 'HEAD')
    }
    const result = pipeline.request(ex)
    if (result === undefined) proceed(req, res, next, ctx)
    else if (typeof (result as Promise<Answer | undefined>).then === 'function') (result as Promise<Answer | undefined>).then(answer, next)
    else answer(result as Answer)
  }
  return Object.assign(middleware, { pipeline }) as RiMiddleware
}
