import { statfs } from 'node:fs/promises'
import { createOptionsChecker, type Duration, isPlainObject } from '@ri/core'
import type { CheckResult, CheckSettings, HealthCheck } from '../types.js'
import { createLoopDelayMonitor } from './loop-delay.js'
import { round } from '../runner.js'

/**
 * Settings every built-in check accepts, plus the key it reports under.
 *
 * @example
 * redisCheck(redis, { name: 'sessions:responseTime', critical: false, timeoutMs: 300 })
 */
export interface BuiltinCheckOptions extends CheckSettings {
  /** Key in the response's `checks`. Each factory has a default (`redis:responseTime` ...). */
  name?: string
}

/**
 * What `redisCheck` needs from a client: an ioredis `Redis` or `Cluster` satisfies it.
 *
 * @example
 * const client: RedisLike = new Redis(url)
 */
export interface RedisLike {
  ping(): Promise<unknown>
  /** ioredis connection status; anything but `ready`/`wait`/`connect` fails at once (no queued PING). */
  readonly status?: string
}

/**
 * What `pgCheck` needs: a `pg.Pool` (or `pg.Client`) satisfies it.
 *
 * @example
 * const pool: PgQueryable = new pg.Pool({ connectionString })
 */
export interface PgQueryable {
  query(sql: string): Promise<unknown>
  readonly totalCount?: number
  readonly idleCount?: number
  readonly waitingCount?: number
}

/**
 * The structural interface `dbRouterCheck` reads. `@ri/db`'s router is expected to satisfy it;
 * any router can, with a small adapter. `status()` should answer from state the router already
 * keeps (its own replica lag polling), not run queries, but it may return a promise.
 *
 * @example
 * const router: DbRouterStatusSource = {
 *   status: () => ({ primary: { name: 'primary', healthy: true }, replicas: [{ name: 'r1', healthy: true, lagMs: 40 }] }),
 * }
 */
export interface DbRouterStatusSource {
  status(): DbRouterStatus | Promise<DbRouterStatus>
}

/**
 * A router's view of its nodes.
 *
 * @example
 * const s: DbRouterStatus = { primary: { healthy: true }, replicas: [{ name: 'r1', healthy: false, error: 'timeout' }] }
 */
export interface DbRouterStatus {
  readonly primary: DbNodeStatus
  readonly replicas: readonly DbNodeStatus[]
}

/**
 * One database node as the router sees it.
 *
 * @example
 * const node: DbNodeStatus = { name: 'replica-1', healthy: true, lagMs: 120 }
 */
export interface DbNodeStatus {
  readonly name?: string
  readonly healthy: boolean
  /** Replication lag in ms (replicas); null/undefined when unknown. */
  readonly lagMs?: number | null
  /** Why the node is unhealthy. */
  readonly error?: string
}

const BUILTIN_KEYS = ['name', 'timeoutMs', 'cacheMs', 'critical', 'componentType'] as const

function settings(scope: string, options: BuiltinCheckOptions | undefined, extra: readonly string[], defaults: { name: string; componentType: string }) {
  const c = createOptionsChecker(scope)
  c.known(options, [...BUILTIN_KEYS, ...extra])
  const o = (isPlainObject(options) ? options : {}) as BuiltinCheckOptions
  const out: { name: string } & CheckSettings = { name: c.string('name', o.name, defaults.name), componentType: o.componentType ?? defaults.componentType }
  if (o.timeoutMs !== undefined) out.timeoutMs = c.duration('timeoutMs', o.timeoutMs, 0)
  if (o.cacheMs !== undefined) out.cacheMs = c.duration('cacheMs', o.cacheMs, 0)
  if (o.critical !== undefined) out.critical = c.boolean('critical', o.critical, true)
  return { c, out, o }
}

/**
 * Redis `PING` (ioredis). Fails at once, without queueing a PING, while the client is
 * reconnecting; reports the round trip in ms.
 *
 * @example
 * const health = createHealth({ checks: [redisCheck(new Redis(process.env.REDIS_URL))] })
 * // checks['redis:responseTime'] = [{ status: 'pass', componentType: 'datastore', observedValue: 0.31, observedUnit: 'ms', time }]
 */
export function redisCheck(redis: RedisLike, options?: BuiltinCheckOptions): HealthCheck {
  const { c, out } = settings('redisCheck', options, [], { name: 'redis:responseTime', componentType: 'datastore' })
  if (!redis || typeof redis.ping !== 'function') c.problem('redis', redis, 'an ioredis client (an object with ping())')
  c.done()
  return Object.freeze({
    ...out,
    async check() {
      const status = redis.status
      // With the offline queue on, a PING while disconnected waits for the reconnect: fail now instead.
      if (status !== undefined && status !== 'ready' && status !== 'wait' && status !== 'connect') {
        throw new Error(`redis connection is ${status}`)
      }
      const started = performance.now()
      await redis.ping()
      return { observedValue: round(performance.now() - started), observedUnit: 'ms' }
    },
  })
}

/**
 * PostgreSQL `SELECT 1` through a `pg.Pool`; reports the round trip and the pool's counts.
 *
 * @example
 * const health = createHealth({ checks: [pgCheck(new pg.Pool({ connectionString: process.env.DATABASE_URL }))] })
 */
export function pgCheck(pool: PgQueryable, options?: BuiltinCheckOptions): HealthCheck {
  const { c, out } = settings('pgCheck', options, [], { name: 'postgres:responseTime', componentType: 'datastore' })
  if (!pool || typeof pool.query !== 'function') c.problem('pool', pool, 'a pg Pool or Client (an object with query())')
  c.done()
  return Object.freeze({
    ...out,
    async check() {
      const started = performance.now()
      await pool.query('SELECT 1')
      const result: CheckResult = { observedValue: round(performance.now() - started), observedUnit: 'ms' }
      if (typeof pool.totalCount === 'number') {
        result.totalCount = pool.totalCount
        result.idleCount = pool.idleCount
        result.waitingCount = pool.waitingCount
      }
      return result
    },
  })
}

/**
 * Options of `dbRouterCheck`.
 *
 * @example
 * dbRouterCheck(db, { maxLagMs: '5s', cacheMs: '2s' })
 */
export interface DbRouterCheckOptions extends BuiltinCheckOptions {
  /** A healthy replica lagging more than this is reported `warn`. Default: no lag threshold. */
  maxLagMs?: Duration
}

/**
 * The database router's state: one entry for the primary (`fail` when unhealthy) and one per
 * replica with its lag (`warn` when unhealthy or lagging: the router serves reads from the
 * primary meanwhile). Works against the structural `DbRouterStatusSource`.
 *
 * @example
 * const health = createHealth({ checks: [dbRouterCheck(db, { maxLagMs: '5s' })] })
 * // checks['db:replication'] = [{ componentId: 'primary', status: 'pass' ... }, { componentId: 'replica-1', observedValue: 12, observedUnit: 'ms', status: 'pass' ... }]
 */
export function dbRouterCheck(router: DbRouterStatusSource, options?: DbRouterCheckOptions): HealthCheck {
  const { c, out, o } = settings('dbRouterCheck', options, ['maxLagMs'], { name: 'db:replication', componentType: 'datastore' })
  const maxLagMs = c.duration('maxLagMs', (o as DbRouterCheckOptions).maxLagMs)
  if (!router || typeof router.status !== 'function') c.problem('router', router, 'an object with status() → { primary, replicas }')
  c.done()
  return Object.freeze({
    ...out,
    async check(): Promise<CheckResult[]> {
      const state = await router.status()
      if (!state || typeof state !== 'object' || !state.primary) throw new Error('db router status() returned no primary')
      const primary = state.primary
      const entries: CheckResult[] = [
        {
          componentId: primary.name ?? 'primary',
          status: primary.healthy ? 'pass' : 'fail',
          ...(primary.healthy ? {} : { output: primary.error ?? 'primary unreachable' }),
        },
      ]
      ;(state.replicas ?? []).forEach((replica, i) => {
        const lag = typeof replica.lagMs === 'number' && Number.isFinite(replica.lagMs) ? replica.lagMs : undefined
        const lagging = replica.healthy && maxLagMs !== undefined && lag !== undefined && lag > maxLagMs
        const entry: CheckResult = {
          componentId: replica.name ?? `replica-${i + 1}`,
          status: replica.healthy && !lagging ? 'pass' : 'warn',
        }
        if (lag !== undefined) {
          entry.observedValue = lag
          entry.observedUnit = 'ms'
        }
        if (!replica.healthy) entry.output = `${replica.error ?? 'replica unreachable'}; reads go to the primary`
        else if (lagging) entry.output = `replication lag ${lag} ms exceeds ${maxLagMs} ms`
        entries.push(entry)
      })
      return entries
    },
  })
}

/**
 * Options of `eventLoopCheck`.
 *
 * @example
 * eventLoopCheck({ maxDelayMs: 100, windowMs: '10s' })
 */
export interface EventLoopCheckOptions extends BuiltinCheckOptions {
  /** p99 event-loop delay above which the check fails. Default `200ms`. */
  maxDelayMs?: Duration
  /** Window the p99 is computed over. Default `5s`. */
  windowMs?: Duration
}

/**
 * Event-loop delay (p99 over a rolling window, `perf_hooks.monitorEventLoopDelay`): no I/O.
 * A saturated process fails readiness so the load balancer sends its traffic elsewhere.
 *
 * @example
 * const health = createHealth({ checks: [eventLoopCheck({ maxDelayMs: 100 })] })
 */
export function eventLoopCheck(options?: EventLoopCheckOptions): HealthCheck {
  const { c, out, o } = settings('eventLoopCheck', options, ['maxDelayMs', 'windowMs'], { name: 'eventLoop:delay', componentType: 'system' })
  const eo = o as EventLoopCheckOptions
  const maxDelayMs = c.duration('maxDelayMs', eo.maxDelayMs, 200)
  const windowMs = c.duration('windowMs', eo.windowMs, 5_000)
  c.done()
  let monitor: ReturnType<typeof createLoopDelayMonitor> | undefined
  return Object.freeze({
    ...out,
    check(): CheckResult {
      // Started on first use so an unused check costs nothing.
      monitor ??= createLoopDelayMonitor(windowMs)
      const p99 = round(monitor.p99Ms())
      return {
        status: p99 > maxDelayMs ? 'fail' : 'pass',
        observedValue: p99,
        observedUnit: 'ms',
        ...(p99 > maxDelayMs ? { output: `event-loop delay p99 ${p99} ms exceeds ${maxDelayMs} ms` } : {}),
      }
    },
  })
}

/**
 * Options of `memoryCheck`.
 *
 * @example
 * memoryCheck({ maxRssBytes: 2 * 2 ** 30 })
 */
export interface MemoryCheckOptions extends BuiltinCheckOptions {
  /** Fail when `heapUsed` exceeds this many bytes. */
  maxHeapBytes?: number
  /** Fail when the resident set exceeds this many bytes. */
  maxRssBytes?: number
}

/**
 * Heap and RSS against thresholds (`process.memoryUsage()`): no I/O.
 *
 * @example
 * const health = createHealth({ checks: [memoryCheck({ maxHeapBytes: 1.5 * 2 ** 30, critical: false })] })
 */
export function memoryCheck(options?: MemoryCheckOptions): HealthCheck {
  const { c, out, o } = settings('memoryCheck', options, ['maxHeapBytes', 'maxRssBytes'], { name: 'memory:utilization', componentType: 'system' })
  const mo = o as MemoryCheckOptions
  const maxHeap = mo.maxHeapBytes === undefined ? undefined : c.number('maxHeapBytes', mo.maxHeapBytes, 0, { min: 1 })
  const maxRss = mo.maxRssBytes === undefined ? undefined : c.number('maxRssBytes', mo.maxRssBytes, 0, { min: 1 })
  c.done()
  return Object.freeze({
    ...out,
    check(): CheckResult[] {
      const usage = process.memoryUsage()
      const entry = (id: string, value: number, max: number | undefined): CheckResult => ({
        componentId: id,
        status: max !== undefined && value > max ? 'fail' : 'pass',
        observedValue: value,
        observedUnit: 'bytes',
        ...(max !== undefined && value > max ? { output: `${id} ${value} bytes exceeds ${max} bytes` } : {}),
      })
      return [entry('heapUsed', usage.heapUsed, maxHeap), entry('rss', usage.rss, maxRss)]
    },
  })
}

/**
 * Options of `diskCheck`.
 *
 * @example
 * diskCheck({ path: '/data', minFreePercent: 10 })
 */
export interface DiskCheckOptions extends BuiltinCheckOptions {
  /** Filesystem to measure. Default `/`. */
  path?: string
  /** Fail below this many free bytes (available to unprivileged users). */
  minFreeBytes?: number
  /** Fail below this share of free space, 0-100. */
  minFreePercent?: number
}

/**
 * Free disk space of a filesystem (`fs.statfs`).
 *
 * @example
 * const health = createHealth({ checks: [diskCheck({ path: '/var/lib/app', minFreeBytes: 1e9, critical: false })] })
 */
export function diskCheck(options?: DiskCheckOptions): HealthCheck {
  const { c, out, o } = settings('diskCheck', options, ['path', 'minFreeBytes', 'minFreePercent'], { name: 'disk:free', componentType: 'system' })
  const d = o as DiskCheckOptions
  const path = c.string('path', d.path, '/')
  const minBytes = d.minFreeBytes === undefined ? undefined : c.number('minFreeBytes', d.minFreeBytes, 0, { min: 0 })
  const minPercent = d.minFreePercent === undefined ? undefined : c.number('minFreePercent', d.minFreePercent, 0, { min: 0, max: 100 })
  c.done()
  return Object.freeze({
    ...out,
    async check(): Promise<CheckResult> {
      const s = await statfs(path)
      const free = Number(s.bavail) * Number(s.bsize)
      const total = Number(s.blocks) * Number(s.bsize)
      const percent = total > 0 ? round((free / total) * 100) : 0
      const low = (minBytes !== undefined && free < minBytes) || (minPercent !== undefined && percent < minPercent)
      return {
        componentId: path,
        status: low ? 'fail' : 'pass',
        observedValue: free,
        observedUnit: 'bytes',
        freePercent: percent,
        ...(low ? { output: `only ${free} bytes (${percent}%) free on ${path}` } : {}),
      }
    },
  })
}
