/** Events @ri/throttle publishes. */
export interface ThrottleEvents {
  'throttle.decision': {
    readonly rule: string
    readonly result: 'allowed' | 'limited' | 'blocked-in-memory' | 'skipped'
    readonly store: 'redis' | 'memory' | 'insurance'
  }
  'throttle.insurance': { readonly state: 'engaged' | 'released'; readonly error?: unknown }
}
