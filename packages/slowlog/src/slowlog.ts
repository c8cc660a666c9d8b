import { context as otelContext, trace } from '@opentelemetry/api'
import {
  createEvents,
  createOptionsChecker,
  type Duration,
  type Exchange,
  type Feature,
  type FinishInfo,
  isPlainObject,
  type Logger,
  renderServerTiming,
  type RiEvents,
} from '@ri/core'
import { pino } from 'pino'

/** Headers always redacted when headers are logged. */
export const SENSITIVE_HEADERS: readonly string[] = Object.freeze(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key'])
/** What a redacted value is replaced with. */
export const CENSOR = '[Redacted]'

/** Defaults of `createSlowLog`, frozen. */
export const DEFAULTS = Object.freeze({
  thresholdMs: 500,
  sampleRate: 0,
  headers: false,
  query: 'redact' as QueryMode,
  serverTiming: false,
  errors: true,
  level: 'warn' as SlowLogLevel,
})

export type QueryMode = 'redact' | 'omit' | 'keep'
export type SlowLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error'

export interface SlowLogOptions {
  /**
   * Where lines go. A pino logger gets a child with `redact` configured; anything else with the
   * ri `Logger` shape works too (header redaction is then done by ri alone). Default: pino on
   * stdout through an asynchronous destination.
   */
  logger?: Logger
  /** Requests slower than this are logged. Milliseconds or a duration string. Default 500 ms. */
  thresholdMs?: Duration
  /** Per-route thresholds by route template (`'/search'` or `'POST /upload'`); `false` never logs the route as slow. */
  routes?: Readonly<Record<string, Duration | false>>
  /** Extra pino redact paths, e.g. `'headers["x-session"]'` (headers are also redacted by ri itself) or `'path'`. */
  redact?: readonly string[]
  /** Share of fast requests logged anyway (0..1). Default 0. */
  sampleRate?: number
  /** Log request headers (sensitive ones redacted). Default false. */
  headers?: boolean
  /** Query string in `path`: values replaced (`redact`, default), dropped (`omit`) or kept (`keep`). */
  query?: QueryMode
  /** Add a `Server-Timing` header from the request's marks: true, or a predicate per request. Default false. */
  serverTiming?: boolean | ((exchange: Exchange) => boolean)
  /** Always log 5xx responses, however fast. Default true. */
  errors?: boolean
  /** Level of slow and 5xx lines (sampled lines use `info`). Default `warn`. */
  level?: SlowLogLevel
  /** Bus on which `slowlog.slow` is published for @ri/metrics. Default: a new one. */
  events?: RiEvents
}

/**
 * The slow-request logger.
 *
 * @example
 * const slowlog = createSlowLog({ thresholdMs: 300, routes: { '/reports/:id': '2s' } })
 * const pipeline = createPipeline([metrics.feature(), slowlog.feature()])
 * metrics.observe(slowlog.events)
 */
export interface SlowLog {
  readonly events: RiEvents
  /** The core Feature: `onHeaders` adds Server-Timing (when enabled), `onResponse` logs. */
  feature(): Feature
  /** The threshold (ms) that applies to a route template and method; `Infinity` when disabled. */
  thresholdFor(route: string | undefined, method?: string): number
  /** Flushes the logger's destination when it supports it (pino). */
  flush(): Promise<void>
}

/** One logged line, as written (before redaction of header values by pino). */
export interface SlowLogLine {
  reason: 'slow' | 'error' | 'sampled'
  method: string
  /** Route template, `null` when no route matched. */
  route: string | null
  path: string
  status: number
  durationMs: number
  thresholdMs: number | undefined
  timings: Record<string, number>
  requestId: string
  aborted: boolean
  trace_id?: string
  span_id?: string
  headers?: Record<string, string | string[]>
}

const OPTIONS = ['logger', 'thresholdMs', 'routes', 'redact', 'sampleRate', 'headers', 'query', 'serverTiming', 'errors', 'level', 'events'] as const
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const
const THRESHOLD_KEY = 'slowlog.thresholdMs'
const PINO_SERIALIZERS = Symbol.for('pino.serializers')
const HEADER_PATH_RE = /^headers(?:\.([A-Za-z0-9_$-]+)|\["([^"]+)"\]|\['([^']+)'\])$/
const METHOD_ROUTE_RE = /^([A-Z]+) (\/.*)$/

/**
 * Overrides the slow threshold of one request (what `@SlowThreshold()` does in the Nest
 * adapter). Takes effect when set before the response finishes.
 *
 * @example
 * setSlowThreshold(exchange, 2000)
 */
export function setSlowThreshold(exchange: Exchange, thresholdMs: number): void {
  exchange.state[THRESHOLD_KEY] = thresholdMs
}

/**
 * A route-level core `Feature` that sets this route's slow threshold (`setSlowThreshold` in
 * `onRequest`): what the adapters' `slowThreshold(ms)` helpers, Fastify's route `config.slowMs`
 * and Nest's `@SlowThreshold(ms)` attach. `false` never logs the route as slow. The threshold is
 * validated here, once (RiConfigError).
 *
 * @example
 * createPipeline([slowlog.feature(), slowThreshold('2s')])
 */
export function slowThreshold(threshold: Duration | false): Feature {
  const check = createOptionsChecker('slowThreshold')
  const ms = threshold === false ? Number.POSITIVE_INFINITY : check.duration('threshold', threshold, Number.NaN)
  if (threshold !== false && check.problems.length === 0 && !(ms >= 0)) check.problem('threshold', threshold, 'a duration (ms or a string like "2s") or false')
  check.done()
  return {
    name: 'slow-threshold',
    onRequest(ex) {
      ex.state[THRESHOLD_KEY] = ms
    },
  }
}

/**
 * Creates the slow-request logger. Fast requests cost one comparison of the duration the
 * pipeline measured anyway; only slow, failed or sampled requests build a log line.
 *
 * @example
 * import { createSlowLog } from '@ri/slowlog'
 * import { pino } from 'pino'
 * const slowlog = createSlowLog({
 *   logger: pino(pino.destination({ sync: false })),
 *   thresholdMs: '250ms',
 *   routes: { 'GET /export': '5s', '/stream': false },
 *   headers: true,
 *   redact: ['headers["x-session"]'],
 *   serverTiming: (ex) => ex.header('x-internal') === '1',
 * })
 */
export function createSlowLog(options: SlowLogOptions = {}): SlowLog {
  const check = createOptionsChecker('createSlowLog')
  check.known(options, OPTIONS)
  const thresholdMs = check.duration('thresholdMs', options.thresholdMs, DEFAULTS.thresholdMs)
  const sampleRate = check.number('sampleRate', options.sampleRate, DEFAULTS.sampleRate, { min: 0, max: 1 })
  const logHeaders = check.boolean('headers', options.headers, DEFAULTS.headers)
  const queryMode = check.oneOf('query', options.query, ['redact', 'omit', 'keep'], DEFAULTS.query)
  const logErrors = check.boolean('errors', options.errors, DEFAULTS.errors)
  const level = check.oneOf('level', options.level, LEVELS, DEFAULTS.level)
  let serverTiming: false | ((ex: Exchange) => boolean) = false
  if (options.serverTiming === true) serverTiming = () => true
  else if (typeof options.serverTiming === 'function') serverTiming = options.serverTiming
  else if (options.serverTiming !== undefined && options.serverTiming !== false) {
    check.problem('serverTiming', options.serverTiming, 'true, false or a function (exchange) => boolean')
  }
  // Per-route thresholds: `route` for any method, `METHOD route` for one.
  const anyMethod = new Map<string, number>()
  const byMethod = new Map<string, number>()
  if (options.routes !== undefined) {
    if (!isPlainObject(options.routes)) check.problem('routes', options.routes, 'an object of route template -> duration or false')
    else {
      for (const key of Object.keys(options.routes)) {
        const raw = (options.routes as Record<string, unknown>)[key]
        const ms = raw === false ? Number.POSITIVE_INFINITY : check.duration(`routes["${key}"]`, raw, Number.NaN)
        if (Number.isNaN(ms)) continue
        const m = METHOD_ROUTE_RE.exec(key)
        if (m) byMethod.set(`${m[1]} ${m[2]}`, ms)
        else if (key.startsWith('/')) anyMethod.set(key, ms)
        else check.problem(`routes["${key}"]`, key, 'a route template starting with "/", optionally prefixed by an upper-case method and a space')
      }
    }
  }
  const redactHeaders = new Set(SENSITIVE_HEADERS)
  const redactPaths: string[] = []
  if (options.redact !== undefined) {
    if (!Array.isArray(options.redact)) check.problem('redact', options.redact, 'an array of pino redact paths')
    else
      options.redact.forEach((entry: unknown, i: number) => {
        if (typeof entry !== 'string' || entry === '') return check.problem(`redact[${i}]`, entry, 'a pino redact path such as \'headers["x-session"]\' or \'user.email\'')
        // Header paths are also applied by ri itself, so they hold with loggers other than pino.
        const header = HEADER_PATH_RE.exec(entry)
        if (header) redactHeaders.add((header[1] ?? header[2] ?? header[3]!).toLowerCase())
        else redactPaths.push(entry)
      })
  }
  if (options.logger !== undefined && (typeof options.logger !== 'object' || options.logger === null || typeof options.logger.warn !== 'function')) {
    check.problem('logger', options.logger, 'a pino logger or an object with the ri Logger methods')
  }
  if (options.events !== undefined && (typeof options.events !== 'object' || typeof options.events.emit !== 'function')) {
    check.problem('events', options.events, 'an RiEvents bus from createEvents()')
  }
  const paths = [...[...redactHeaders].map((h) => `headers[${JSON.stringify(h)}]`), ...redactPaths]
  let logger: Logger
  try {
    logger = buildLogger(options.logger, paths)
  } catch (error) {
    // pino validates redact paths when the logger is built.
    check.problem('redact', options.redact, `valid pino redact paths (${error instanceof Error ? error.message : String(error)})`)
    logger = buildLogger(options.logger, [...redactHeaders].map((h) => `headers[${JSON.stringify(h)}]`))
  }
  check.done()

  const events = options.events ?? createEvents()
  const hasOverrides = anyMethod.size > 0 || byMethod.size > 0
  // The smallest threshold any request can have: below it nothing is looked up.
  let floor = thresholdMs
  for (const v of anyMethod.values()) floor = Math.min(floor, v)
  for (const v of byMethod.values()) floor = Math.min(floor, v)
  const write = logger[level].bind(logger)
  const writeSampled = logger.info.bind(logger)

  const thresholdFor = (route: string | undefined, method?: string): number => {
    if (!hasOverrides || route === undefined) return thresholdMs
    if (method !== undefined && byMethod.size > 0) {
      const m = byMethod.get(`${method} ${route}`)
      if (m !== undefined) return m
    }
    return anyMethod.get(route) ?? thresholdMs
  }

  const renderPath = (ex: Exchange): string => {
    if (ex.query === '' || queryMode === 'omit') return ex.path
    if (queryMode === 'keep') return `${ex.path}?${ex.query}`
    return `${ex.path}?${redactQuery(ex.query)}`
  }

  const copyHeaders = (ex: Exchange): Record<string, string | string[]> => {
    const out: Record<string, string | string[]> = Object.create(null)
    for (const name of Object.keys(ex.headers)) {
      const value = ex.headers[name]
      if (value === undefined) continue
      out[name] = redactHeaders.has(name) ? CENSOR : (value as string | string[])
    }
    return out
  }

  const log = (ex: Exchange, info: FinishInfo, reason: SlowLogLine['reason'], threshold: number | undefined) => {
    const line: SlowLogLine = {
      reason,
      method: ex.method,
      route: ex.route ?? null,
      path: renderPath(ex),
      status: info.status,
      durationMs: Math.round(info.durationMs * 1000) / 1000,
      thresholdMs: threshold,
      timings: ex.timings.toJSON(),
      requestId: ex.requestId,
      aborted: info.aborted,
    }
    // Read when the line is written: the response finishes in the request's async context
    // (res.end is called from the handler), so the request's span is the active one. Reading it
    // here rather than in onRequest keeps fast requests free of any tracing call.
    const span = trace.getSpan(otelContext.active())
    const sc = span?.spanContext()
    if (sc && sc.traceId !== '00000000000000000000000000000000') {
      line.trace_id = sc.traceId
      line.span_id = sc.spanId
    }
    if (logHeaders) line.headers = copyHeaders(ex)
    const message = reason === 'slow' ? 'slow request' : reason === 'error' ? 'request failed' : 'request sampled'
    if (reason === 'sampled') writeSampled(line, message)
    else write(line, message)
    if (reason === 'slow' && events.has('slowlog.slow')) events.emit('slowlog.slow', { method: ex.method, route: ex.route, durationMs: info.durationMs })
  }

  const errorStatus = logErrors ? 500 : Number.POSITIVE_INFINITY
  const onResponse = (ex: Exchange, info: FinishInfo): void => {
    // The fast path: one comparison against the smallest threshold in force (plus the status
    // for the always-log-5xx rule and a miss on the per-request override).
    if (info.durationMs < floor && info.status < errorStatus && ex.state[THRESHOLD_KEY] === undefined) {
      if (sampleRate > 0 && Math.random() < sampleRate) log(ex, info, 'sampled', undefined)
      return
    }
    const override = ex.state[THRESHOLD_KEY]
    const threshold = typeof override === 'number' ? override : thresholdFor(ex.route, ex.method)
    if (info.durationMs >= threshold) log(ex, info, 'slow', threshold)
    else if (info.status >= errorStatus) log(ex, info, 'error', threshold === Number.POSITIVE_INFINITY ? undefined : threshold)
    else if (sampleRate > 0 && Math.random() < sampleRate) log(ex, info, 'sampled', undefined)
  }

  const feature: Feature = {
    name: 'slowlog',
    onResponse,
  }
  if (serverTiming) {
    const wants = serverTiming
    feature.onHeaders = (ex) => {
      if (wants(ex)) ex.setHeader('server-timing', renderServerTiming(ex.timings.entries, ex.elapsed()))
    }
  }

  return {
    events,
    feature: () => feature,
    thresholdFor,
    flush() {
      const flush = (logger as unknown as { flush?: (cb?: (err?: Error) => void) => void }).flush
      if (typeof flush !== 'function') return Promise.resolve()
      return new Promise((resolve) => flush.call(logger, () => resolve()))
    },
  }
}

/** Replaces every query value (and bare key) with the censor, keeping parameter names. */
export function redactQuery(query: string): string {
  let out = ''
  for (const part of query.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const name = eq === -1 ? CENSOR : part.slice(0, Math.min(eq, 64))
    if (out !== '') out += '&'
    out += eq === -1 ? CENSOR : `${name}=${CENSOR}`
  }
  return out
}

function buildLogger(given: Logger | undefined, paths: string[]): Logger {
  const redact = { paths, censor: CENSOR }
  if (given === undefined) {
    // Asynchronous destination: the request path hands a string to a buffer, the write happens later.
    return pino({ name: 'ri-slowlog', redact }, pino.destination({ dest: 1, sync: false })) as unknown as Logger
  }
  if ((given as unknown as Record<symbol, unknown>)[PINO_SERIALIZERS] !== undefined) {
    const child = (given as unknown as pino.Logger).child({ component: 'slowlog' }, { redact })
    return child as unknown as Logger
  }
  return given.child({ component: 'slowlog' })
}
