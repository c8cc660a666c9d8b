import type { Duration, Exchange } from '@ri/core'

/**
 * Status of a check or of a whole probe, as the IETF health-check draft names it.
 *
 * @example
 * const status: HealthStatus = report.body.status // 'pass' | 'warn' | 'fail'
 */
export type HealthStatus = 'pass' | 'warn' | 'fail'

/**
 * Lifecycle of the process as the probes see it.
 *
 * @example
 * if (health.state === 'draining') stopBackgroundJobs()
 */
export type HealthState = 'starting' | 'ready' | 'draining' | 'stopped'

/**
 * One observation a check reports: a "component details" object of the draft
 * (`observedValue`, `observedUnit`, `status`, `output` ...). Extra keys are allowed and kept.
 *
 * @example
 * const result: CheckResult = { status: 'warn', observedValue: 812, observedUnit: 'ms', output: 'replica lag high' }
 */
export interface CheckResult {
  /** Default `pass`. A non-critical check's `fail` is reported as `warn`. */
  status?: HealthStatus
  observedValue?: unknown
  observedUnit?: string
  output?: string
  /** Identifies one node of a multi-node component (replica name ...). */
  componentId?: string
  /** `datastore`, `system`, `component` or any well-known term. */
  componentType?: string
  [extra: string]: unknown
}

/**
 * The function a check runs. Resolve (with nothing, or with one or several results) to pass;
 * throw or reject to fail. `signal` aborts when the check's timeout expires.
 *
 * @example
 * const check: CheckFn = async (signal) => { await fetch('http://127.0.0.1:9000/ping', { signal }) }
 */
export type CheckFn = (signal: AbortSignal) => unknown

/**
 * Per-check settings shared by the object and record forms of `checks`.
 *
 * @example
 * const settings: CheckSettings = { timeoutMs: '500ms', cacheMs: '5s', critical: false }
 */
export interface CheckSettings {
  /** Abort and report `fail` after this long. Default: `createHealth`'s `timeoutMs` (1 s). */
  timeoutMs?: Duration
  /** Reuse a result this long before running the check again. Default: `createHealth`'s `cacheMs`. */
  cacheMs?: Duration
  /** Default true. A failing non-critical check is reported as `warn` and readiness stays 200. */
  critical?: boolean
  /** The draft's `componentType` for the check's entries (`datastore`, `system` ...). */
  componentType?: string
}

/**
 * A readiness check. `name` is the key in the response's `checks`, ideally
 * `component:measurement` (`redis:responseTime`); it must not contain more than one colon.
 *
 * @example
 * const check: HealthCheck = { name: 'billing-api:responseTime', critical: false, check: (signal) => ping(signal) }
 */
export interface HealthCheck extends CheckSettings {
  readonly name: string
  readonly check: CheckFn
}

/**
 * `checks` as a record: name → function, or name → settings with `check`.
 *
 * @example
 * const checks: HealthChecksRecord = { 'search:responseTime': { critical: false, check: () => search.ping() } }
 */
export type HealthChecksRecord = Record<string, CheckFn | (CheckSettings & { check: CheckFn })>

/**
 * One entry of the response's `checks` (always an array per key, as the draft recommends).
 *
 * @example
 * const [entry] = report.body.checks!['redis:responseTime']! // { status, observedValue, observedUnit, time }
 */
export interface CheckEntry {
  readonly status: HealthStatus
  readonly componentId?: string
  readonly componentType?: string
  readonly observedValue?: unknown
  readonly observedUnit?: string
  /** ISO 8601 time the observation was made (cached results keep their original time). */
  readonly time: string
  readonly output?: string
  readonly [extra: string]: unknown
}

/**
 * What a probe computed: the HTTP status it answers with and the health+json document.
 *
 * @example
 * const report = await health.readiness()
 * if (report.httpStatus !== 200) console.log(report.body.checks)
 */
export interface HealthReport {
  readonly httpStatus: number
  readonly body: HealthBody
}

/**
 * The `application/health+json` document (draft-inadarei-api-health-check).
 *
 * @example
 * const body: HealthBody = { status: 'pass', checks: { uptime: [{ status: 'pass', observedValue: 12, observedUnit: 's', time }] } }
 */
export interface HealthBody {
  readonly status: HealthStatus
  readonly version?: string
  readonly releaseId?: string
  readonly serviceId?: string
  readonly description?: string
  readonly notes?: readonly string[]
  readonly output?: string
  readonly checks?: Readonly<Record<string, readonly CheckEntry[]>>
}

/**
 * Response shape for users migrating from @nestjs/terminus (`format: 'terminus'`).
 *
 * @example
 * const body: TerminusBody = { status: 'ok', info: { redis: { status: 'up' } }, error: {}, details: { redis: { status: 'up' } } }
 */
export interface TerminusBody {
  readonly status: 'ok' | 'error' | 'shutting_down'
  readonly info?: Record<string, { status: 'up' | 'down'; [key: string]: unknown }>
  readonly error?: Record<string, { status: 'up' | 'down'; [key: string]: unknown }>
  readonly details: Record<string, { status: 'up' | 'down'; [key: string]: unknown }>
}

/**
 * Who may see check details (`checks`, `output`): everyone, nobody, or a per-request decision.
 *
 * @example
 * const details: DetailsPolicy = (ex) => ex.header('authorization') === `Bearer ${token}`
 */
export type DetailsPolicy = boolean | ((exchange: Exchange) => boolean)

/**
 * How one cleanup hook ended.
 *
 * @example
 * const { hooks } = await health.shutdown()
 * for (const h of hooks) if (h.outcome !== 'ok') console.warn(h.name, h.outcome)
 */
export interface HookOutcome {
  readonly name: string
  readonly outcome: 'ok' | 'error' | 'timeout'
  readonly durationMs: number
  readonly error?: unknown
}

/**
 * What `shutdown()` resolves to.
 *
 * @example
 * const result = await health.shutdown('deploy') // { code: 0, timedOut: false, hooks: [...] }
 */
export interface ShutdownResult {
  /** 0 when every request drained and every hook finished in time, else 1. */
  readonly code: 0 | 1
  readonly reason: string
  /** The in-flight wait hit `shutdown.timeoutMs` and remaining connections were destroyed. */
  readonly timedOut: boolean
  readonly durationMs: number
  readonly hooks: readonly HookOutcome[]
}
