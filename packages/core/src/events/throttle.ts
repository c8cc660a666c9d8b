/** Events @ri/throttle publishes. */
export interface ThrottleEvents {
  /** One per decision on a throttled route. */
  'throttle.decision': {
    /** Rule name (`'GET /products/:id'`, `'default'`, a `throttled()` name). */
    readonly rule: string
    /** Policy (limit) that decided: the one that refused, or the one with least quota left. */
    readonly policy: string
    readonly result: 'allowed' | 'limited' | 'blocked-in-memory' | 'denied' | 'skipped'
    /** Who counted: shared Redis, the process memory store, the in-memory insurance limiter, or nobody. */
    readonly store: 'redis' | 'memory' | 'insurance' | 'none'
  }
  /** The insurance limiter took over from Redis (`engaged`) or handed back (`released`). */
  'throttle.insurance': { readonly state: 'engaged' | 'released'; readonly error?: unknown }
}
