/** Events @ri/cache publishes. Owned by the cache package; metrics consumes them. */
export interface CacheEvents {
  'cache.get': {
    readonly namespace: string
    readonly tier: 'l1' | 'l2' | 'none'
    readonly result: 'hit' | 'miss' | 'stale'
  }
  'cache.set': { readonly namespace: string }
  'cache.delete': { readonly namespace: string; readonly count: number }
  'cache.invalidate': { readonly namespace: string; readonly tags: readonly string[] }
  'cache.clear': { readonly namespace: string }
  'cache.loader': {
    readonly namespace: string
    readonly durationMs: number
    readonly outcome: 'ok' | 'error' | 'timeout' | 'soft-timeout'
  }
  'cache.l2.error': { readonly namespace: string; readonly operation: string; readonly error: unknown }
  'cache.l2.circuit': { readonly state: 'open' | 'closed' | 'half-open' }
  'cache.bus.message': { readonly direction: 'in' | 'out'; readonly type: string; readonly lagMs?: number }
  'cache.bus.state': { readonly state: 'connected' | 'disconnected' | 'gap' }
}
