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

// Symbol.for: one key even if two copies of @ri/express end up in one process.
export const kRi: unique symbol = Symbol.for('@ri/express.context') as never

export type WithRi = { [kRi]?: RiContext }

/**
 * The exchange `ri()` created for this request, or undefined when `ri()` is not installed.
 *
 * @example
 * app.get('/me', (req, res) => res.json({ requestId: getExchange(req)?.requestId }))
 */
export function getExchange(req: object): Exchange | undefined {
  return (req as WithRi)[kRi]?.exchange
}

/** @internal */
export function getContext(req: object): RiContext | undefined {
  return (req as WithRi)[kRi]
}
