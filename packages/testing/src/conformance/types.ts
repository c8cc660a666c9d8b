/**
 * Structural mirrors of the @ri/core types the conformance suite needs. @ri/testing does not
 * depend on @ri/core (it is the harness every package uses), so the suite speaks the shapes, and
 * the objects it builds are accepted by `ri({...})` of every adapter.
 */

export type HeaderValue = string | string[] | undefined

/** Core's `Duration`, structurally: milliseconds or `'30s'`, `'1m'` ... */
export type DurationLike = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd' | 'w'}`

/** What the suite's test features read from an exchange (a subset of core's `Exchange`). */
export interface ExchangeLike {
  readonly method: string
  route: string | undefined
  readonly path: string
  readonly headers: Readonly<Record<string, HeaderValue>>
  readonly ip: string
  readonly requestId: string
  readonly state: Record<string, unknown>
  setHeader(name: string, value: string | string[]): void
}

export interface AnswerLike {
  readonly status: number
  readonly headers?: Readonly<Record<string, string | readonly string[]>>
  readonly body?: string | Uint8Array
}

export interface FinishInfoLike {
  readonly status: number
  readonly durationMs: number
  readonly aborted: boolean
}

/** A core `Feature`, structurally. */
export interface FeatureLike {
  readonly name: string
  onRequest?(exchange: ExchangeLike): AnswerLike | undefined | void | Promise<AnswerLike | undefined | void>
  onHeaders?(exchange: ExchangeLike): void
  onSend?(exchange: ExchangeLike, body: Uint8Array | string): Uint8Array | string | undefined | void | Promise<Uint8Array | string | undefined | void>
  onResponse?(exchange: ExchangeLike, info: FinishInfoLike): void
}

/** The `http.request` payload the pipeline publishes. */
export interface HttpRequestEvent {
  readonly method: string
  readonly route: string | undefined
  readonly status: number
  readonly durationMs: number
  readonly aborted: boolean
  readonly requestId: string
}

/** A core `RiEvents` bus, structurally (only what the pipeline calls). */
export interface EventsLike {
  on(type: string, listener: (payload: never) => void): () => void
  off(type: string, listener: (payload: never) => void): void
  emit(type: string, payload: unknown): void
  has(type: string): boolean
}

/** The request a route handler of the shared table receives, whatever the framework. */
export interface ConformanceRequest {
  readonly method: string
  readonly params: Readonly<Record<string, string>>
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, HeaderValue>>
  /** Parsed JSON body (POST routes), else undefined. */
  readonly body: unknown
}

/** What a handler of the shared table returns; each setup writes it natively. */
export interface ConformanceResponse {
  readonly status: number
  readonly headers?: Readonly<Record<string, string>>
  readonly body: string
}

/** One row of the shared route table. */
export interface ConformanceRoute {
  readonly method: 'GET' | 'POST'
  /** Template in `:param` syntax, valid on every framework (`/users/:id`). */
  readonly path: string
  /** Route-level features: the setup applies them with its adapter's generic per-route wrapper. */
  readonly features?: readonly FeatureLike[]
  /** Response cache of the route: the setup applies its adapter's named unit (`cached()`, `config.cache`, `@Cached()`). */
  readonly cache?: { readonly ttl: DurationLike; readonly tags: readonly string[]; readonly vary?: readonly string[] }
  /** Route-level limit (`throttled()`, `config.throttle`, `@Throttle()`). */
  readonly throttle?: { readonly limit: number; readonly window: DurationLike }
  /** Exempt from every throttle (`skipThrottle()`, `config.throttle: false`, `@SkipThrottle()`). */
  readonly skipThrottle?: boolean
  /** Slow threshold of the route (`slowThreshold()`, `config.slowMs`, `@SlowThreshold()`). */
  readonly slowMs?: number
  /** Throws on `/boom`: setups must let the framework's own error handling answer (500). */
  handler(req: ConformanceRequest): ConformanceResponse | Promise<ConformanceResponse>
}

/** Options the suite passes to `ri({...})` (a subset of core's `RiOptions`). */
export interface ConformanceRiOptions {
  readonly features?: readonly FeatureLike[]
  readonly events?: EventsLike
  readonly trustProxy?: 'loopback' | boolean
  /** The suite turns the request-id echo on to check it (off by default). */
  readonly echoRequestId?: boolean
  /** Objects built by the kit's factories (feature scenarios only). */
  readonly metrics?: unknown
  readonly throttle?: unknown
  readonly cache?: unknown
  readonly slowlog?: unknown
  readonly health?: unknown
}

/** The parts of a @ri/cache instance the suite drives. */
export interface CacheLike {
  invalidateTags(tags: readonly string[]): Promise<void>
  close(): Promise<void>
}

/** The parts of a @ri/health instance the suite drives. */
export interface HealthLike {
  shutdown(reason?: string): Promise<unknown>
}

/**
 * The feature packages' factories, handed in by each adapter's test (the suite does not depend on
 * them): `{ createMetrics, createThrottle, createCache, createSlowLog, createHealth }`.
 */
export interface ConformanceKit {
  createMetrics(options: { defaultMetrics: false }): unknown
  createThrottle(options: { default: false; rules: Record<string, { limit: number; window: DurationLike }> }): unknown
  createCache(options: { l2?: string; prefix: string; ttl: DurationLike }): CacheLike
  createSlowLog(options: { logger: LoggerLike; thresholdMs: DurationLike }): unknown
  createHealth(options: { shutdown: { signals: never[]; drainDelayMs: number; timeoutMs: number; exit: false } }): HealthLike
}

/** A pino-compatible logger, structurally. */
export interface LoggerLike {
  trace(...args: unknown[]): void
  debug(...args: unknown[]): void
  info(...args: unknown[]): void
  warn(...args: unknown[]): void
  error(...args: unknown[]): void
  fatal(...args: unknown[]): void
  child(bindings: Record<string, unknown>): LoggerLike
}

/** A real listening server of one setup. */
export interface ConformanceServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  close(): Promise<void>
}

/** Builds and starts one setup (express, fastify, hono, nest-express, nest-fastify) from the shared table. */
export type StartSetup = (routes: readonly ConformanceRoute[], options: ConformanceRiOptions) => Promise<ConformanceServer>
