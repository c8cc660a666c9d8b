import type { Cache } from '@ri/cache'
import type { Exchange, Pipeline } from '@ri/core'
import type { Throttle } from '@ri/throttle'

/**
 * What route helpers resolve from `ri()`: the cache `cached()` stores in, the throttle
 * `throttled()` shares. One frozen object per `ri()` instance.
 *
 * @example
 * const deps: RiDeps = { cache, throttle }
 */
export interface RiDeps {
  readonly cache?: Cache
  readonly throttle?: Throttle
}

/**
 * What `ri()` leaves on the request for route-level helpers and integrations (@ri/nest).
 *
 * @example
 * // read it through getExchange(req); the context itself is for integrations
 * const ex = getExchange(req)
 */
export interface RiContext {
  readonly pipeline: Pipeline
  readonly exchange: Exchange
  readonly deps: RiDeps
  /** An early answer was written: onSend features must not store it as a handler response. */
  answered: boolean
}

// Beside the request, not on it: Express gives every request a prototype of its own app
// (`app.request`), after which a property added to one takes V8's slow path (a new hidden class
// each time, thousands of instructions per request). One map per process (Symbol.for), even if
// two copies of @ri/express end up in it.
const kContexts: unique symbol = Symbol.for('@ri/express.contexts') as never
const contexts: WeakMap<object, RiContext> = ((globalThis as { [kContexts]?: WeakMap<object, RiContext> })[kContexts] ??= new WeakMap())

/** @internal */
export function setContext(req: object, ctx: RiContext): void {
  contexts.set(req, ctx)
}

/**
 * The exchange `ri()` created for this request, or undefined when `ri()` is not installed.
 *
 * @example
 * app.get('/me', (req, res) => res.json({ requestId: getExchange(req)?.requestId }))
 */
export function getExchange(req: object): Exchange | undefined {
  return contexts.get(req)?.exchange
}

/** @internal */
export function getContext(req: object): RiContext | undefined {
  return contexts.get(req)
}
