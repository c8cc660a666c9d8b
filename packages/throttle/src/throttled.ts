import type { Feature } from '@ri/core'
import type { RuleOptions } from './options.js'
import { createThrottle, type Throttle } from './throttle.js'

export interface ThrottledOptions extends RuleOptions {
  /** Rule name (storage keys, headers, events). Default `route-<n>`. */
  readonly name?: string
  /**
   * Throttle whose store, keys, headers, insurance and events this route uses. Default: a
   * private in-memory throttle (per process), created once by this call.
   */
  readonly throttle?: Throttle
}

/**
 * A route-level limit as a core `Feature` (adapters attach it to one route, like a
 * `@Throttle()` decorator). Each route gets its own bucket (`per: 'route'` by default). It adds
 * to any app-wide throttle: both count, and the strictest decides.
 *
 * @example
 * const sync = throttled({ limit: 2, window: '1m', key: (ex) => ex.header('x-api-key'), throttle })
 * createPipeline([throttle.feature(), sync])
 */
export function throttled(options: ThrottledOptions): Feature {
  const { throttle, ...rule } = options ?? ({} as ThrottledOptions)
  const owner = throttle ?? createThrottle({ default: false })
  return owner.route(rule)
}
