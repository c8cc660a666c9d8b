import { type Episodes, isPlainObject, type RiEvents, RiTimeoutError } from '@ri/core'
import type { NormalizedCheck } from './options.js'
import type { CheckEntry, HealthStatus } from './types.js'

/** The last computed result of one check. */
export interface CheckOutcome {
  readonly name: string
  /** Worst entry status, after the critical mapping (a non-critical `fail` is `warn`). */
  readonly status: HealthStatus
  readonly entries: readonly CheckEntry[]
  /** `performance.now()` when the result was recorded. */
  readonly at: number
  readonly durationMs: number
}

/**
 * Runs one check with caching, single-flight and a timeout. `get()` answers from the cache
 * without waiting while the result is younger than `maxStaleMs` (refreshing in the background
 * once it is older than `cacheMs`), so a probe flood costs at most one dependency call per
 * `cacheMs`. A call still running past its timeout is never stacked with a second one.
 */
export interface CheckRunner {
  readonly check: NormalizedCheck
  /** Dependency calls started so far. */
  readonly calls: number
  readonly current: CheckOutcome | undefined
  get(now: number): CheckOutcome | Promise<CheckOutcome>
  /** Forces a refresh (joins the one in flight). */
  refresh(now: number): Promise<CheckOutcome>
}

export interface RunnerContext {
  readonly events: RiEvents
  readonly episodes: Episodes
  /** Called whenever `current` changes (the probe bodies are cached by revision). */
  onChange(): void
}

const RANK: Readonly<Record<HealthStatus, number>> = Object.freeze({ pass: 0, warn: 1, fail: 2 })
const STATUSES = new Set<string>(['pass', 'warn', 'fail'])

/** The worse of two statuses. */
export function worst(a: HealthStatus, b: HealthStatus): HealthStatus {
  return RANK[a] >= RANK[b] ? a : b
}

export function createCheckRunner(check: NormalizedCheck, ctx: RunnerContext): CheckRunner {
  let current: CheckOutcome | undefined
  let refreshing: Promise<CheckOutcome> | undefined
  let calls = 0
  // The call in flight (it may outlive its timeout): id and start time.
  let rawId = 0
  let rawSince = -1
  // A check that ignores its abort signal must not wedge readiness forever.
  const abandonAfterMs = Math.max(10 * check.timeoutMs, 10_000)
  const episodeKey = `health.check.${check.name}`

  const record = (outcome: CheckOutcome): CheckOutcome => {
    current = outcome
    refreshing = undefined
    ctx.onChange()
    if (ctx.events.has('health.check')) {
      ctx.events.emit('health.check', { name: check.name, status: outcome.status, durationMs: outcome.durationMs })
    }
    const failing = outcome.entries.find((e) => e.status !== 'pass' && e.output)
    if (outcome.status === 'pass') ctx.episodes.end(episodeKey, `health check "${check.name}" passes again`)
    else if (failing || outcome.status === 'fail') {
      ctx.episodes.begin(episodeKey, `health check "${check.name}" reports ${outcome.status}`, { output: failing?.output })
    }
    return outcome
  }

  const failure = (output: string, started: number, now = performance.now()): CheckOutcome => {
    const status: HealthStatus = check.critical ? 'fail' : 'warn'
    const entry: CheckEntry = withType({ status, time: new Date().toISOString(), output }, check.componentType)
    return { name: check.name, status, entries: [entry], at: now, durationMs: now - started }
  }

  const start = (): Promise<CheckOutcome> => {
    const started = performance.now()
    const id = ++rawId
    rawSince = started
    calls++
    const controller = new AbortController()
    let raw: Promise<unknown>
    try {
      raw = Promise.resolve(check.run(controller.signal))
    } catch (error) {
      raw = Promise.reject(error)
    }
    const promise = new Promise<CheckOutcome>((resolve) => {
      let settled = false
      const timer = setTimeout(() => {
        if (settled) return
        settled = true
        controller.abort(new RiTimeoutError(`Health check "${check.name}"`, check.timeoutMs))
        resolve(record(failure(`timed out after ${check.timeoutMs} ms`, started)))
      }, check.timeoutMs)
      timer.unref?.()
      raw.then(
        (value) => {
          if (rawId === id) rawSince = -1
          if (settled) return
          settled = true
          clearTimeout(timer)
          resolve(record(fromValue(check, value, started)))
        },
        (error: unknown) => {
          if (rawId === id) rawSince = -1
          if (settled) return
          settled = true
          clearTimeout(timer)
          resolve(record(failure(errorOutput(error), started)))
        },
      )
    })
    refreshing = promise
    return promise
  }

  const refresh = (now: number): Promise<CheckOutcome> => {
    if (refreshing) return refreshing
    if (rawSince >= 0 && now - rawSince < abandonAfterMs) {
      // The previous call outlived its timeout and is still running: report that instead of
      // adding load to a dependency that is already not answering.
      const runningMs = Math.round(now - rawSince)
      return Promise.resolve(record(failure(`previous check still running after ${runningMs} ms; not started again`, now, now)))
    }
    return start()
  }

  return {
    check,
    get calls() {
      return calls
    },
    get current() {
      return current
    },
    get(now) {
      const cur = current
      if (cur !== undefined && now - cur.at < check.cacheMs) return cur
      const pending = refresh(now)
      // `refresh` may have recorded synchronously (stuck call): answer with the newest result.
      if (current !== undefined && current !== cur) return current
      if (cur !== undefined && now - cur.at < check.maxStaleMs) return cur
      return pending
    },
    refresh,
  }
}

function fromValue(check: NormalizedCheck, value: unknown, started: number): CheckOutcome {
  const now = performance.now()
  const durationMs = now - started
  const time = new Date().toISOString()
  const results: unknown[] = Array.isArray(value) ? value : [value]
  const entries: CheckEntry[] = []
  let status: HealthStatus = 'pass'
  for (const result of results) {
    let entry: Record<string, unknown>
    if (isPlainObject(result)) {
      entry = Object.create(null)
      for (const key of Object.keys(result)) {
        if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue
        if (result[key] !== undefined) entry[key] = result[key]
      }
      const s = entry.status
      entry.status = typeof s === 'string' && STATUSES.has(s) ? s : 'pass'
    } else if (result === false) {
      entry = { status: 'fail', output: 'check returned false' }
    } else {
      entry = { status: 'pass' }
    }
    if (entry.status === 'fail' && !check.critical) entry.status = 'warn'
    entry.time ??= time
    if (entry.componentType === undefined && check.componentType !== undefined) entry.componentType = check.componentType
    entries.push({ ...entry } as CheckEntry)
    status = worst(status, entry.status as HealthStatus)
  }
  // A single plain result measures the check's response time, as the draft's `responseTime` does.
  if (entries.length === 1 && entries[0]!.observedValue === undefined && entries[0]!.observedUnit === undefined) {
    entries[0] = { ...entries[0]!, observedValue: round(durationMs), observedUnit: 'ms' }
  }
  if (entries.length === 0) entries.push(withType({ status: 'pass', time }, check.componentType))
  return { name: check.name, status, entries: order(entries), at: now, durationMs }
}

// Stable key order in the JSON: status first, as in the draft's examples.
function order(entries: CheckEntry[]): CheckEntry[] {
  return entries.map((e) => {
    const { status, componentId, componentType, observedValue, observedUnit, time, output, ...rest } = e
    const out: Record<string, unknown> = { status }
    if (componentId !== undefined) out.componentId = componentId
    if (componentType !== undefined) out.componentType = componentType
    if (observedValue !== undefined) out.observedValue = observedValue
    if (observedUnit !== undefined) out.observedUnit = observedUnit
    out.time = time
    if (output !== undefined && output !== '') out.output = output
    return Object.assign(out, rest) as CheckEntry
  })
}

function withType(entry: CheckEntry, componentType: string | undefined): CheckEntry {
  return componentType === undefined ? entry : { status: entry.status, componentType, time: entry.time, ...(entry.output ? { output: entry.output } : {}) }
}

/** A short, single-line message for an error thrown by a check. */
export function errorOutput(error: unknown): string {
  let message: string
  if (error instanceof Error) {
    // Connection errors to a dual-stack host arrive as an AggregateError with an empty message.
    const inner = error instanceof AggregateError && !error.message ? (error.errors[0] as unknown) : undefined
    message = error.message || (inner instanceof Error ? inner.message : '') || error.name
    const code = (error as { code?: unknown }).code
    if (typeof code === 'string' && !message.includes(code)) message = `${code}: ${message}`
  } else message = typeof error === 'string' ? error : 'check failed'
  message = message.replace(/\s+/g, ' ').trim()
  return message.length > 300 ? `${message.slice(0, 300)}…` : message || 'check failed'
}

export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
