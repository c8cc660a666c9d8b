import { createOptionsChecker, type Feature } from '@ri/core'
import type { Cache } from '../cache/types.js'
import { type CachedOptions, cached } from './cached.js'

/**
 * Route-level `cached()` options of the adapters: `CachedOptions` where `cache` is optional
 * (default: the cache the adapter was given, `ri({ cache })`, `riPlugin` options, `RiModule`).
 *
 * @example
 * const options: CachedRouteOptions = { ttl: '30s', tags: ['products'] }
 */
export type CachedRouteOptions = Omit<CachedOptions, 'cache'> & { readonly cache?: Cache }

/** What an adapter was given that a route-level cache can default to. */
export interface CacheDeps {
  readonly cache?: Cache | null
}

/**
 * The choice between an explicit cache and the adapter's, made once per route: `feature` is set
 * when `options.cache` is; otherwise `from()`/`build()` pick the adapter's cache.
 *
 * @example
 * const selection: CachedSelection = selectCached({ ttl: '30s' })
 * selection.build({ cache })
 */
export interface CachedSelection {
  /** The feature on `options.cache`, ready now; undefined when it waits for the adapter's cache. */
  readonly feature: Feature | undefined
  /** The feature on `options.cache` or else `deps.cache`; undefined when there is neither. */
  from(deps: CacheDeps): Feature | undefined
  /** As `from()`, but a missing cache throws a `RiConfigError` naming `need`. */
  build(deps: CacheDeps): Feature
}

// Lets the options be validated when the route is defined, before the adapter's cache is known.
const VALIDATION_CACHE = { getEntry: async () => undefined, set: async () => undefined, ttl: 1 } as unknown as Cache

/**
 * Chooses the cache of a route-level response cache (for adapters' `cached()` helpers and route
 * config): the route's own `options.cache`, else the one the adapter was given. The options are
 * validated now (throws `RiConfigError`), so a bad route fails at definition time.
 *
 * @example
 * const selection = selectCached({ ttl: '30s', tags: ['products'] }, 'a cache: ri({ cache }) or cached({ cache })')
 * const feature = selection.feature ?? selection.build({ cache })
 */
export function selectCached(options: CachedRouteOptions = {}, need = 'a cache for the route (the adapter\'s or options.cache)'): CachedSelection {
  const fixed = options.cache !== undefined ? cached(options as CachedOptions) : undefined
  if (!fixed) cached({ ...options, cache: VALIDATION_CACHE })
  const from = (deps: CacheDeps): Feature | undefined => {
    if (fixed) return fixed
    return deps.cache ? cached({ ...options, cache: deps.cache }) : undefined
  }
  return Object.freeze({
    feature: fixed,
    from,
    build(deps: CacheDeps): Feature {
      const feature = from(deps)
      if (feature) return feature
      const check = createOptionsChecker('cached')
      check.problem('cache', undefined, need)
      check.done()
      throw new Error('unreachable') // check.done() throws on a problem
    },
  })
}
