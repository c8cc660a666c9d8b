import type { IncomingMessage, ServerResponse } from 'node:http'
import { type Answer, type Feature, type FeatureSet, featureSet, type MaybePromise } from '@ri/core'
import { runNodeFeatures, writeAnswer } from '@ri/core/node'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { getContext, type RiContext } from './context.js'
import { joinRoute } from './route.js'

/** A compiled set on a live request: core's node-level wiring (onHeaders, onSend capture, onResponse, then onRequest). */
function run(set: FeatureSet, ctx: RiContext, req: IncomingMessage, res: ServerResponse): MaybePromise<Answer | undefined> {
  return runNodeFeatures(set, ctx, req, res)
}

/**
 * Low-level: applies route-level features to a request `ri()` is handling and returns their early
 * answer (not written). For integrations that have their own per-route unit, such as @ri/nest's
 * interceptor; apps use `withFeatures()`. Returns undefined when `ri()` is not installed.
 *
 * @example
 * const answer = await applyFeatures(req, res, [myFeature])
 * if (answer) return sendAnswer(req, res, answer)
 */
export function applyFeatures(req: IncomingMessage, res: ServerResponse, features: readonly Feature[]): MaybePromise<Answer | undefined> {
  const ctx = getContext(req)
  if (!ctx) return undefined
  return run(featureSet(features), ctx, req, res)
}

/**
 * Writes an early answer for a request `ri()` is handling (feature headers applied; onSend
 * features do not see it as a handler response).
 *
 * @example
 * const answer = await applyFeatures(req, res, [myFeature])
 * if (answer) return sendAnswer(req, res, answer)
 */
export function sendAnswer(req: IncomingMessage, res: ServerResponse, answer: Answer): void {
  const ctx = getContext(req)
  if (ctx) ctx.answered = true
  writeAnswer(res, answer, req.method === 'HEAD')
}

const isPromise = <T>(v: MaybePromise<T>): v is Promise<T> => typeof (v as Promise<T> | undefined)?.then === 'function'

/**
 * What `withFeatures()` returns: an Express middleware that also exposes its features.
 *
 * @example
 * const unit: FeatureMiddleware = withFeatures(myFeature)
 * unit.features // [myFeature]
 */
export type FeatureMiddleware = RequestHandler & { readonly features: readonly Feature[] }

/**
 * Turns any core `Feature` into Express route-level middleware: its hooks run on the exchange
 * `ri()` created, after the global features. `cached()`, `throttled()` and `slowThreshold()` are
 * built on it.
 *
 * @example
 * const poweredBy: Feature = { name: 'powered-by', onHeaders: (ex) => ex.setHeader('x-powered-by', 'ri') }
 * app.get('/users/:id', withFeatures(poweredBy), (req, res) => res.json({ id: req.params.id }))
 */
export function withFeatures(...features: Feature[]): FeatureMiddleware {
  const list = Object.freeze([...features])
  const set = featureSet(list)
  const mw = function riRouteFeatures(req: Request, res: Response, next: NextFunction): void {
    const ctx = getContext(req)
    if (!ctx) return next()
    // Unresolved before routing (sub-app, exotic path): Express knows it now.
    if (ctx.exchange.route === undefined && req.route) ctx.exchange.route = joinRoute(req.baseUrl ?? '', String(req.route.path))
    const result = run(set, ctx, req, res)
    if (result === undefined) return next()
    const answer = (a: Answer | undefined) => {
      if (!a) return next()
      sendAnswer(req, res, a)
    }
    if (isPromise(result)) result.then(answer, next)
    else answer(result)
  }
  return Object.assign(mw, { features: list }) as FeatureMiddleware
}
