import { pino } from 'pino'

/** A log method as pino defines it: `(obj, msg?)` or `(msg)`. */
export interface LogFn {
  (obj: object, msg?: string, ...args: unknown[]): void
  (msg: string, ...args: unknown[]): void
}

/**
 * The logger ri writes to. A pino logger satisfies it as it is; so do most structured loggers
 * with a small wrapper.
 */
export interface Logger {
  trace: LogFn
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
  fatal: LogFn
  child(bindings: Record<string, unknown>): Logger
}

const noop: LogFn = () => {}

/**
 * A logger that drops everything.
 *
 * @example
 * createCache({ logger: noopLogger })
 */
export const noopLogger: Logger = Object.freeze({
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  fatal: noop,
  child: () => noopLogger,
})

/**
 * The default logger: pino at `RI_LOG_LEVEL` (default `info`) on stdout, with `name: 'ri'`.
 *
 * @example
 * const logger = createDefaultLogger({ level: 'debug' })
 */
export function createDefaultLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({ name: options.name ?? 'ri', level: options.level ?? process.env.RI_LOG_LEVEL ?? 'info' })
}

/**
 * Logs a degradation once per episode: the first `begin` of a key logs a warning, repeats are
 * silent until `end` logs the recovery. "Redis is down" is one line, not one per request.
 *
 * @example
 * const episodes = createEpisodes(logger)
 * episodes.begin('cache.l2', 'Redis unreachable; serving L1 and loaders', { err })
 * episodes.end('cache.l2', 'Redis reachable again')
 */
export interface Episodes {
  /** Returns true when this call opened a new episode (and logged). */
  begin(key: string, message: string, details?: Record<string, unknown>): boolean
  /** Returns true when an episode was open (and its end was logged). */
  end(key: string, message: string, details?: Record<string, unknown>): boolean
  active(key: string): boolean
}

export function createEpisodes(logger: Logger): Episodes {
  const open = new Map<string, number>()
  return {
    begin(key, message, details) {
      if (open.has(key)) return false
      open.set(key, Date.now())
      logger.warn({ episode: key, ...details }, message)
      return true
    },
    end(key, message, details) {
      const since = open.get(key)
      if (since === undefined) return false
      open.delete(key)
      logger.info({ episode: key, durationMs: Date.now() - since, ...details }, message)
      return true
    },
    active: (key) => open.has(key),
  }
}
