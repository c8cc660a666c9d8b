/**
 * Stable error codes. A code is never reused for another meaning; `docs/errors.md` lists them.
 */
export const ErrorCodes = Object.freeze({
  RI_CONFIG: 'RI_CONFIG',
  RI_TIMEOUT: 'RI_TIMEOUT',
  RI_CACHE_LOADER_TIMEOUT: 'RI_CACHE_LOADER_TIMEOUT',
  RI_CACHE_LOADER_FAILED: 'RI_CACHE_LOADER_FAILED',
  RI_CACHE_SERIALIZATION: 'RI_CACHE_SERIALIZATION',
  RI_THROTTLE_LIMITED: 'RI_THROTTLE_LIMITED',
  RI_DB_NO_NODE: 'RI_DB_NO_NODE',
  RI_DB_READ_ONLY_VIOLATION: 'RI_DB_READ_ONLY_VIOLATION',
  RI_HEALTH_CHECK_FAILED: 'RI_HEALTH_CHECK_FAILED',
  RI_SHUTDOWN_TIMEOUT: 'RI_SHUTDOWN_TIMEOUT',
  RI_CLOSED: 'RI_CLOSED',
} as const)

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/**
 * Base of every error ri throws. Check `err.code` (stable) rather than the message.
 *
 * @example
 * try { await cache.getOrSet('k', load) } catch (err) {
 *   if (err instanceof RiError && err.code === 'RI_CACHE_LOADER_TIMEOUT') { ... }
 * }
 */
export class RiError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** One problem found while validating options. */
export interface ConfigProblem {
  /** Dotted path of the option, e.g. `createCache.l1.max`. */
  readonly option: string
  /** What was received (rendered safely for the message). */
  readonly received: unknown
  /** What is accepted, in words, e.g. `a positive integer`. */
  readonly accepted: string
}

/**
 * Thrown at construction when options are invalid. Lists every problem at once, each naming
 * the option, the value received and what is accepted.
 *
 * @example
 * createCache({ ttl: '5 minutes' })
 * // RiConfigError: Invalid option createCache.ttl: received "5 minutes"; expected a duration ...
 */
export class RiConfigError extends RiError {
  readonly problems: readonly ConfigProblem[]
  /** The first problem's option, for the common single-problem case. */
  readonly option: string
  readonly received: unknown
  readonly accepted: string

  constructor(problems: ConfigProblem | readonly ConfigProblem[]) {
    const list = Array.isArray(problems) ? (problems as readonly ConfigProblem[]) : [problems as ConfigProblem]
    if (list.length === 0) throw new TypeError('RiConfigError needs at least one problem')
    const lines = list.map(
      (p) => `Invalid option ${p.option}: received ${describeValue(p.received)}; expected ${p.accepted}.`,
    )
    super(ErrorCodes.RI_CONFIG, lines.length === 1 ? lines[0]! : `${lines.length} invalid options:\n- ${lines.join('\n- ')}`)
    this.problems = Object.freeze([...list])
    const first = list[0]!
    this.option = first.option
    this.received = first.received
    this.accepted = first.accepted
  }
}

/** An operation exceeded its time budget. */
export class RiTimeoutError extends RiError {
  readonly timeoutMs: number
  constructor(what: string, timeoutMs: number, code: ErrorCode = ErrorCodes.RI_TIMEOUT) {
    super(code, `${what} did not finish within ${timeoutMs} ms; raise the timeout or make it faster.`)
    this.timeoutMs = timeoutMs
  }
}

/** A cache loader hit its hard timeout and no stale value could be served. */
export class CacheLoaderTimeoutError extends RiTimeoutError {
  readonly key: string
  constructor(key: string, timeoutMs: number) {
    super(`Cache loader for key "${truncate(key, 200)}"`, timeoutMs, ErrorCodes.RI_CACHE_LOADER_TIMEOUT)
    this.key = key
  }
}

/** A request was rejected by a rate limit (used by callers that prefer throwing to a 429). */
export class ThrottleLimitError extends RiError {
  readonly retryAfterMs: number
  constructor(policy: string, retryAfterMs: number) {
    super(ErrorCodes.RI_THROTTLE_LIMITED, `Rate limit "${policy}" exceeded; retry after ${Math.ceil(retryAfterMs)} ms.`)
    this.retryAfterMs = retryAfterMs
  }
}

/** The object was used after `close()`. */
export class RiClosedError extends RiError {
  constructor(what: string) {
    super(ErrorCodes.RI_CLOSED, `${what} was used after close(); create a new one.`)
  }
}

/** Renders a value for an error message without dumping huge or hostile content. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined'
  if (value === null) return 'null'
  if (typeof value === 'string') return JSON.stringify(truncate(value, 80))
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  if (typeof value === 'function') return 'a function'
  if (Array.isArray(value)) return `an array of ${value.length}`
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name
    return name && name !== 'Object' ? `an instance of ${name}` : 'an object'
  }
  return typeof value
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s
}
