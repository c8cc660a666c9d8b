import type { RiEvents } from '@ri/core'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { createFastCounter, type FastCounter, type PreparedLabels } from './fast.js'
import { createSeriesGuard, OVERFLOW } from './guard.js'

/** Buckets for internal operations (loaders, queries, checks): 1 ms .. 10 s. */
export const OPERATION_BUCKETS = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
/** Buckets for replication / bus lag: 1 ms .. 60 s. */
export const LAG_BUCKETS = Object.freeze([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60])

const CIRCUIT_STATES = ['closed', 'half-open', 'open'] as const
const HEALTH_STATUSES = ['pass', 'warn', 'fail'] as const
const LIFECYCLE_STATES = ['starting', 'ready', 'draining', 'stopped'] as const

export interface SdkMetricsContext {
  readonly registry: Registry<any>
  readonly prefix: string
  readonly maxSeries: number
  readonly unmatchedRoute: string
  readonly dropped: Counter<'metric'>
}

/**
 * Metrics for every event the feature packages publish (cache, throttle, db, health, slowlog).
 * The metrics exist (with HELP/TYPE) from the start so dashboards and alerts see them even
 * before the first event; `subscribe(events)` wires one bus and returns its unsubscribe.
 */
export interface SdkMetrics {
  subscribe(events: RiEvents): () => void
}

export function createSdkMetrics(ctx: SdkMetricsContext): SdkMetrics {
  const registers = [ctx.registry]
  const p = ctx.prefix
  const guarded = <L extends string>(name: string, labelNames: readonly L[]) => createSeriesGuard(name, labelNames, ctx.maxSeries, ctx.dropped)

  // Counters sit on hot paths (a throttle decision or a cache read per request): fast counters.
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => {
    const droppedLabels = { metric: p + name }
    const metric = createFastCounter(ctx.registry, {
      name: p + name,
      help,
      labelNames,
      cap: { max: ctx.maxSeries, overflow: OVERFLOW, onDrop: () => ctx.dropped.inc(droppedLabels) },
    })
    // The counter caps its own series with the key it builds anyway: no separate guard per event.
    return { metric }
  }
  // A read or decision per request sees the same few label sets: each is prepared once and found
  // by its values in nested maps (no label object or key string per event). At most maxSeries are
  // kept; beyond that (label values the counter would fold into overflow anyway) plain inc().
  const threeLabels = (metric: FastCounter, names: readonly [string, string, string]) => {
    const top = new Map<string, Map<string, Map<string, PreparedLabels>>>()
    let kept = 0
    return (a: string, b: string, c: string): void => {
      let byB = top.get(a)
      const byC = byB?.get(b)
      const hit = byC?.get(c)
      if (hit !== undefined) return metric.incPrepared(hit)
      const labels = { [names[0]]: a, [names[1]]: b, [names[2]]: c }
      if (kept >= ctx.maxSeries) return metric.inc(labels)
      kept++
      const prepared = metric.prepare(labels)
      if (byB === undefined) top.set(a, (byB = new Map()))
      if (byC === undefined) byB.set(b, new Map([[c, prepared]]))
      else byC.set(c, prepared)
      metric.incPrepared(prepared)
    }
  }
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) => {
    const metric = new Gauge<L>({ name: p + name, help, labelNames, registers })
    return { metric, guard: guarded(p + name, labelNames) }
  }
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]) => {
    const metric = new Histogram<L>({ name: p + name, help, labelNames, buckets: [...buckets], registers })
    return { metric, guard: guarded(p + name, labelNames) }
  }

  // cache
  const cacheRequests = counter('ri_cache_requests_total', 'Cache reads by namespace, tier that answered and result.', ['namespace', 'tier', 'result'])
  const countCacheRequest = threeLabels(cacheRequests.metric, ['namespace', 'tier', 'result'])
  const cacheOps = counter('ri_cache_operations_total', 'Cache writes, deletes, tag invalidations and clears.', ['namespace', 'operation'])
  const cacheLoader = histogram('ri_cache_loader_duration_seconds', 'Duration of cache loaders (getOrSet factories) by outcome.', ['namespace', 'outcome'], OPERATION_BUCKETS)
  const cacheL2Errors = counter('ri_cache_l2_errors_total', 'Errors talking to the L2 store (Redis), by operation.', ['namespace', 'operation'])
  const cacheCircuit = gauge('ri_cache_l2_circuit_state', 'L2 circuit breaker state: 1 for the current state, 0 for the others.', ['state'])
  const busMessages = counter('ri_cache_bus_messages_total', 'Cache bus messages by direction and type.', ['direction', 'type'])
  const busLag = histogram('ri_cache_bus_lag_seconds', 'Delay between publishing and receiving a cache bus message.', [], LAG_BUCKETS)
  const busConnected = gauge('ri_cache_bus_connected', 'Whether the cache bus is connected (1) or not (0).', [])
  const busGaps = counter('ri_cache_bus_gaps_total', 'Times the cache bus detected missed messages and flushed L1.', [])
  // throttle
  const throttleDecisions = counter('ri_throttle_decisions_total', 'Rate-limit decisions by rule, result and store that decided.', ['rule', 'result', 'store'])
  const countDecision = threeLabels(throttleDecisions.metric, ['rule', 'result', 'store'])
  const insuranceFallbacks = counter('ri_throttle_insurance_fallbacks_total', 'Times throttling fell back to the in-memory insurance limiter.', [])
  const insuranceActive = gauge('ri_throttle_insurance_active', 'Whether the in-memory insurance limiter is currently deciding (1) or not (0).', [])
  // db
  const dbQueries = histogram('ri_db_query_duration_seconds', 'Database queries by role (primary/replica), node and outcome.', ['role', 'node', 'outcome'], OPERATION_BUCKETS)
  const dbRouted = counter('ri_db_queries_total', 'Database queries by role and routing reason.', ['role', 'reason'])
  const dbFallbacks = counter('ri_db_fallbacks_total', 'Reads sent to the primary because no replica could serve them, by reason.', ['reason'])
  const dbLag = gauge('ri_db_replica_lag_seconds', 'Last measured replication lag per replica.', ['node'])
  const dbHealthy = gauge('ri_db_replica_healthy', 'Whether a replica is used for reads (1) or skipped (0).', ['node'])
  const dbStateChanges = counter('ri_db_replica_state_changes_total', 'Replicas leaving (or rejoining) the read rotation, by reason.', ['node', 'reason'])
  // health
  const healthStatus = gauge('ri_health_check_status', 'Last result of each health check: 1 for the current status, 0 for the others.', ['check', 'status'])
  const healthDuration = histogram('ri_health_check_duration_seconds', 'Duration of health checks.', ['check'], OPERATION_BUCKETS)
  const lifecycle = gauge('ri_health_state', 'Service lifecycle state: 1 for the current state, 0 for the others.', ['state'])
  const degraded = gauge('ri_health_degraded', 'Whether a component reports a degradation (1) or not (0).', ['component'])
  // slowlog
  const slow = counter('ri_slowlog_slow_requests_total', 'Requests slower than their slow-log threshold, by method and route template.', ['method', 'route'])

  // A state set: exactly one member is 1. Labels objects are built once.
  const stateSet = <S extends string, L extends string>(g: { metric: Gauge<L> }, label: L, states: readonly S[], fixed: Partial<Record<L, string>> = {}) => {
    const sets = states.map((s) => ({ ...fixed, [label]: s }) as Record<L, string>)
    return (state: string) => {
      for (let i = 0; i < states.length; i++) g.metric.set(sets[i]!, states[i] === state ? 1 : 0)
    }
  }
  const setCircuit = stateSet(cacheCircuit, 'state', CIRCUIT_STATES)
  const setLifecycle = stateSet(lifecycle, 'state', LIFECYCLE_STATES)
  setCircuit('closed')

  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : 'unknown')

  return {
    subscribe(events) {
      const offs = [
        events.on('cache.get', (e) => {
          countCacheRequest(str(e.namespace), str(e.tier), str(e.result))
        }),
        events.on('cache.set', (e) => cacheOps.metric.inc({ namespace: str(e.namespace), operation: 'set' })),
        events.on('cache.delete', (e) => cacheOps.metric.inc({ namespace: str(e.namespace), operation: 'delete' })),
        events.on('cache.invalidate', (e) => cacheOps.metric.inc({ namespace: str(e.namespace), operation: 'invalidate' })),
        events.on('cache.clear', (e) => cacheOps.metric.inc({ namespace: str(e.namespace), operation: 'clear' })),
        events.on('cache.loader', (e) => {
          cacheLoader.metric.observe(cacheLoader.guard.labels({ namespace: str(e.namespace), outcome: str(e.outcome) }), seconds(e.durationMs))
        }),
        events.on('cache.l2.error', (e) => cacheL2Errors.metric.inc({ namespace: str(e.namespace), operation: str(e.operation) })),
        events.on('cache.l2.circuit', (e) => setCircuit(e.state)),
        events.on('cache.bus.message', (e) => {
          busMessages.metric.inc({ direction: str(e.direction), type: str(e.type) })
          if (typeof e.lagMs === 'number' && Number.isFinite(e.lagMs)) busLag.metric.observe(seconds(e.lagMs))
        }),
        events.on('cache.bus.state', (e) => {
          if (e.state === 'gap') busGaps.metric.inc()
          else busConnected.metric.set(e.state === 'connected' ? 1 : 0)
        }),
        events.on('throttle.decision', (e) => {
          countDecision(str(e.rule), str(e.result), str(e.store))
        }),
        events.on('throttle.insurance', (e) => {
          if (e.state === 'engaged') insuranceFallbacks.metric.inc()
          insuranceActive.metric.set(e.state === 'engaged' ? 1 : 0)
        }),
        events.on('db.query', (e) => {
          const role = str(e.role)
          dbQueries.metric.observe(dbQueries.guard.labels({ role, node: str(e.node), outcome: e.ok ? 'ok' : 'error' }), seconds(e.durationMs))
          dbRouted.metric.inc({ role, reason: str(e.reason) })
        }),
        events.on('db.fallback', (e) => dbFallbacks.metric.inc({ reason: str(e.reason) })),
        events.on('db.replica.lag', (e) => {
          const node = str(e.node)
          // -1 means the probe could not measure it: keep the last known value.
          if (typeof e.lagMs === 'number' && Number.isFinite(e.lagMs) && e.lagMs >= 0) dbLag.metric.set(dbLag.guard.labels({ node }), e.lagMs / 1000)
          dbHealthy.metric.set(dbHealthy.guard.labels({ node }), e.healthy ? 1 : 0)
        }),
        events.on('db.replica.state', (e) => {
          const node = str(e.node)
          dbHealthy.metric.set(dbHealthy.guard.labels({ node }), e.healthy ? 1 : 0)
          dbStateChanges.metric.inc({ node, reason: str(e.reason) })
        }),
        events.on('health.check', (e) => {
          const check = str(e.name)
          for (const status of HEALTH_STATUSES) {
            healthStatus.metric.set(healthStatus.guard.labels({ check, status }), e.status === status ? 1 : 0)
          }
          healthDuration.metric.observe(healthDuration.guard.labels({ check }), seconds(e.durationMs))
        }),
        events.on('health.state', (e) => setLifecycle(e.state)),
        events.on('health.degradation', (e) => degraded.metric.set(degraded.guard.labels({ component: str(e.component) }), e.degraded ? 1 : 0)),
        events.on('slowlog.slow', (e) => {
          slow.metric.inc({ method: str(e.method), route: e.route ?? ctx.unmatchedRoute })
        }),
      ]
      return () => {
        for (const off of offs) off()
      }
    },
  }
}

function seconds(ms: unknown): number {
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms / 1000 : 0
}
