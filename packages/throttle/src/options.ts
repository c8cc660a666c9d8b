import type { Answer, Duration, Exchange, Logger, RiEvents, TrustProxy } from '@ri/core'
import type { HeadersMode } from './headers.js'
import type { KeySpec } from './keys.js'

/**
 * The subset of an ioredis `Redis` / `Cluster` client the throttle uses.
 *
 * @example
 * createThrottle({ store: new Redis(url) }) // or new Cluster(nodes)
 */
export interface RedisClientLike {
  status?: string
  defineCommand(name: string, definition: { numberOfKeys?: number; lua: string }): void
  multi(...args: unknown[]): unknown
  connect?(): Promise<unknown>
}

/**
 * Where counters live:
 * - `'memory'` (default): this process only (`RateLimiterMemory`);
 * - an ioredis `Redis` or `Cluster` instance: shared by every process (`RateLimiterRedis`);
 * - `{ redis, prefix }`: the same with a key prefix (default `'ri:throttle'`).
 *
 * @example
 * createThrottle({ store: { redis: new Redis(url), prefix: 'shop:rl' } })
 */
export type ThrottleStore = 'memory' | RedisClientLike | { readonly redis: RedisClientLike; readonly prefix?: string }

/**
 * One limit: `limit` requests (cost units) per `window`.
 *
 * @example
 * { limit: 1000, window: '1h', name: 'hourly', burst: { limit: 50, window: '10s' } }
 */
export interface LimitOptions {
  /** Quota per window (cost units, 1 per request by default). */
  readonly limit: number
  /** Fixed window, whole seconds: `'1s'`, `'1m'`, `'1h'`, or milliseconds (a multiple of 1000). */
  readonly window: Duration
  /** Policy name in headers and events. Default `'<limit>-per-<window>'`, e.g. `'100-per-1m'`. */
  readonly name?: string
  /**
   * Extra allowance used only once `limit` is spent (rate-limiter-flexible `BurstyRateLimiter`):
   * e.g. `{ limit: 20, window: '10s' }` lets short bursts through while the main window holds.
   */
  readonly burst?: { readonly limit: number; readonly window: Duration }
}

/**
 * How a matched route is limited. Give `limit` + `window` for one limit, or `limits` for several.
 *
 * @example
 * { limits: [{ limit: 10, window: '1s' }, { limit: 1000, window: '1h' }], key: (ex) => ex.header('x-api-key'), cost: 2 }
 */
export interface RuleOptions {
  readonly limit?: number
  readonly window?: Duration
  readonly name?: string
  readonly burst?: LimitOptions['burst']
  /** Several limits at once (e.g. 10 per second and 1,000 per hour): the strictest decides, all are reported. */
  readonly limits?: readonly LimitOptions[]
  /** Who is counted. Default: the throttle's `key` (`'ip'`). */
  readonly key?: KeySpec
  /** `'rule'` (default): one bucket per client for every route of this rule; `'route'`: one per route template. */
  readonly per?: 'rule' | 'route'
  /** Units one request consumes. Default 1. A function is called per request (non-integers round up). */
  readonly cost?: number | ((exchange: Exchange) => number)
  /** Return true to let a request through uncounted (health checks, internal callers ...). */
  readonly skip?: (exchange: Exchange) => boolean
  /** Client IPs / CIDRs never limited (and not counted). */
  readonly allow?: readonly string[]
  /** Client IPs / CIDRs always refused with 403. */
  readonly deny?: readonly string[]
  /** After exceeding a limit, refuse the client for this long (rate-limiter-flexible `blockDuration`). Whole seconds. */
  readonly block?: Duration
  /** Give the cost back when the response status is < 400. */
  readonly skipSuccessfulRequests?: boolean
  /** Give the cost back when the response status is >= 400 or the client aborted. */
  readonly skipFailedRequests?: boolean
}

/**
 * @example
 * createThrottle({ store: redis, insurance: { timeout: '200ms', processes: 4 } })
 */
export interface InsuranceOptions {
  /**
   * How long a Redis decision may take before the in-memory insurance limiter decides instead
   * (and Redis is not asked for the next second). Default `'250ms'`.
   */
  readonly timeout?: Duration
  /**
   * Processes sharing the Redis limits. While Redis is down each process enforces
   * `ceil(limit / processes)`, so the fleet stays near the shared limit. Default 1.
   */
  readonly processes?: number
}

/**
 * @example
 * createThrottle({ store: { redis, prefix: 'app:rl' }, rules: { 'POST /login': { limit: 5, window: '1m' } } })
 */
export interface ThrottleOptions {
  readonly store?: ThrottleStore
  /** Rules by route pattern: `'GET /products/:id'`, `'/search'`, `'* /admin/*'`; `false` opts a route out. */
  readonly rules?: Readonly<Record<string, RuleOptions | false>>
  /** Rule for routes no pattern matches (and unmatched requests). Default 100 per minute per ip; `false` = none. */
  readonly default?: RuleOptions | false
  /** Default key of every rule. Default `'ip'`. */
  readonly key?: KeySpec
  /** IPv6 clients are grouped by this prefix. Default 64. */
  readonly ipv6Prefix?: number
  /**
   * Re-resolve the client address for rate-limit keys with this trust setting, treating the
   * exchange's `ip` as the peer. Default: use `exchange.ip` as the pipeline resolved it
   * (whose own `trustProxy` defaults to trusting nobody).
   */
  readonly trustProxy?: TrustProxy
  /** `'ietf'` (default): `RateLimit-Policy` + `RateLimit`; `'legacy'`: `X-RateLimit-*`; `'both'`; `false`: none. */
  readonly headers?: HeadersMode
  /** Redis only. `false` fails open (allows) while Redis is unavailable, instead of limiting in memory. */
  readonly insurance?: false | InsuranceOptions
  /** Hash every client key before it reaches the store (keeps API keys out of Redis). Default false. */
  readonly hashKeys?: boolean
  /** Builds the refusal. Default: 429 `application/problem+json` (the draft's quota-exceeded type). */
  readonly onLimited?: (exchange: Exchange, result: import('./throttle.js').ThrottleResult) => Answer
  readonly events?: RiEvents
  readonly logger?: Logger
}

export const DEFAULTS = Object.freeze({
  prefix: 'ri:throttle',
  default: Object.freeze({ limit: 100, window: '1m' }) as RuleOptions,
  key: 'ip' as KeySpec,
  ipv6Prefix: 64,
  headers: 'ietf' as HeadersMode,
  insuranceTimeoutMs: 250,
  insuranceProcesses: 1,
  hashKeys: false,
})

export const THROTTLE_OPTIONS = [
  'store',
  'rules',
  'default',
  'key',
  'ipv6Prefix',
  'trustProxy',
  'headers',
  'insurance',
  'hashKeys',
  'onLimited',
  'events',
  'logger',
] as const

export const RULE_OPTIONS = [
  'limit',
  'window',
  'name',
  'burst',
  'limits',
  'key',
  'per',
  'cost',
  'skip',
  'allow',
  'deny',
  'block',
  'skipSuccessfulRequests',
  'skipFailedRequests',
] as const

export const LIMIT_OPTIONS = ['limit', 'window', 'name', 'burst'] as const
