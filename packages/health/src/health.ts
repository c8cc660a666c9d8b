import {
  type Answer,
  createEpisodes,
  createEvents,
  createOptionsChecker,
  type Exchange,
  type Feature,
  type Logger,
  noopLogger,
  type RiEvents,
} from '@ri/core'
import { createLoopDelayMonitor, type LoopDelayMonitor } from './checks/loop-delay.js'
import { type HealthOptions, normalizeCheck, normalizeOptions } from './options.js'
import { HEALTH_JSON_HEADERS, httpStatusOf, statusOnly, TERMINUS_HEADERS, toTerminus } from './report.js'
import { type CheckOutcome, type CheckRunner, createCheckRunner, errorOutput, round, worst } from './runner.js'
import { type AttachableServer, createShutdown, type ShutdownHook, type ShutdownHookOptions } from './shutdown.js'
import type { CheckEntry, HealthBody, HealthCheck, HealthReport, HealthState, HealthStatus, ShutdownResult } from './types.js'

/**
 * Liveness, readiness and startup probes with cached checks, plus graceful shutdown.
 * Create one per process with `createHealth`.
 *
 * @example
 * const health = createHealth({ checks: [redisCheck(redis), pgCheck(pool)], cacheMs: '2s' })
 * const server = http.createServer(createNodeHandler(createPipeline([health.feature()]), routes))
 * health.attach(server)
 * health.onShutdown('redis', () => redis.quit())
 * server.listen(3000)
 */
export interface Health {
  /** The event bus: `health.check`, `health.state`; listens to `health.degradation`. */
  readonly events: RiEvents
  readonly state: HealthState
  /** Requests in flight on attached servers. */
  readonly inFlight: number
  /** A core `Feature` answering the three probe paths (and `Connection: close` while draining). */
  feature(): Feature
  /** Tracks a server's sockets and requests so `shutdown()` can drain it. Returns a detach function. */
  attach(server: AttachableServer): () => void
  /** Adds a readiness check after creation (feature packages, lazily created clients). */
  addCheck(check: HealthCheck): void
  /** Liveness: no I/O. `fail` (503) only when the event-loop delay threshold is exceeded. */
  liveness(): HealthReport
  /** Readiness: runs (or reuses) the checks; 503 while starting, draining or on a critical failure. */
  readiness(): Promise<HealthReport>
  /** Startup: 200 once startup is complete. */
  startup(): HealthReport
  /** Registers a startup task; startup passes when every task resolved (and, if manual, after `startupComplete()`). */
  startupTask(name: string, task: Promise<unknown> | (() => unknown)): Promise<void>
  /** Marks startup complete. */
  startupComplete(): void
  /** Reports a degradation shown by readiness as `warn` (status stays 200). */
  degrade(component: string, output?: string): void
  /** Clears a degradation. */
  recover(component: string): void
  /** Registers a cleanup hook; hooks run in reverse registration order during shutdown. */
  onShutdown(name: string, fn: ShutdownHook, options?: ShutdownHookOptions): () => void
  /** Starts the graceful shutdown (idempotent: every caller gets the same promise). */
  shutdown(reason?: string): Promise<ShutdownResult>
  /** Removes signal handlers and event subscriptions without shutting down (tests, hot reload). */
  close(): void
}

interface Degradation {
  readonly entry: CheckEntry
}

const DRAINING_OUTPUT = 'shutting down'
const STARTING_OUTPUT = 'starting'

/**
 * Creates the probes and the shutdown coordinator. Options are validated once; a bad option
 * throws one `RiConfigError` naming each problem.
 *
 * @example
 * import { createHealth, redisCheck, pgCheck, eventLoopCheck } from '@ri/health'
 * const health = createHealth({
 *   checks: [redisCheck(redis), pgCheck(pool, { critical: true }), eventLoopCheck({ maxDelayMs: 200, critical: false })],
 *   timeoutMs: '1s',
 *   cacheMs: '2s',
 *   shutdown: { drainDelayMs: '5s', timeoutMs: '20s' },
 * })
 */
export function createHealth(input: HealthOptions = {}): Health {
  const options = normalizeOptions(input)
  const events = input.events ?? createEvents()
  const logger: Logger = input.logger ?? noopLogger
  const episodes = createEpisodes(logger)
  const terminus = options.format === 'terminus'
  const headers = terminus ? TERMINUS_HEADERS : HEALTH_JSON_HEADERS
  const details = options.details
  const paths = options.paths
  const answerOf = (status: number, body: string): Answer => ({ status, headers, body })

  let state: HealthState = 'starting'
  // Bumped whenever anything a readiness body shows changes; bodies are cached per revision.
  let revision = 0
  const bump = () => {
    revision++
  }
  const runners: CheckRunner[] = []
  const names = new Set<string>()
  const degradations = new Map<string, Degradation>()

  const setState = (next: HealthState) => {
    if (state === next) return
    state = next
    bump()
    if (events.has('health.state')) events.emit('health.state', { state: next })
  }

  const runnerContext = { events, episodes, onChange: bump }
  const add = (check: ReturnType<typeof normalizeCheck>) => {
    if (!check) return
    names.add(check.name)
    runners.push(createCheckRunner(check, runnerContext))
    bump()
  }
  for (const check of options.checks) add(check)

  // ---- startup -------------------------------------------------------------------------------
  let pendingTasks = 0
  let completeCalled = false
  const failedTasks = new Map<string, string>()
  const taskEntries = new Map<string, CheckEntry>()
  const evaluateStartup = () => {
    if (state !== 'starting') return
    if (pendingTasks === 0 && failedTasks.size === 0 && (!options.manualStartup || completeCalled)) setState('ready')
  }

  // ---- liveness ------------------------------------------------------------------------------
  const loopMonitor: LoopDelayMonitor | undefined =
    options.maxEventLoopDelayMs === undefined ? undefined : createLoopDelayMonitor(options.livenessWindowMs)
  const livenessPassHidden = answerOf(200, statusOnly('pass', terminus))
  const livenessFailHidden = answerOf(503, statusOnly('fail', terminus))

  const liveness = (): HealthReport => {
    const time = new Date().toISOString()
    const checks: Record<string, CheckEntry[]> = {
      uptime: [{ status: 'pass', componentType: 'system', observedValue: round(process.uptime()), observedUnit: 's', time }],
    }
    let status: HealthStatus = 'pass'
    if (loopMonitor) {
      const p99 = round(loopMonitor.p99Ms())
      const over = p99 > options.maxEventLoopDelayMs!
      if (over) status = 'fail'
      checks['eventLoop:delay'] = [
        {
          status: over ? 'fail' : 'pass',
          componentType: 'system',
          observedValue: p99,
          observedUnit: 'ms',
          time,
          ...(over ? { output: `event-loop delay p99 ${p99} ms exceeds ${options.maxEventLoopDelayMs} ms` } : {}),
        },
      ]
    }
    return { httpStatus: httpStatusOf(status), body: document(status, checks, undefined) }
  }

  // ---- readiness -----------------------------------------------------------------------------
  const gateReport = (): HealthReport | undefined => {
    if (state === 'draining' || state === 'stopped') return { httpStatus: 503, body: document('fail', undefined, DRAINING_OUTPUT) }
    if (state === 'starting') {
      evaluateStartup()
      if (state === 'starting') return { httpStatus: 503, body: document('fail', undefined, STARTING_OUTPUT) }
    }
    return undefined
  }

  const assemble = (outcomes: ReadonlyArray<CheckOutcome | undefined>, late: readonly boolean[]): HealthReport => {
    let status: HealthStatus = 'pass'
    const checks: Record<string, readonly CheckEntry[]> = {}
    outcomes.forEach((outcome, i) => {
      const runner = runners[i]!
      if (late[i] || !outcome) {
        const s: HealthStatus = runner.check.critical ? 'fail' : 'warn'
        checks[runner.check.name] = [
          { status: s, ...(runner.check.componentType ? { componentType: runner.check.componentType } : {}), time: new Date().toISOString(), output: `no result within the ${options.budgetMs} ms budget` },
        ]
        status = worst(status, s)
        return
      }
      checks[outcome.name] = outcome.entries
      status = worst(status, outcome.status)
    })
    for (const [component, d] of degradations) {
      checks[component] = [d.entry]
      status = worst(status, 'warn')
    }
    return { httpStatus: httpStatusOf(status), body: document(status, checks, undefined) }
  }

  const readinessSyncOrAsync = (): HealthReport | Promise<HealthReport> => {
    const gate = gateReport()
    if (gate) return gate
    const now = performance.now()
    let waiting: Promise<unknown>[] | undefined
    const got: Array<CheckOutcome | Promise<CheckOutcome>> = new Array(runners.length)
    for (let i = 0; i < runners.length; i++) {
      const r = runners[i]!.get(now)
      got[i] = r
      if (r instanceof Promise) (waiting ??= []).push(r)
    }
    if (!waiting) return assemble(got as CheckOutcome[], [])
    return waitBudget(got)
  }

  const waitBudget = async (got: Array<CheckOutcome | Promise<CheckOutcome>>): Promise<HealthReport> => {
    const results: Array<CheckOutcome | undefined> = got.map((g) => (g instanceof Promise ? undefined : g))
    const late = got.map((g) => g instanceof Promise)
    let timer: NodeJS.Timeout | undefined
    const budget = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, options.budgetMs)
      timer.unref?.()
    })
    const all = Promise.all(
      got.map(async (g, i) => {
        if (!(g instanceof Promise)) return
        results[i] = await g
        late[i] = false
      }),
    )
    await Promise.race([all, budget])
    clearTimeout(timer)
    // The gate may have closed while waiting (shutdown started).
    return gateReport() ?? assemble(results, late)
  }

  // Cached answers: rebuilt only when the revision (or the details decision) changes.
  let cachedRevision = -1
  let cachedFull: Answer | undefined
  let cachedHidden: Answer | undefined
  let cachedReport: HealthReport | undefined

  const readinessAnswer = (showDetails: boolean): Answer | Promise<Answer> => {
    // Fast path: nothing changed and every result is still fresh.
    const now = performance.now()
    if (cachedRevision === revision && cachedReport && allFresh(now)) return showDetails ? (cachedFull ??= render(cachedReport, true)) : (cachedHidden ??= render(cachedReport, false))
    const report = readinessSyncOrAsync()
    if (report instanceof Promise) return report.then((r) => remember(r, showDetails))
    return remember(report, showDetails)
  }

  // A report is assembled from the state current at that moment (late results bump the
  // revision when they land), so it is valid for the revision current now.
  const remember = (report: HealthReport, showDetails: boolean): Answer => {
    cachedRevision = revision
    cachedReport = report
    const answer = render(report, showDetails)
    cachedFull = showDetails ? answer : undefined
    cachedHidden = showDetails ? undefined : answer
    return answer
  }

  const allFresh = (now: number) => {
    if (state !== 'ready') return true
    for (let i = 0; i < runners.length; i++) {
      const cur = runners[i]!.current
      if (!cur || now - cur.at >= runners[i]!.check.cacheMs) return false
    }
    return true
  }

  const render = (report: HealthReport, showDetails: boolean): Answer => {
    const shuttingDown = state === 'draining' || state === 'stopped'
    if (!showDetails) return answerOf(report.httpStatus, statusOnly(report.body.status, terminus, shuttingDown))
    const body = terminus ? toTerminus(report.body, shuttingDown) : report.body
    return answerOf(report.httpStatus, JSON.stringify(body))
  }

  // ---- startup probe -------------------------------------------------------------------------
  const startup = (): HealthReport => {
    evaluateStartup()
    const checks: Record<string, CheckEntry[]> = {}
    if (taskEntries.size > 0) checks['startup:tasks'] = [...taskEntries.values()]
    if (state === 'starting') {
      const output =
        failedTasks.size > 0
          ? `startup task failed: ${[...failedTasks].map(([n, e]) => `${n} (${e})`).join(', ')}`
          : pendingTasks > 0
            ? `${pendingTasks} startup task(s) pending`
            : 'waiting for startupComplete()'
      return { httpStatus: 503, body: document('fail', taskEntries.size ? checks : undefined, output) }
    }
    return { httpStatus: 200, body: document('pass', taskEntries.size ? checks : undefined, undefined) }
  }

  // ---- documents -----------------------------------------------------------------------------
  const serviceFields = options.service
  function document(status: HealthStatus, checks: Record<string, readonly CheckEntry[]> | undefined, output: string | undefined): HealthBody {
    const body: Record<string, unknown> = { status }
    for (const key of ['version', 'releaseId', 'serviceId', 'description'] as const) {
      if (serviceFields[key] !== undefined) body[key] = serviceFields[key]
    }
    if (output !== undefined) body.output = output
    if (checks !== undefined) body.checks = checks
    return body as unknown as HealthBody
  }

  const showDetailsFor = (ex: Exchange): boolean => {
    if (typeof details === 'boolean') return details
    try {
      return details(ex) === true
    } catch (error) {
      episodes.begin('health.details', 'health details predicate threw; details hidden', { err: error })
      return false
    }
  }

  // ---- shutdown ------------------------------------------------------------------------------
  const coordinator = createShutdown({
    options,
    logger,
    onDraining: () => setState('draining'),
    onStopped: () => setState('stopped'),
  })
  if (options.shutdownEnabled) coordinator.installSignals()

  // ---- degradations --------------------------------------------------------------------------
  const degrade = (component: string, output?: string) => {
    if (typeof component !== 'string' || component === '') return
    const prev = degradations.get(component)
    if (prev && prev.entry.output === output) return
    degradations.set(component, {
      entry: { status: 'warn', componentType: 'component', time: new Date().toISOString(), ...(output ? { output } : {}) },
    })
    bump()
  }
  const recover = (component: string) => {
    if (degradations.delete(component)) bump()
  }
  const unsubscribe: Array<() => void> = []
  unsubscribe.push(events.on('health.degradation', (e) => (e.degraded ? degrade(e.component, e.output) : recover(e.component))))
  if (options.watchEvents) {
    unsubscribe.push(
      events.on('cache.l2.circuit', (e) => {
        if (e.state === 'open') degrade('cache:l2', 'L2 (Redis) circuit open; serving L1 and loaders')
        else if (e.state === 'closed') recover('cache:l2')
      }),
      events.on('throttle.insurance', (e) => {
        if (e.state === 'engaged') degrade('throttle:store', 'rate-limit store unreachable; in-memory insurance limiter engaged')
        else recover('throttle:store')
      }),
    )
  }

  // ---- feature -------------------------------------------------------------------------------
  let feature: Feature | undefined
  const makeFeature = (): Feature => ({
    name: 'health',
    onRequest(ex) {
      const path = ex.path
      if (path !== paths.liveness && path !== paths.readiness && path !== paths.startup) return undefined
      if (ex.method !== 'GET' && ex.method !== 'HEAD') return undefined
      // Answered before any router: the probe path is its route template (metrics and the slow
      // log label probes by path, not as unmatched requests; three fixed paths, bounded).
      if (ex.route === undefined) ex.route = path
      const show = showDetailsFor(ex)
      if (path === paths.readiness) return readinessAnswer(show)
      if (path === paths.liveness) {
        const report = liveness()
        if (!show) return report.httpStatus === 200 ? livenessPassHidden : livenessFailHidden
        return render(report, true)
      }
      return render(startup(), show)
    },
    onHeaders(ex) {
      if (state === 'draining' || state === 'stopped') ex.setHeader('connection', 'close')
    },
  })

  return {
    events,
    get state() {
      return state
    },
    get inFlight() {
      return coordinator.inFlight
    },
    feature() {
      return (feature ??= makeFeature())
    },
    attach: coordinator.attach,
    addCheck(check) {
      const c = createOptionsChecker('health.addCheck')
      const n = normalizeCheck(c, 'check', (check as HealthCheck | undefined)?.name, check, options)
      if (n && names.has(n.name)) c.problem('check.name', n.name, 'a name not used by another check')
      c.done()
      add(n)
    },
    liveness,
    async readiness() {
      return readinessSyncOrAsync()
    },
    startup,
    startupTask(name, task) {
      if (typeof name !== 'string' || name === '') throw new TypeError('startupTask(name, task): name must be a non-empty string')
      pendingTasks++
      taskEntries.set(name, { status: 'warn', componentId: name, time: new Date().toISOString(), output: 'pending' })
      bump()
      const started = performance.now()
      return Promise.resolve()
        .then(() => (typeof task === 'function' ? task() : task))
        .then(
          () => {
            taskEntries.set(name, { status: 'pass', componentId: name, observedValue: round(performance.now() - started), observedUnit: 'ms', time: new Date().toISOString() })
          },
          (error: unknown) => {
            const output = errorOutput(error)
            failedTasks.set(name, output)
            taskEntries.set(name, { status: 'fail', componentId: name, time: new Date().toISOString(), output })
            logger.error({ err: error, task: name }, `startup task "${name}" failed; startup probe fails`)
          },
        )
        .finally(() => {
          pendingTasks--
          bump()
          evaluateStartup()
        })
    },
    startupComplete() {
      completeCalled = true
      evaluateStartup()
    },
    degrade,
    recover,
    onShutdown: coordinator.onShutdown,
    shutdown: coordinator.shutdown,
    close() {
      coordinator.removeSignals()
      for (const off of unsubscribe.splice(0)) off()
      loopMonitor?.stop()
    },
  }
}

