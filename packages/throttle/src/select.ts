import type { Feature } from '@ri/core'
import type { Throttle } from './throttle.js'
import { type ThrottledOptions, throttled } from './throttled.js'

/** What an adapter was given that a route-level limit can share. */
export interface ThrottleDeps {
  readonly throttle?: Throttle | null
}

/**
 * The choice between the adapter's throttle and a private one, made once per route: `feature` is
 * set when `options.throttle` is; otherwise `build()` picks the adapter's throttle if any.
 *
 * @example
 * const selection: ThrottledSelection = selectThrottled({ limit: 2, window: '1m' })
 * selection.build({ throttle })
 */
export interface ThrottledSelection {
  /** The feature on `options.throttle`, ready now; undefined when it depends on the adapter. */
  readonly feature: Feature | undefined
  /** `deps.throttle.route(options)` when the adapter has a throttle, else a private in-memory one (created once). */
  build(deps: ThrottleDeps): Feature
}

/**
 * Chooses the throttle of a route-level limit (for adapters' `throttled()` helpers, route config
 * and decorators): `options.throttle`, else the adapter's throttle (`throttle.route(options)`,
 * sharing its store, keys, headers and insurance), else a private in-memory throttle. The
 * options are validated now (throws `RiConfigError`).
 *
 * @example
 * const selection = selectThrottled({ limit: 2, window: '1m' })
 * const feature = selection.feature ?? selection.build({ throttle })
 */
export function selectThrottled(options: ThrottledOptions): ThrottledSelection {
  // validates now; also the feature when neither the route nor the adapter has a throttle
  const own = throttled(options)
  const fixed = options?.throttle !== undefined ? own : undefined
  const routes = new WeakMap<Throttle, Feature>()
  return Object.freeze({
    feature: fixed,
    build(deps: ThrottleDeps): Feature {
      if (fixed) return fixed
      const shared = deps.throttle
      if (!shared || typeof shared.route !== 'function') return own
      let feature = routes.get(shared)
      if (!feature) {
        feature = shared.route(options)
        routes.set(shared, feature)
      }
      return feature
    },
  })
}
