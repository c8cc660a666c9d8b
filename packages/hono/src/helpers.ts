import { type CachedRouteOptions, selectCached } from '@ri/cache'
import type { Duration, Feature } from '@ri/core'
import { slowThreshold as slowFeature } from '@ri/slowlog'
import { skipThrottle as markSkip, selectThrottled, type ThrottledOptions } from '@ri/throttle'
import type { Context, MiddlewareHandler, Next } from 'hono'
import { kEarly, type RiDeps, type RiState, withFeatures } from './ri.js'

/**
 * What the route helpers return: Hono middleware that also exposes its features (empty for
 * helpers resolved from `ri()` on first use).
 *
 * @example
 * const unit: FeatureMiddleware = cached({ ttl: '30s' })
 */
export type FeatureMiddleware = MiddlewareHandler & { readonly features: readonly Feature[] }

/**
 * Options of the route-level `cached()`: @ri/cache's `CachedOptions`, where `cache` is optional
 * (default: the cache given to `ri({ cache })`).
 *
 * @example
 * const options: CachedRouteOptions = { ttl: '30s', tags: ['products'], vary: ['accept-language'] }
 */
export type { CachedRouteOptions }

/** A route unit built from what `ri()` was given (cache, throttle), once per `ri()` instance. */
function deferred(build: (deps: RiDeps) => readonly Feature[]): FeatureMiddleware {
  const perDeps = new WeakMap<RiDeps, FeatureMiddleware>()
  const mw = function riDeferredFeatures(c: Context, next: Next): Promise<Response | void> {
    const st = c.get('ri') as RiState | undefined
    if (!st) return next()
    let unit = perDeps.get(st.deps)
    if (!unit) {
      try {
        unit = withFeatures(...build(st.deps))
      } catch (error) {
        st.pipeline.logger.error({ err: error }, 'ri route helper cannot be wired; the route runs without it')
        unit = withFeatures()
      }
      perDeps.set(st.deps, unit)
    }
    return unit(c, next) as Promise<Response | void>
  }
  return Object.assign(mw, { features: Object.freeze([]) as readonly Feature[] })
}

/**
 * Route-level HTTP response cache (@ri/cache's `cached()` feature): `X-Cache: MISS/HIT/STALE`,
 * ETag and 304, `Age`, `Cache-Control`, `Vary`; `cache.invalidateTags()` purges stored responses.
 * The cache is the one given to `ri({ cache })` unless `cache` is set here. Options are validated
 * when the route is defined. Needs `node:crypto` (Node, Bun, Deno, workers with nodejs_compat).
 *
 * @example
 * app.use(ri({ cache }))
 * app.get('/products/:id', cached({ ttl: '30s', tags: ['products'] }), (c) => c.json(load(c.req.param('id'))))
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

const SKIP: readonly Feature[] = Object.freeze([{ name: 'skip-throttle', onRequest: (ex) => markSkip(ex) }])

/**
 * Exempts a route from every throttle (the app-wide one included): `ri()` sees it among the
 * matched routes before any middleware runs, so it applies before the global throttle decides.
 *
 * @example
 * app.post('/webhooks/stripe', skipThrottle(), handler)
 */
export function skipThrottle(): MiddlewareHandler & { readonly [kEarly]: readonly Feature[] } {
  const mw = function riSkipThrottle(_c: Context, next: Next): Promise<void> {
    return next()
  }
  return Object.assign(mw, { [kEarly]: SKIP })
}
