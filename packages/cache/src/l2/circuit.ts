import type { Episodes, RiEvents } from '@ri/core'

/**
 * Counts consecutive L2 failures; after `failures` of them L2 is skipped for `cooldown` ms,
 * then one probe is let through (half-open): success closes the circuit, failure re-opens it.
 */
export interface CircuitBreaker {
  /** True when a call may go to Redis now. */
  allow(): boolean
  success(): void
  failure(error: unknown, operation: string): void
  readonly state: 'closed' | 'open' | 'half-open'
}

export function createCircuitBreaker(options: {
  failures: number
  cooldown: number
  events: RiEvents
  episodes: Episodes
  onClose?: () => void
}): CircuitBreaker {
  const { failures: limit, cooldown, events, episodes } = options
  let state: 'closed' | 'open' | 'half-open' = 'closed'
  let failures = 0
  let openedAt = 0
  let probing = false
  const publish = (next: typeof state) => {
    state = next
    if (events.has('cache.l2.circuit')) events.emit('cache.l2.circuit', { state: next })
  }
  return {
    get state() {
      return state
    },
    allow() {
      if (state === 'closed') return true
      if (state === 'open') {
        if (Date.now() - openedAt < cooldown) return false
        publish('half-open')
        probing = false
      }
      // half-open: exactly one probe in flight at a time
      if (probing) return false
      probing = true
      return true
    },
    success() {
      failures = 0
      if (state !== 'closed') {
        probing = false
        publish('closed')
        episodes.end('cache.l2', 'Redis (cache L2) answers again; L2 back in use')
        options.onClose?.()
      }
    },
    failure(error, operation) {
      failures++
      if (state === 'half-open') {
        probing = false
        openedAt = Date.now()
        publish('open')
        return
      }
      if (state === 'closed' && failures >= limit) {
        openedAt = Date.now()
        publish('open')
        episodes.begin('cache.l2', `Redis (cache L2) failing; skipping L2 for ${cooldown} ms at a time and serving L1/loaders`, {
          operation,
          err: error,
        })
      }
    },
  }
}
