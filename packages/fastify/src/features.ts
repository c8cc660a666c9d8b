import { type Cache, type CachedRouteOptions, selectCached } from '@ri/cache'
import { createOptionsChecker, type Duration, type Feature, type FeatureSet, featureSet, isPlainObject } from '@ri/core'
import { slowThreshold } from '@ri/slowlog'
import { selectThrottled, skipThrottle, type Throttle, type ThrottledOptions } from '@ri/throttle'

/**
 * The route `config` fragment `withFeatures()` returns.
 *
 * @example
 * const config: RiRouteConfig = withFeatures(myFeature)
 * app.get('/x', { config }, handler)
 */
export interface RiRouteConfig {
  readonly riFeatures: readonly Feature[]
}

/**
 * `config.cache` of a route: @ri/cache's `CachedOptions`, where `cache` is optional (default: the
 * cache given to the plugin).
 *
 * @example
 * app.get('/products/:id', { config: { cache: { ttl: '30s', tags: ['products'] } } }, handler)
 */
export type { CachedRouteOptions }

/**
 * `config.throttle` of a route: a route-level limit (@ri/throttle `throttled()` options), or
 * `false` to exempt the route from every throttle, the app-wide one included.
 *
 * @example
 * app.post('/sync', { config: { throttle: { limit: 2, window: '1m' } } }, handler)
 */
export type ThrottleRouteConfig = ThrottledOptions | false

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Route-level ri features (see `withFeatures()`). */
    riFeatures?: readonly Feature[]
    /** Response cache for this route (@ri/cache `cached()`), on the plugin's cache unless `cache` is set. */
    cache?: CachedRouteOptions
    /** A route-level limit, or `false` to skip every throttle for this route. */
    throttle?: ThrottleRouteConfig
    /** Slow threshold of this route (@ri/slowlog), or `false` to never log it as slow. */
    slowMs?: Duration | false
  }
}

/**
 * What route helpers resolve from the plugin options: the cache `config.cache` stores in, the
 * throttle `config.throttle` shares.
 *
 * @example
 * const deps: RiDeps = { cache, throttle }
 */
export interface RiDeps {
  readonly cache?: Cache
  readonly throttle?: Throttle
}

/** @internal Where the plugin keeps a route's compiled features in its config. */
export const kRoute: unique symbol = Symbol.for('@ri/fastify.route') as never

/** @internal A route's features, compiled once in `onRoute`. */
export interface RouteCompiled {
  /** Route-level features (run after the global ones). */
  readonly set: FeatureSet | undefined
  /** Features run before the global ones (`before` + `throttle: false`). */
  readonly early: FeatureSet | undefined
}

const SKIP: Feature = { name: 'skip-throttle', onRequest: (ex) => skipThrottle(ex) }
const ROUTE_KEYS = ['cache', 'throttle', 'slowMs', 'riFeatures'] as const

/**
 * @internal Compiles a route's ri config once (throws RiConfigError naming each bad option);
 * undefined when the route has nothing for ri and no `before` features apply.
 */
export function compileRoute(config: Record<string | symbol, unknown>, deps: RiDeps, before: readonly Feature[]): RouteCompiled | undefined {
  if (config[kRoute] !== undefined) return config[kRoute] as RouteCompiled // HEAD route copied from its GET
  if (ROUTE_KEYS.every((k) => config[k] === undefined)) return undefined
  const check = createOptionsChecker('route config')
  const features: Feature[] = []
  let skip = false
  const throttle = config.throttle
  if (throttle === false) skip = true
  else if (isPlainObject(throttle)) {
    features.push(selectThrottled(throttle as unknown as ThrottledOptions).build(deps))
  } else if (throttle !== undefined) check.problem('throttle', throttle, 'throttled() options ({ limit, window ... }) or false')
  if (config.slowMs !== undefined) features.push(slowThreshold(config.slowMs as Duration | false))
  const cache = config.cache
  if (isPlainObject(cache)) {
    const feature = selectCached(cache as CachedRouteOptions).from(deps)
    if (feature === undefined) check.problem('cache', cache, 'a cache: riPlugin options { cache } or config.cache.cache')
    else features.push(feature)
  } else if (cache !== undefined) check.problem('cache', cache, 'cached() options ({ ttl, tags, key, vary ... })')
  const own = config.riFeatures
  if (Array.isArray(own)) features.push(...(own as Feature[]))
  else if (own !== undefined) check.problem('riFeatures', own, 'withFeatures(...)')
  check.done()
  const early = skip ? [...before, SKIP] : before
  return {
    set: features.length > 0 ? featureSet(Object.freeze(features)) : undefined,
    early: early.length > 0 ? featureSet(Object.freeze(early)) : undefined,
  }
}

/**
 * Turns any core `Feature` into a Fastify route `config` fragment; the plugin's hooks run it on
 * the route's requests, after the global features. The named route options `cache`, `throttle`
 * and `slowMs` compile to features the same way.
 *
 * @example
 * const poweredBy: Feature = { name: 'powered-by', onHeaders: (ex) => ex.setHeader('x-powered-by', 'ri') }
 * app.get('/users/:id', { config: { ...withFeatures(poweredBy) } }, async (req) => ({ id: req.params.id }))
 */
export function withFeatures(...features: Feature[]): RiRouteConfig {
  const list = Object.freeze([...features])
  featureSet(list)
  return { riFeatures: list }
}
