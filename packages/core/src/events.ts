import type { CacheEvents } from './events/cache.js'
import type { DbEvents } from './events/db.js'
import type { HealthEvents } from './events/health.js'
import type { HttpEvents } from './events/http.js'
import type { ThrottleEvents } from './events/throttle.js'

/**
 * Every event a feature package publishes, by name. Feature packages publish; @ri/metrics
 * subscribes; neither imports the other.
 */
export interface RiEventMap extends HttpEvents, CacheEvents, ThrottleEvents, DbEvents, HealthEvents {}

export type RiEventName = keyof RiEventMap
export type RiListener<K extends RiEventName> = (payload: RiEventMap[K]) => void

/**
 * A tiny synchronous event bus. `has()` lets publishers skip building a payload nobody reads;
 * a throwing listener is isolated and never reaches the request path.
 *
 * @example
 * const events = createEvents()
 * const off = events.on('cache.get', (e) => hits.inc({ tier: e.tier, result: e.result }))
 * if (events.has('cache.get')) events.emit('cache.get', { namespace: 'users', tier: 'l1', result: 'hit' })
 */
export interface RiEvents {
  on<K extends RiEventName>(type: K, listener: RiListener<K>): () => void
  off<K extends RiEventName>(type: K, listener: RiListener<K>): void
  emit<K extends RiEventName>(type: K, payload: RiEventMap[K]): void
  has(type: RiEventName): boolean
  /**
   * Changes whenever a listener is added or removed (createEvents() counts up from 0), so a hot
   * path can keep what `has()` answered until it changes: one property read instead of a lookup
   * by name. Optional: an implementation without it is asked `has()` every time.
   */
  readonly generation?: number
}

export function createEvents(options: { onListenerError?: (error: unknown, type: string) => void } = {}): RiEvents {
  // Copy-on-write arrays: emit iterates without allocating, subscribe/unsubscribe are rare.
  const listeners: Record<string, ReadonlyArray<(payload: unknown) => void>> = Object.create(null)
  const onError = options.onListenerError
  const off = (type: string, listener: (payload: unknown) => void) => {
    const list = listeners[type]
    if (!list) return
    const next = list.filter((l) => l !== listener)
    if (next.length === list.length) return
    if (next.length === 0) delete listeners[type]
    else listeners[type] = next
    api.generation++
  }
  const api = {
    generation: 0,
    on(type, listener) {
      const fn = listener as (payload: unknown) => void
      listeners[type] = [...(listeners[type] ?? []), fn]
      api.generation++
      return () => off(type, fn)
    },
    off: (type, listener) => off(type, listener as (payload: unknown) => void),
    emit(type, payload) {
      const list = listeners[type]
      if (!list) return
      for (let i = 0; i < list.length; i++) {
        try {
          list[i]!(payload)
        } catch (error) {
          onError?.(error, type)
        }
      }
    },
    has: (type) => listeners[type] !== undefined,
  } satisfies RiEvents & { generation: number }
  return api
}

/**
 * `events.has(type)`, remembered until the bus's `generation` changes: for a publisher's hot path.
 * A bus without `generation` is asked every time.
 *
 * @example
 * const hasGet = listening(events, 'cache.get')
 * if (hasGet()) events.emit('cache.get', payload)
 */
export function listening(events: RiEvents, type: RiEventName): () => boolean {
  let seen = -1
  let has = false
  return () => {
    const g = events.generation
    if (g === seen) return has
    has = events.has(type)
    if (g !== undefined) seen = g
    return has
  }
}
