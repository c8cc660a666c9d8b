import { type CachedRouteOptions, selectCached } from '@ri/cache'
import type { Duration, Feature } from '@ri/core'
import { slowThreshold as slowFeature } from '@ri/slowlog'
import { skipThrottle as markSkip, selectThrottled, type ThrottledOptions } from '@ri/throttle'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { getContext, type RiDeps } from './context.js'
import { type FeatureMiddleware, withFeatures } from './features.js'

/**
 * Options of the route-level `cached()`: @ri/cache's `CachedOptions`, where `cache` is optional
 * (default: the cache given to `ri({ cache })`).
 *
 * @example
 * const options: CachedRouteOptions = { ttl: '30s', tags: ['products'], vary: ['accept-language'] }
 */
export type { CachedRouteOptions }

/**
 * A route unit whose features depend on what `ri()` was given (its cache, its throttle): built
 * once per `ri()` instance, on the first request, then reused.
 */
function deferred(build: (deps: RiDeps) => readonly Feature[]): FeatureMiddleware {
  const perDeps = new WeakMap<RiDeps, FeatureMiddleware>()
  const mw = function riDeferredFeatures(req: Request, res: Response, next: NextFunction): void {
    const ctx = getContext(req)
    if (!ctx) return next()
    let unit = perDeps.get(ctx.deps)
    if (!unit) {
      try {
        unit = withFeatures(...build(ctx.deps))
      } catch (error) {
        ctx.pipeline.logger.error({ err: error }, 'ri route helper cannot be wired; the route runs without it')
        unit = withFeatures()
      }
      perDeps.set(ctx.deps, unit)
    }
    unit(req, res, next)
  }
  return Object.assign(mw, { features: Object.freeze([]) as readonly Feature[] }) as FeatureMiddleware
}

/**
 * Route-level HTTP response cache (@ri/cache's `cached()` feature): `X-Cache: MISS/HIT/STALE`,
 * ETag and 304, `Age`, `Cache-Control`, `Vary`; `cache.invalidateTags()` purges stored responses.
 * The cache is the one given to `ri({ cache })` unless `cache` is set here. Options are validated
 * when the route is defined.
 *
 * @example
 * app.use(ri({ cache }))
 * app.get('/products/:id', cached({ ttl: '30s', tags: ['products'] }), (req, res) => res.json(load(req.params.id)))
 */
export function cached(options: CachedRouteOptions = {}): FeatureMiddleware {
  // the route's own cache, else the one given to ri() (validated now, chosen on first use)
  const selection = selectCached(options, 'a cache: ri({ cache }) or cached({ cache })')
  return selection.feature ? withFeatures(selection.feature) : deferred((deps) => [selection.build(deps)])
}

/**
 * Route-level rate limit (@ri/throttle): its own bucket per route, on the store, keys, headers and
 * insurance of the throttle given to `ri({ throttle })` (or `options.throttle`); without either, a
 * private in-memory throttle. Adds to the app-wide limits: the strictest decides.
 *
 * @example
 * app.post('/sync', throttled({ limit: 2, window: '1m', key: (ex) => ex.header('x-api-key') }), handler)
 */
export function throttled(options: ThrottledOptions): FeatureMiddleware {
  // the route's own throttle, else the one given to ri(), else a private in-memory one
  const selection = selectThrottled(options)
  return selection.feature ? withFeatures(selection.feature) : deferred((deps) => [selection.build(deps)])
}

/**
 * Route-level slow threshold (@ri/slowlog): this route is logged as slow above `threshold`
 * instead of the global one; `false` never logs it as slow.
 *
 * @example
 * app.get('/export', slowThreshold('5s'), handler)
 */
export function slowThreshold(threshold: Duration | false): FeatureMiddleware {
  return withFeatures(slowFeature(threshold))
}

/** Marks route middleware whose features run before the global ones (read by `ri()` from the route's stack). */
export const kEarly: unique symbol = Symbol.for('@ri/express.early') as never

const SKIP: readonly Feature[] = Object.freeze([{ name: 'skip-throttle', onRequest: (ex) => markSkip(ex) }])

/**
 * Exempts a route from every throttle (the app-wide one included). `ri()` finds it in the route's
 * stack before routing, so it applies before the global throttle decides. Not seen for routes of
 * mounted sub-apps (their routes are invisible before routing).
 *
 * @example
 * app.get('/webhooks/stripe', skipThrottle(), handler)
 */
export function skipThrottle(): RequestHandler & { readonly [kEarly]: readonly Feature[] } {
  const mw = function riSkipThrottle(_req: Request, _res: Response, next: NextFunction): void {
    next()
  }
  return Object.assign(mw, { [kEarly]: SKIP })
}
