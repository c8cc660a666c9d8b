import { createOptionsChecker, type Duration, isPlainObject, type Logger, type OptionsChecker, type RiEvents } from '@ri/core'
import type { CheckFn, DetailsPolicy, HealthCheck, HealthChecksRecord } from './types.js'

/**
 * Options of `createHealth`. Every duration accepts milliseconds or a string (`'500ms'`, `'5s'`).
 *
 * @example
 * const options: HealthOptions = { checks: [redisCheck(redis)], cacheMs: '2s', details: false }
 */
export interface HealthOptions {
  /** Readiness checks: an array of `HealthCheck`, or a record `name → fn | { check, ...settings }`. */
  checks?: readonly HealthCheck[] | HealthChecksRecord
  /** Default per-check timeout. Default `1s`. */
  timeoutMs?: Duration
  /** Longest a readiness probe waits for checks; checks still running are reported `fail`. Default `2s`. */
  budgetMs?: Duration
  /** Default time a check result is reused. Default `1s`. */
  cacheMs?: Duration
  /**
   * A result older than `cacheMs` but younger than this is answered at once while one refresh runs
   * in the background; older results make the probe wait for the refresh. Default `5 × cacheMs`.
   */
  maxStaleMs?: Duration
  /** Probe paths. Defaults `/health`, `/health/ready`, `/health/startup`. */
  paths?: { liveness?: string; readiness?: string; startup?: string }
  /** Who sees `checks` and `output`. Default true (everyone); false or a predicate hides them. */
  details?: DetailsPolicy
  /** `health+json` (default, IETF draft) or `terminus` (the @nestjs/terminus shape, for migrations). */
  format?: 'health+json' | 'terminus'
  /** Liveness is I/O-free; optionally it fails when the event loop is this delayed (p99 over `windowMs`). */
  liveness?: { maxEventLoopDelayMs?: Duration; windowMs?: Duration }
  /** `manual: true` keeps startup (and readiness) failing until `startupComplete()` is called. Default false. */
  startup?: { manual?: boolean }
  /** Top-level fields of the health+json document. */
  service?: { serviceId?: string; version?: string; releaseId?: string; description?: string }
  /** Graceful shutdown; `false` installs no signal handlers and never exits (`shutdown()` still drains and runs hooks). */
  shutdown?: ShutdownOptions | false
  /** Map `cache.l2.circuit` and `throttle.insurance` events to `warn` degradations. Default true. */
  watchEvents?: boolean
  /** Event bus shared with the other ri features (default: a new one). */
  events?: RiEvents
  logger?: Logger
}

/**
 * Options of the graceful shutdown.
 *
 * @example
 * createHealth({ shutdown: { drainDelayMs: '5s', timeoutMs: '20s', hookTimeoutMs: '3s' } })
 */
export interface ShutdownOptions {
  /** Signals that start the shutdown. Default `['SIGTERM', 'SIGINT']`; `[]` installs none. */
  signals?: readonly NodeJS.Signals[]
  /** Readiness answers 503 this long before the server stops accepting. Default `5s` under Kubernetes, else `0`. */
  drainDelayMs?: Duration
  /** Longest wait for in-flight requests after the server stops accepting. Default `10s`. */
  timeoutMs?: Duration
  /** Default timeout of each cleanup hook. Default `5s`. */
  hookTimeoutMs?: Duration
  /** Called with the exit code at the end. Default `process.exit`; `false` never exits. */
  exit?: ((code: number) => void) | false
}

/**
 * Defaults, frozen; `drainDelayMs` depends on the environment and is resolved at creation.
 *
 * @example
 * DEFAULTS.cacheMs // 1000
 */
export const DEFAULTS = Object.freeze({
  timeoutMs: 1_000,
  budgetMs: 2_000,
  cacheMs: 1_000,
  staleFactor: 5,
  paths: Object.freeze({ liveness: '/health', readiness: '/health/ready', startup: '/health/startup' }),
  format: 'health+json' as const,
  livenessWindowMs: 5_000,
  signals: Object.freeze(['SIGTERM', 'SIGINT'] as NodeJS.Signals[]),
  kubernetesDrainDelayMs: 5_000,
  shutdownTimeoutMs: 10_000,
  hookTimeoutMs: 5_000,
})

/** A check after validation: durations in ms, defaults applied. */
export interface NormalizedCheck {
  readonly name: string
  readonly run: CheckFn
  readonly timeoutMs: number
  readonly cacheMs: number
  readonly maxStaleMs: number
  readonly critical: boolean
  readonly componentType: string | undefined
}

export interface NormalizedOptions {
  readonly checks: readonly NormalizedCheck[]
  readonly timeoutMs: number
  readonly budgetMs: number
  readonly cacheMs: number
  readonly maxStaleMs: number
  readonly paths: { readonly liveness: string; readonly readiness: string; readonly startup: string }
  readonly details: DetailsPolicy
  readonly format: 'health+json' | 'terminus'
  readonly maxEventLoopDelayMs: number | undefined
  readonly livenessWindowMs: number
  readonly manualStartup: boolean
  readonly service: Readonly<Record<string, string>>
  readonly shutdownEnabled: boolean
  readonly signals: readonly NodeJS.Signals[]
  readonly drainDelayMs: number
  readonly shutdownTimeoutMs: number
  readonly hookTimeoutMs: number
  readonly exit: ((code: number) => void) | false
  readonly watchEvents: boolean
}

const TOP_KEYS = [
  'checks',
  'timeoutMs',
  'budgetMs',
  'cacheMs',
  'maxStaleMs',
  'paths',
  'details',
  'format',
  'liveness',
  'startup',
  'service',
  'shutdown',
  'watchEvents',
  'events',
  'logger',
] as const
const CHECK_KEYS = ['name', 'check', 'timeoutMs', 'cacheMs', 'critical', 'componentType'] as const
const SHUTDOWN_KEYS = ['signals', 'drainDelayMs', 'timeoutMs', 'hookTimeoutMs', 'exit'] as const
const PATH_RE = /^\/[\x21-\x7e]*$/
// The draft separates component and measurement with one colon; neither part may hold another.
export const CHECK_NAME_RE = /^[^:\s]{1,100}(?::[^:\s]{1,100})?$/
const CHECK_NAME_WORDS = "a name like 'redis:responseTime' (component[:measurement], no spaces, at most one colon)"
const KNOWN_SIGNALS = new Set(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGBREAK'])

/**
 * True when the process runs in a Kubernetes pod (the kubelet always injects this variable).
 *
 * @example
 * underKubernetes() // true inside a pod: the default drain delay is 5 s
 */
export function underKubernetes(env: NodeJS.ProcessEnv = process.env): boolean {
  return typeof env.KUBERNETES_SERVICE_HOST === 'string' && env.KUBERNETES_SERVICE_HOST !== ''
}

/** Validates and defaults `createHealth` options; throws one RiConfigError naming every problem. */
export function normalizeOptions(input: HealthOptions = {}, env: NodeJS.ProcessEnv = process.env): NormalizedOptions {
  const c = createOptionsChecker('createHealth')
  c.known(input, TOP_KEYS)
  const timeoutMs = positive(c, 'timeoutMs', c.duration('timeoutMs', input.timeoutMs, DEFAULTS.timeoutMs))
  const budgetMs = positive(c, 'budgetMs', c.duration('budgetMs', input.budgetMs, DEFAULTS.budgetMs))
  const cacheMs = c.duration('cacheMs', input.cacheMs, DEFAULTS.cacheMs)
  let maxStaleMs = c.duration('maxStaleMs', input.maxStaleMs, cacheMs * DEFAULTS.staleFactor)
  if (maxStaleMs < cacheMs) {
    c.problem('maxStaleMs', input.maxStaleMs, `a duration >= cacheMs (${cacheMs} ms)`)
    maxStaleMs = cacheMs
  }

  const paths: { liveness: string; readiness: string; startup: string } = { ...DEFAULTS.paths }
  if (input.paths !== undefined) {
    if (!isPlainObject(input.paths)) c.problem('paths', input.paths, 'an object { liveness, readiness, startup }')
    else {
      c.known(input.paths, ['liveness', 'readiness', 'startup'], 'paths')
      for (const key of ['liveness', 'readiness', 'startup'] as const) {
        paths[key] = c.string(`paths.${key}`, input.paths[key], paths[key], PATH_RE, "a path starting with '/' (no spaces)")
      }
      if (new Set(Object.values(paths)).size !== 3) c.problem('paths', input.paths, 'three different paths')
    }
  }

  let details: DetailsPolicy = true
  if (input.details !== undefined) {
    if (typeof input.details === 'boolean' || typeof input.details === 'function') details = input.details
    else c.problem('details', input.details, 'true, false or a function (exchange) => boolean')
  }
  const format = c.oneOf('format', input.format, ['health+json', 'terminus'], DEFAULTS.format)

  let maxEventLoopDelayMs: number | undefined
  let livenessWindowMs: number = DEFAULTS.livenessWindowMs
  if (input.liveness !== undefined) {
    c.known(input.liveness, ['maxEventLoopDelayMs', 'windowMs'], 'liveness')
    if (isPlainObject(input.liveness)) {
      maxEventLoopDelayMs = c.duration('liveness.maxEventLoopDelayMs', input.liveness.maxEventLoopDelayMs)
      livenessWindowMs = positive(c, 'liveness.windowMs', c.duration('liveness.windowMs', input.liveness.windowMs, DEFAULTS.livenessWindowMs))
    }
  }

  let manualStartup = false
  if (input.startup !== undefined) {
    c.known(input.startup, ['manual'], 'startup')
    if (isPlainObject(input.startup)) manualStartup = c.boolean('startup.manual', input.startup.manual, false)
  }

  const service: Record<string, string> = Object.create(null)
  if (input.service !== undefined) {
    c.known(input.service, ['serviceId', 'version', 'releaseId', 'description'], 'service')
    if (isPlainObject(input.service)) {
      for (const key of ['serviceId', 'version', 'releaseId', 'description'] as const) {
        const v = input.service[key]
        if (v === undefined) continue
        if (typeof v !== 'string') c.problem(`service.${key}`, v, 'a string')
        else service[key] = v
      }
    }
  }

  let shutdownEnabled = true
  let signals: readonly NodeJS.Signals[] = DEFAULTS.signals
  const k8s = underKubernetes(env)
  let drainDelayMs = k8s ? DEFAULTS.kubernetesDrainDelayMs : 0
  let shutdownTimeoutMs: number = DEFAULTS.shutdownTimeoutMs
  let hookTimeoutMs: number = DEFAULTS.hookTimeoutMs
  let exit: ((code: number) => void) | false = defaultExit
  if (input.shutdown === false) {
    // The application owns the process lifecycle: `shutdown()` drains and runs hooks, never exits.
    shutdownEnabled = false
    signals = []
    exit = false
  } else if (input.shutdown !== undefined) {
    const s = input.shutdown
    c.known(s, SHUTDOWN_KEYS, 'shutdown')
    if (isPlainObject(s)) {
      if (s.signals !== undefined) {
        if (!Array.isArray(s.signals) || s.signals.some((x) => typeof x !== 'string' || !KNOWN_SIGNALS.has(x))) {
          c.problem('shutdown.signals', s.signals, `an array of ${[...KNOWN_SIGNALS].join(', ')}`)
        } else signals = Object.freeze([...new Set(s.signals)])
      }
      drainDelayMs = c.duration('shutdown.drainDelayMs', s.drainDelayMs, drainDelayMs)
      shutdownTimeoutMs = c.duration('shutdown.timeoutMs', s.timeoutMs, shutdownTimeoutMs)
      hookTimeoutMs = positive(c, 'shutdown.hookTimeoutMs', c.duration('shutdown.hookTimeoutMs', s.hookTimeoutMs, hookTimeoutMs))
      if (s.exit === false || typeof s.exit === 'function') exit = s.exit as ((code: number) => void) | false
      else if (s.exit !== undefined) c.problem('shutdown.exit', s.exit, 'a function (code) => void, or false')
    }
  }
  const watchEvents = c.boolean('watchEvents', input.watchEvents, true)
  if (input.events !== undefined && !isEvents(input.events)) c.problem('events', input.events, 'an RiEvents bus from createEvents()')
  if (input.logger !== undefined && !isLogger(input.logger)) c.problem('logger', input.logger, 'a pino-compatible logger')

  const checks = normalizeChecks(c, input.checks, { timeoutMs, cacheMs, maxStaleMs })
  c.done()
  return Object.freeze({
    checks,
    timeoutMs,
    budgetMs,
    cacheMs,
    maxStaleMs,
    paths: Object.freeze(paths),
    details,
    format,
    maxEventLoopDelayMs,
    livenessWindowMs,
    manualStartup,
    service: Object.freeze(service),
    shutdownEnabled,
    signals,
    drainDelayMs,
    shutdownTimeoutMs,
    hookTimeoutMs,
    exit,
    watchEvents,
  })
}

/** Validates one check (used by `createHealth` and `health.addCheck`). */
export function normalizeCheck(
  c: OptionsChecker,
  where: string,
  name: unknown,
  spec: unknown,
  defaults: { timeoutMs: number; cacheMs: number; maxStaleMs: number },
): NormalizedCheck | undefined {
  if (typeof name !== 'string' || !CHECK_NAME_RE.test(name)) c.problem(`${where}.name`, name, CHECK_NAME_WORDS)
  let fn: CheckFn | undefined
  let settings: Record<string, unknown> = {}
  if (typeof spec === 'function') fn = spec as CheckFn
  else if (isPlainObject(spec)) {
    c.known(spec, CHECK_KEYS, where)
    settings = spec
    fn = c.fn<CheckFn>(`${where}.check`, spec.check)
    if (fn === undefined) c.problem(`${where}.check`, spec.check, 'a function (signal) => Promise')
  } else {
    c.problem(where, spec, 'a check function or { name, check, timeoutMs, cacheMs, critical, componentType }')
  }
  const timeoutMs = positive(c, `${where}.timeoutMs`, c.duration(`${where}.timeoutMs`, settings.timeoutMs, defaults.timeoutMs))
  const cacheMs = c.duration(`${where}.cacheMs`, settings.cacheMs, defaults.cacheMs)
  const critical = c.boolean(`${where}.critical`, settings.critical, true)
  const componentType = settings.componentType === undefined ? undefined : c.string(`${where}.componentType`, settings.componentType, '')
  if (!fn || typeof name !== 'string') return undefined
  return Object.freeze({
    name,
    run: fn,
    timeoutMs,
    cacheMs,
    // An explicit per-check cacheMs keeps the instance's stale/cache ratio.
    maxStaleMs:
      settings.cacheMs === undefined
        ? defaults.maxStaleMs
        : cacheMs * (defaults.cacheMs > 0 ? defaults.maxStaleMs / defaults.cacheMs : DEFAULTS.staleFactor),
    critical,
    componentType: componentType || undefined,
  })
}

function normalizeChecks(
  c: OptionsChecker,
  input: HealthOptions['checks'],
  defaults: { timeoutMs: number; cacheMs: number; maxStaleMs: number },
): NormalizedCheck[] {
  const out: NormalizedCheck[] = []
  if (input === undefined) return out
  if (Array.isArray(input)) {
    input.forEach((spec, i) => {
      const n = normalizeCheck(c, `checks[${i}]`, isPlainObject(spec) ? spec.name : undefined, spec, defaults)
      if (n) out.push(n)
    })
  } else if (isPlainObject(input)) {
    for (const name of Object.keys(input)) {
      const spec = input[name]
      const n = normalizeCheck(c, `checks.${name}`, name, spec, defaults)
      if (n) out.push(n)
    }
  } else {
    c.problem('checks', input, 'an array of checks or a record name → check')
  }
  const seen = new Set<string>()
  for (const check of out) {
    if (seen.has(check.name)) c.problem('checks', check.name, 'unique check names')
    seen.add(check.name)
  }
  return out
}

function positive(c: OptionsChecker, option: string, ms: number): number {
  if (ms <= 0) {
    c.problem(option, ms, 'a duration greater than 0')
    return 1
  }
  return ms
}

function isEvents(v: unknown): v is RiEvents {
  return typeof v === 'object' && v !== null && typeof (v as RiEvents).on === 'function' && typeof (v as RiEvents).emit === 'function' && typeof (v as RiEvents).has === 'function'
}

function isLogger(v: unknown): v is Logger {
  return typeof v === 'object' && v !== null && ['info', 'warn', 'error'].every((m) => typeof (v as unknown as Record<string, unknown>)[m] === 'function')
}

function defaultExit(code: number): void {
  process.exit(code)
}
