import { AsyncLocalStorage } from 'node:async_hooks'
import { type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import {
  createDefaultLogger,
  createEpisodes,
  createEvents,
  createOptionsChecker,
  type Duration,
  type Feature,
  ErrorCodes,
  isPlainObject,
  type Logger,
  RiError,
  RiClosedError,
  RiConfigError,
  type RiEvents,
} from '@ri/core'
import { type Classification, createClassifier, createClassifierCache, LEARNED_WRITE, type StatementKind } from './classify.js'
import { createDbFeature, type DbFeatureOptions } from './feature.js'
import { formatLsn, parseLsn } from './lsn.js'
import { type DbNode, type DbSession, type PgPoolLike, type PgResult, pgNode } from './node.js'

/** How a replica is picked among the eligible ones. */
export type DbStrategy = 'round-robin' | 'random' | 'least-busy' | 'weighted'

/** Read-your-writes mode: exact WAL positions, a time window after each write, or none. */
export type ReadYourWritesMode = 'lsn' | 'time' | 'off'

export interface ReadYourWritesOptions {
  /** Default `'lsn'` when the primary has `walPosition()` and every replica `replayPosition()`, else `'time'`. */
  mode?: ReadYourWritesMode
  /**
   * When no replica has replayed the scope's last write yet: wait up to this long for one
   * (polling replay positions) before reading from the primary. Default 0: primary at once.
   */
  wait?: Duration
  /** `'time'` mode (and the LSN fallback when a position is unavailable): reads stay on the primary this long after a write. Default `'2s'`. */
  window?: Duration
}

/** A replica entry: a node or a pg Pool, optionally with a weight and a name. */
export type ReplicaInput<R> = DbNode<R> | PgPoolLike | { node: DbNode<R> | PgPoolLike; weight?: number; name?: string }

export interface HealthCheckOptions {
  /** Probe interval. Default `'1s'`. */
  interval?: Duration
  /** A probe slower than this counts as failed. Default `'1s'`. */
  timeout?: Duration
}

export interface DbRouterOptions<R = PgResult> {
  /** The primary: a `DbNode` or a `pg.Pool`. */
  primary: DbNode<R> | PgPoolLike
  /** Read replicas. Default none (everything on the primary). */
  replicas?: readonly ReplicaInput<R>[]
  /** `'lsn' | 'time' | 'off'` or an options object. Default `'lsn'` when supported. */
  readYourWrites?: ReadYourWritesMode | ReadYourWritesOptions
  /** A replica lagging more than this leaves the rotation. Default `'5s'`. */
  maxLagMs?: Duration
  /** Default `'round-robin'`. */
  strategy?: DbStrategy
  /** Background probes; `false` disables them (replicas are then trusted as healthy). */
  healthCheck?: HealthCheckOptions | false
  /** Functions that write (`SELECT my_fn()` goes to the primary): `'touch_user'`, `'audit.log_event'`. */
  volatileFunctions?: readonly string[]
  /** Distinct SQL texts whose classification is cached (LRU). Default 1000. */
  classifierCacheSize?: number
  /** OpenTelemetry spans for queries under a recording parent span. Default true. */
  tracing?: boolean
  events?: RiEvents
  logger?: Logger
}

/** Something that runs statements: a router role, a transaction. */
export interface DbQueryable<R = PgResult> {
  query(sql: string, params?: readonly unknown[]): Promise<R>
}

export interface TransactionOptions {
  isolation?: 'read committed' | 'repeatable read' | 'serializable'
  readOnly?: boolean
}

export interface DbNodeStatus {
  readonly name: string
  readonly healthy: boolean
}
export interface DbReplicaStatus extends DbNodeStatus {
  /** Replication lag in ms, null when unknown. */
  readonly lagMs: number | null
  /** Unreplayed WAL in bytes, null when unknown. */
  readonly lagBytes: number | null
  /** Last replay position seen (`'0/16B3748'`), null when unknown. */
  readonly replayLsn: string | null
  /** Why it is out of the rotation, when it is. */
  readonly reason?: string
}
export interface DbStatus {
  readonly primary: DbNodeStatus & { readonly walLsn: string | null }
  readonly replicas: readonly DbReplicaStatus[]
}

/** A readiness result in @ri/health's shape. */
export interface DbReadiness {
  readonly status: 'pass' | 'warn' | 'fail'
  readonly output?: string
  readonly details: DbStatus
}

/**
 * Routes statements between a PostgreSQL primary and its read replicas.
 *
 * @example
 * const db = createDbRouter({ primary: new pg.Pool({ connectionString: PRIMARY }), replicas: [new pg.Pool({ connectionString: REPLICA })] })
 * await db.scope(async () => {
 *   await db.query('INSERT INTO posts (title) VALUES ($1)', ['hi']) // primary; position recorded
 *   await db.query('SELECT * FROM posts')                           // a replica that has it, else the primary
 * })
 */
export interface DbRouter<R = PgResult> extends DbQueryable<R> {
  /** Always the primary (inside a transaction: the transaction's connection). */
  readonly primary: DbQueryable<R>
  /** A healthy replica by strategy (ignores read-your-writes); the primary when none is healthy. */
  readonly replica: DbQueryable<R>
  readonly events: RiEvents
  /** Runs `fn` on one pinned primary connection in BEGIN/COMMIT; rolls back and rethrows on throw. Nested calls use savepoints. */
  transaction<T>(fn: (tx: DbQueryable<R>) => Promise<T>, options?: TransactionOptions): Promise<T>
  /** Runs `fn` in a fresh consistency scope (read-your-writes across its async calls). */
  scope<T>(fn: () => T): T
  /** Runs `fn` in a scope that starts at a position from `sessionToken()` (invalid tokens are ignored). */
  runInScope<T>(token: string | undefined, fn: () => T): T
  /** The current scope's position to carry to the next request, or undefined when it wrote nothing. */
  sessionToken(): string | undefined
  /** A core `Feature`: one consistency scope per request, carried in a signed cookie/header. */
  feature(options: DbFeatureOptions): Feature
  /** Snapshot of node health from the last probes (synchronous, never throws). */
  status(): DbStatus
  /** Readiness for @ri/health: fail when the primary is down, warn when a replica is out. */
  readiness(): DbReadiness
  /** Runs one probe round now and returns the new status. */
  refresh(): Promise<DbStatus>
  /** Resolves after the first probe round (replicas take reads only once probed). */
  ready(): Promise<void>
  /** Stops probes and closes every node. Later queries reject with `RiClosedError`. */
  close(): Promise<void>
}

/** Per-request consistency state (shared by reference between a scope and its transactions). */
export interface ConsistencyState {
  /** Highest primary WAL position written in this scope (0n: none). */
  lsn: bigint
  lsnText: string | undefined
  /** `Date.now()` of the last write whose position is unknown (time mode / LSN unavailable). */
  writeAt: number
  /** Something was written (the feature then sends the token). */
  wrote: boolean
}

interface TxState {
  session: DbSession<unknown>
  done: boolean
  wrote: boolean
  savepoints: number
}

interface Store {
  readonly c: ConsistencyState | undefined
  readonly tx: TxState | undefined
}

interface ReplicaState {
  readonly node: DbNode<unknown>
  readonly name: string
  readonly weight: number
  healthy: boolean
  probed: boolean
  probing: boolean
  reason: string
  replay: bigint
  replayText: string | null
  lagMs: number | null
  lagBytes: number | null
  inflight: number
  currentWeight: number
}

const DEFAULTS = Object.freeze({
  maxLagMs: 5_000,
  strategy: 'round-robin' as DbStrategy,
  intervalMs: 1_000,
  timeoutMs: 1_000,
  waitMs: 0,
  windowMs: 2_000,
  classifierCacheSize: 1_000,
  tracing: true,
})

const OPTION_KEYS = [
  'primary',
  'replicas',
  'readYourWrites',
  'maxLagMs',
  'strategy',
  'healthCheck',
  'volatileFunctions',
  'classifierCacheSize',
  'tracing',
  'events',
  'logger',
] as const
const STRATEGIES = ['round-robin', 'random', 'least-busy', 'weighted'] as const
const RYW_MODES = ['lsn', 'time', 'off'] as const
const NODE_ACCEPTS = 'a DbNode ({ name, query, ping }) or a pg.Pool'

// Primary WAL samples kept to turn a replica's replay position into a lag in ms.
const MAX_SAMPLES = 120

function isDbNode(value: unknown): value is DbNode<unknown> {
  const v = value as DbNode<unknown>
  return v !== null && typeof v === 'object' && typeof v.name === 'string' && typeof v.query === 'function' && typeof v.ping === 'function'
}
function isPool(value: unknown): value is PgPoolLike {
  const v = value as PgPoolLike
  return v !== null && typeof v === 'object' && typeof v.query === 'function' && typeof v.connect === 'function'
}

/** Errors after which a replica read is retried on the primary. */
function retryableOnPrimary(error: unknown): 'down' | 'refused' | false {
  const code = (error as { code?: unknown })?.code
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    // read_only_sql_transaction: the statement writes after all; recovery conflict: retry on the primary
    if (code === '25006' || code === '40001') return 'refused'
    const cls = code.slice(0, 2)
    if (cls === '08' || cls === '53' || cls === '58' || code === '57P01' || code === '57P02' || code === '57P03') return 'down'
    return false
  }
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return 'down' // ECONNREFUSED, ECONNRESET, ETIMEDOUT ...
  const message = (error as Error)?.message ?? ''
  return /connect|terminat|timeout|closed|ended|socket/i.test(message) ? 'down' : false
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)
    timer.unref()
    promise.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      (e: unknown) => {
        clearTimeout(timer)
        reject(e)
      },
    )
  })
}

function readOnlyViolation(sql: string, cause?: unknown): RiError {
  return new RiError(
    ErrorCodes.RI_DB_READ_ONLY_VIOLATION,
    `db.replica.query() was given a statement that writes (${JSON.stringify(sql.length > 80 ? `${sql.slice(0, 80)}…` : sql)}); send it through db.query() or db.primary.query().`,
    cause === undefined ? undefined : { cause },
  )
}

const TX_BEGIN: Readonly<Record<string, string>> = Object.freeze({
  'read committed': 'BEGIN ISOLATION LEVEL READ COMMITTED',
  'repeatable read': 'BEGIN ISOLATION LEVEL REPEATABLE READ',
  serializable: 'BEGIN ISOLATION LEVEL SERIALIZABLE',
})

/**
 * Creates a read/write router over a primary and its replicas.
 *
 * @example
 * import pg from 'pg'
 * import { createDbRouter } from '@ri/db'
 * const db = createDbRouter({
 *   primary: new pg.Pool({ connectionString: process.env.DATABASE_URL }),
 *   replicas: [new pg.Pool({ connectionString: process.env.REPLICA_URL })],
 *   maxLagMs: '5s',
 * })
 * const { rows } = await db.query('SELECT * FROM users WHERE id = $1', [id]) // a replica
 * await db.transaction(async (tx) => { await tx.query('UPDATE ...') })      // the primary
 */
export function createDbRouter<R = PgResult>(options: DbRouterOptions<R>): DbRouter<R> {
  const check = createOptionsChecker('createDbRouter')
  if (!isPlainObject(options)) {
    check.problem('(options)', options, 'an options object with at least { primary }')
    check.done()
  }
  check.known(options, OPTION_KEYS)

  // nodes
  const toNode = (value: unknown, option: string, fallbackName: string): DbNode<R> | undefined => {
    if (isDbNode(value)) return value as DbNode<R>
    if (isPool(value)) return pgNode(value, { name: fallbackName }) as unknown as DbNode<R>
    check.problem(option, value, NODE_ACCEPTS)
    return undefined
  }
  const primary = toNode(options.primary, 'primary', 'primary')
  const replicaInputs = options.replicas ?? []
  if (!Array.isArray(replicaInputs)) check.problem('replicas', replicaInputs, 'an array of nodes, pools or { node, weight, name }')
  const replicas: ReplicaState[] = []
  const names = new Set<string>(primary ? [primary.name] : [])
  ;(Array.isArray(replicaInputs) ? replicaInputs : []).forEach((input: unknown, i) => {
    const option = `replicas[${i}]`
    let nodeInput = input
    let weight = 1
    let name: string | undefined
    if (isPlainObject(input) && 'node' in input) {
      check.known(input, ['node', 'weight', 'name'], option)
      nodeInput = input.node
      weight = check.number(`${option}.weight`, input.weight, 1, { min: 0 })
      name = check.string(`${option}.name`, input.name, '') || undefined
    }
    let node = toNode(nodeInput, option, name ?? `replica${i + 1}`)
    if (!node) return
    if (name && node.name !== name) node = { ...node, name } as DbNode<R>
    if (names.has(node.name)) check.problem(`${option}.name`, node.name, 'a node name used only once')
    names.add(node.name)
    replicas.push({
      node: node as DbNode<unknown>,
      name: node.name,
      weight,
      healthy: false,
      probed: false,
      probing: false,
      reason: 'not-probed',
      replay: 0n,
      replayText: null,
      lagMs: null,
      lagBytes: null,
      inflight: 0,
      currentWeight: 0,
    })
  })

  // read-your-writes
  const rywInput = options.readYourWrites
  const rywObject: ReadYourWritesOptions = typeof rywInput === 'string' || rywInput === undefined ? { mode: rywInput } : (rywInput as ReadYourWritesOptions)
  if (rywInput !== undefined && typeof rywInput !== 'string') {
    if (!isPlainObject(rywInput)) check.problem('readYourWrites', rywInput, "'lsn', 'time', 'off' or { mode, wait, window }")
    else check.known(rywInput, ['mode', 'wait', 'window'], 'readYourWrites')
  }
  const lsnCapable = primary?.walPosition !== undefined && replicas.every((r) => r.node.replayPosition !== undefined)
  let mode = check.oneOf(typeof rywInput === 'string' ? 'readYourWrites' : 'readYourWrites.mode', rywObject.mode, RYW_MODES, lsnCapable ? 'lsn' : 'time')
  if (mode === 'lsn' && !lsnCapable && primary) {
    check.problem(
      typeof rywInput === 'string' ? 'readYourWrites' : 'readYourWrites.mode',
      'lsn',
      "'time' or 'off' (LSN mode needs walPosition() on the primary and replayPosition() on every replica)",
    )
    mode = 'time'
  }
  const waitMs = check.duration('readYourWrites.wait', rywObject.wait, DEFAULTS.waitMs)
  const windowMs = check.duration('readYourWrites.window', rywObject.window, DEFAULTS.windowMs)
  const maxLagMs = check.duration('maxLagMs', options.maxLagMs, DEFAULTS.maxLagMs)
  const strategy = check.oneOf('strategy', options.strategy, STRATEGIES, DEFAULTS.strategy)
  let intervalMs: number = DEFAULTS.intervalMs
  let timeoutMs: number = DEFAULTS.timeoutMs
  const probes = options.healthCheck !== false
  if (options.healthCheck !== undefined && options.healthCheck !== false) {
    if (!isPlainObject(options.healthCheck)) check.problem('healthCheck', options.healthCheck, 'false or { interval, timeout }')
    else {
      check.known(options.healthCheck, ['interval', 'timeout'], 'healthCheck')
      intervalMs = check.duration('healthCheck.interval', options.healthCheck.interval, DEFAULTS.intervalMs)
      timeoutMs = check.duration('healthCheck.timeout', options.healthCheck.timeout, Math.min(DEFAULTS.timeoutMs, intervalMs))
      if (intervalMs < 10) check.problem('healthCheck.interval', options.healthCheck.interval, 'at least 10 ms')
    }
  }
  const volatileFunctions = options.volatileFunctions ?? []
  if (!Array.isArray(volatileFunctions) || volatileFunctions.some((f) => typeof f !== 'string' || f.length === 0)) {
    check.problem('volatileFunctions', volatileFunctions, 'an array of function names')
  }
  const cacheSize = check.integer('classifierCacheSize', options.classifierCacheSize, DEFAULTS.classifierCacheSize, { min: 0 })
  const tracing = check.boolean('tracing', options.tracing, DEFAULTS.tracing)
  if (options.events !== undefined && (typeof options.events !== 'object' || typeof options.events.emit !== 'function')) {
    check.problem('events', options.events, 'an RiEvents bus from createEvents()')
  }
  check.done()

  const primaryNode = primary!
  const events = options.events ?? createEvents()
  const logger = (options.logger ?? createDefaultLogger()).child({ component: 'ri.db' })
  const episodes = createEpisodes(logger)
  const classifier = createClassifierCache(createClassifier({ volatileFunctions: volatileFunctions as string[] }), cacheSize)
  const als = new AsyncLocalStorage<Store>()
  const tracer = trace.getTracer('@ri/db')
  const useLsn = mode === 'lsn'
  const trackWrites = mode !== 'off'
  const leastBusy = strategy === 'least-busy'

  let closed = false
  let rr = 0
  /** Replicas in the rotation; rebuilt only when health changes. */
  let rotation: ReplicaState[] = []
  let primaryHealthy = true
  let primaryWal: bigint | undefined
  let primaryWalText: string | null = null
  const samples: Array<{ t: number; lsn: bigint }> = []

  const rebuildRotation = () => {
    rotation = replicas.filter((r) => r.healthy && (strategy !== 'weighted' || r.weight > 0))
    if (replicas.length === 0) return
    if (rotation.length === 0) {
      if (episodes.begin('db.replicas', 'ri db: no replica available; every read goes to the primary', { replicas: replicas.map((r) => `${r.name}: ${r.reason}`) })) {
        if (events.has('health.degradation')) events.emit('health.degradation', { component: 'db.replicas', degraded: true, output: 'no replica available' })
      }
    } else if (episodes.end('db.replicas', 'ri db: replicas available again', { replicas: rotation.map((r) => r.name) })) {
      if (events.has('health.degradation')) events.emit('health.degradation', { component: 'db.replicas', degraded: false })
    }
  }

  const setReplicaHealth = (r: ReplicaState, healthy: boolean, reason: string) => {
    r.probed = true
    if (r.healthy === healthy) {
      r.reason = reason
      return
    }
    r.healthy = healthy
    r.reason = reason
    if (!healthy) {
      r.replay = 0n // it must prove its position again before serving read-your-writes
      episodes.begin(`db.replica.${r.name}`, `ri db: replica ${r.name} left the rotation (${reason})`, { node: r.name, reason })
    } else {
      episodes.end(`db.replica.${r.name}`, `ri db: replica ${r.name} rejoined the rotation`, { node: r.name })
    }
    if (events.has('db.replica.state')) events.emit('db.replica.state', { node: r.name, healthy, reason })
    rebuildRotation()
  }

  // ---- spans and events -------------------------------------------------------------------

  const startSpan = (role: 'primary' | 'replica', node: string, kind: StatementKind, reason: string): Span | undefined => {
    const parent = trace.getActiveSpan()
    if (parent === undefined || !parent.isRecording()) return undefined
    return tracer.startSpan(`db ${kind}`, {
      kind: SpanKind.CLIENT,
      attributes: { 'db.system': 'postgresql', 'db.operation.name': kind, 'ri.db.role': role, 'ri.db.node': node, 'ri.db.reason': reason },
    })
  }

  /** Runs a statement on a node with events/spans when someone observes; plain pass-through otherwise. */
  const exec = (
    node: DbNode<unknown> | DbSession<unknown>,
    nodeName: string,
    role: 'primary' | 'replica',
    reason: string,
    kind: StatementKind,
    sql: string,
    params: readonly unknown[] | undefined,
  ): Promise<R> => {
    const observe = events.has('db.query')
    const span = tracing ? startSpan(role, nodeName, kind, reason) : undefined
    if (!observe && span === undefined) return node.query(sql, params) as Promise<R>
    const t0 = performance.now()
    return (node.query(sql, params) as Promise<R>).then(
      (result) => {
        if (observe) events.emit('db.query', { role, node: nodeName, reason, kind, durationMs: performance.now() - t0, ok: true })
        span?.end()
        return result
      },
      (error: unknown) => {
        if (observe) events.emit('db.query', { role, node: nodeName, reason, kind, durationMs: performance.now() - t0, ok: false })
        if (span) {
          span.recordException(error as Error)
          span.setStatus({ code: SpanStatusCode.ERROR })
          span.end()
        }
        throw error
      },
    )
  }

  // ---- read-your-writes -------------------------------------------------------------------

  const recordWrite = async (c: ConsistencyState): Promise<void> => {
    c.wrote = true
    if (!useLsn) {
      c.writeAt = Date.now()
      return
    }
    try {
      const text = await withTimeout(primaryNode.walPosition!(), timeoutMs, 'walPosition')
      const lsn = parseLsn(text)
      if (lsn === undefined) throw new Error(`walPosition() returned ${JSON.stringify(text)}, not a pg_lsn`)
      if (lsn > c.lsn) {
        c.lsn = lsn
        c.lsnText = formatLsn(lsn)
      }
    } catch (error) {
      // position unknown: fall back to a time window for this scope, never to a stale read
      c.writeAt = Date.now()
      episodes.begin('db.wal-position', 'ri db: could not read the primary WAL position; read-your-writes uses a time window', { err: error })
      return
    }
    episodes.end('db.wal-position', 'ri db: primary WAL position readable again')
  }

  const runPrimary = (sql: string, params: readonly unknown[] | undefined, v: Classification, reason: string, c: ConsistencyState | undefined): Promise<R> => {
    if (c === undefined || !trackWrites || !v.mayWrite) return exec(primaryNode as DbNode<unknown>, primaryNode.name, 'primary', reason, v.kind, sql, params)
    return exec(primaryNode as DbNode<unknown>, primaryNode.name, 'primary', reason, v.kind, sql, params).then(
      async (result) => {
        await recordWrite(c)
        return result
      },
      async (error: unknown) => {
        await recordWrite(c) // the commit may have happened before the connection broke
        throw error
      },
    )
  }

  /** Why the last `pick` returned undefined. */
  let pickReason: 'no-replica' | 'read-your-writes' = 'no-replica'

  const eligible = (r: ReplicaState, need: bigint) => need === 0n || r.replay >= need

  const pick = (c: ConsistencyState | undefined, honourScope: boolean): ReplicaState | undefined => {
    const list = rotation
    const n = list.length
    if (n === 0) {
      pickReason = 'no-replica'
      return undefined
    }
    let need = 0n
    if (honourScope && c !== undefined) {
      if (useLsn && c.lsn > 0n) need = c.lsn
      else if (c.writeAt > 0 && Date.now() - c.writeAt < windowMs) {
        pickReason = 'read-your-writes'
        return undefined
      }
    }
    let chosen: ReplicaState | undefined
    if (strategy === 'round-robin' || strategy === 'random') {
      const start = strategy === 'random' ? Math.floor(Math.random() * n) : (rr = (rr + 1) & 0x7fffffff) % n
      for (let i = 0; i < n; i++) {
        const r = list[(start + i) % n]!
        if (eligible(r, need)) {
          chosen = r
          break
        }
      }
    } else if (strategy === 'least-busy') {
      let best = Number.POSITIVE_INFINITY
      const start = (rr = (rr + 1) & 0x7fffffff) % n
      for (let i = 0; i < n; i++) {
        const r = list[(start + i) % n]!
        if (!eligible(r, need)) continue
        const load = r.inflight + (r.node.waiting ? r.node.waiting() : 0)
        if (load < best) {
          best = load
          chosen = r
        }
      }
    } else {
      // smooth weighted round-robin (nginx): deterministic, spreads picks evenly by weight
      let total = 0
      for (let i = 0; i < n; i++) {
        const r = list[i]!
        if (!eligible(r, need)) continue
        r.currentWeight += r.weight
        total += r.weight
        if (chosen === undefined || r.currentWeight > chosen.currentWeight) chosen = r
      }
      if (chosen) chosen.currentWeight -= total
    }
    if (chosen === undefined) pickReason = 'read-your-writes'
    return chosen
  }

  let refreshing: Promise<void> | undefined
  /** Fresh replay positions of the rotation (deduplicated), for the bounded wait. */
  const refreshPositions = (): Promise<void> =>
    (refreshing ??= Promise.all(
      rotation.map(async (r) => {
        try {
          const text = await withTimeout(r.node.replayPosition!(), timeoutMs, 'replayPosition')
          const lsn = parseLsn(text)
          if (lsn !== undefined && lsn > r.replay) {
            r.replay = lsn
            r.replayText = formatLsn(lsn)
          }
        } catch {
          // the health probe deals with a failing replica
        }
      }),
    ).then(() => {
      refreshing = undefined
    }))

  const waitForReplica = async (c: ConsistencyState): Promise<ReplicaState | undefined> => {
    const deadline = Date.now() + waitMs
    const step = Math.max(5, Math.min(50, Math.floor(waitMs / 10)))
    for (;;) {
      await refreshPositions()
      const r = pick(c, true)
      if (r || pickReason === 'no-replica' || Date.now() >= deadline) return r
      await new Promise<void>((resolve) => setTimeout(resolve, Math.min(step, Math.max(1, deadline - Date.now()))).unref())
    }
  }

  const runReplica = (r: ReplicaState, sql: string, params: readonly unknown[] | undefined, v: Classification, reason: string, c: ConsistencyState | undefined): Promise<R> => {
    if (leastBusy) r.inflight++
    const p = exec(r.node, r.name, 'replica', reason, v.kind, sql, params)
    return p.then(
      (result) => {
        if (leastBusy) r.inflight--
        return result
      },
      (error: unknown) => {
        if (leastBusy) r.inflight--
        const verdict = retryableOnPrimary(error)
        if (!verdict || closed) throw error
        if (reason === 'explicit' && (error as { code?: string }).code === '25006') throw readOnlyViolation(sql, error)
        if (verdict === 'down') setReplicaHealth(r, false, 'query-failed')
        else if ((error as { code?: string }).code === '25006') classifier.learn(sql, LEARNED_WRITE)
        if (events.has('db.fallback')) events.emit('db.fallback', { reason: 'replica-error', node: r.name })
        return runPrimary(sql, params, verdict === 'refused' && (error as { code?: string }).code === '25006' ? LEARNED_WRITE : v, 'replica-error', c)
      },
    )
  }

  const routeRead = (sql: string, params: readonly unknown[] | undefined, v: Classification, c: ConsistencyState | undefined, explicit: boolean): Promise<R> => {
    const r = pick(c, !explicit)
    if (r !== undefined) return runReplica(r, sql, params, v, explicit ? 'explicit' : 'read', c)
    if (pickReason === 'read-your-writes' && waitMs > 0 && useLsn && c !== undefined && c.lsn > 0n) {
      return waitForReplica(c).then((w) => {
        if (w !== undefined) return runReplica(w, sql, params, v, 'read', c)
        if (events.has('db.fallback')) events.emit('db.fallback', { reason: pickReason })
        return runPrimary(sql, params, v, pickReason, c)
      })
    }
    if (events.has('db.fallback')) events.emit('db.fallback', { reason: pickReason })
    return runPrimary(sql, params, v, pickReason, c)
  }

  // ---- transactions -----------------------------------------------------------------------

  const txQuery = (tx: TxState, sql: string, params: readonly unknown[] | undefined): Promise<R> => {
    if (tx.done) return Promise.reject(new RiClosedError('db.transaction() connection (a query outlived its transaction)'))
    const v = classifier.get(sql)
    if (v.mayWrite) tx.wrote = true
    return exec(tx.session, primaryNode.name, 'primary', 'transaction', v.kind, sql, params)
  }

  const transaction = async <T>(fn: (tx: DbQueryable<R>) => Promise<T>, txOptions: TransactionOptions = {}): Promise<T> => {
    if (closed) throw new RiClosedError('db router')
    const outer = als.getStore()
    if (outer?.tx !== undefined && !outer.tx.done) {
      const tx = outer.tx
      const name = `ri_sp_${++tx.savepoints}`
      await tx.session.query(`SAVEPOINT ${name}`)
      try {
        const result = await fn({ query: (sql, params) => txQuery(tx, sql, params) })
        await tx.session.query(`RELEASE SAVEPOINT ${name}`)
        return result
      } catch (error) {
        await tx.session.query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => {})
        throw error
      }
    }
    if (typeof primaryNode.connect !== 'function') {
      throw new RiConfigError({ option: 'createDbRouter.primary', received: primaryNode, accepted: 'a node with connect() (pgNode has it) to run transactions' })
    }
    const session = (await primaryNode.connect()) as DbSession<unknown>
    const tx: TxState = { session, done: false, wrote: false, savepoints: 0 }
    let begin = txOptions.isolation ? TX_BEGIN[txOptions.isolation] : 'BEGIN'
    if (begin === undefined) {
      session.release()
      throw new RiConfigError({ option: 'transaction.isolation', received: txOptions.isolation, accepted: "'read committed', 'repeatable read' or 'serializable'" })
    }
    if (txOptions.readOnly) begin += ' READ ONLY'
    const c = outer?.c
    try {
      await exec(session, primaryNode.name, 'primary', 'transaction', 'transaction', begin, undefined)
      const result = await als.run({ c, tx }, () => fn({ query: (sql, params) => txQuery(tx, sql, params) }))
      await exec(session, primaryNode.name, 'primary', 'transaction', 'transaction', 'COMMIT', undefined)
      tx.done = true
      session.release()
      if (tx.wrote && c !== undefined && trackWrites) await recordWrite(c)
      return result
    } catch (error) {
      tx.done = true
      try {
        await session.query('ROLLBACK')
        session.release()
      } catch (rollbackError) {
        session.release(rollbackError as Error) // broken connection: let the pool discard it
      }
      if (tx.wrote && c !== undefined && trackWrites) await recordWrite(c) // a COMMIT may have landed before a failure
      throw error
    }
  }

  // ---- health probes ----------------------------------------------------------------------

  const lagFromSamples = (replay: bigint, now: number): number | null => {
    const last = samples[samples.length - 1]
    if (last === undefined) return null
    if (replay >= last.lsn) return 0
    // the oldest sample past the replay position: the missing WAL was written after the sample before it
    for (let i = 0; i < samples.length; i++) {
      if (samples[i]!.lsn > replay) return i === 0 ? now - samples[0]!.t : now - samples[i - 1]!.t
    }
    return 0
  }

  const probePrimary = async () => {
    try {
      if (primaryNode.walPosition) {
        const text = await withTimeout(primaryNode.walPosition(), timeoutMs, 'walPosition')
        const lsn = parseLsn(text)
        if (lsn !== undefined) {
          primaryWal = lsn
          primaryWalText = formatLsn(lsn)
          const prev = samples[samples.length - 1]
          if (prev === undefined || lsn > prev.lsn) {
            samples.push({ t: Date.now(), lsn })
            if (samples.length > MAX_SAMPLES) samples.shift()
          }
        }
      } else await withTimeout(primaryNode.ping(), timeoutMs, 'ping')
      if (!primaryHealthy) episodes.end('db.primary', `ri db: primary ${primaryNode.name} answers again`)
      primaryHealthy = true
    } catch (error) {
      primaryHealthy = false
      episodes.begin('db.primary', `ri db: primary ${primaryNode.name} does not answer probes`, { err: error })
    }
  }

  /** One probe of a replica's replay position and timestamp lag (no timeout: the caller bounds it). */
  const measureReplica = async (node: DbNode<unknown>): Promise<{ replayText: string | null; tsLag: number | null; inRecovery: boolean }> => {
    let replayText: string | null = null
    if (node.replayPosition) {
      replayText = await node.replayPosition()
      if (replayText === null) return { replayText, tsLag: null, inRecovery: false }
    } else await node.ping()
    const tsLag = node.replayLagMs ? await node.replayLagMs() : null
    return { replayText, tsLag, inRecovery: true }
  }

  const probeReplica = async (r: ReplicaState) => {
    if (r.probing) {
      // the previous probe still hangs (a frozen server): that is a failed probe, and no new one piles up
      setReplicaHealth(r, false, 'ping-failed')
      return
    }
    r.probing = true
    const work = measureReplica(r.node)
    work.then(
      () => {
        r.probing = false
      },
      () => {
        r.probing = false
      },
    )
    try {
      const { replayText, tsLag, inRecovery } = await withTimeout(work, timeoutMs, `probe of ${r.name}`)
      if (!inRecovery) {
        r.lagMs = null
        setReplicaHealth(r, false, 'not-in-recovery')
        return
      }
      const now = Date.now()
      const replay = replayText === null ? undefined : parseLsn(replayText)
      let lsnLag: number | null = null
      if (replay !== undefined) {
        if (replay > r.replay || !r.healthy) r.replay = replay
        r.replayText = formatLsn(replay)
        lsnLag = lagFromSamples(replay, now)
        r.lagBytes = primaryWal !== undefined && primaryWal > replay ? Number(primaryWal - replay) : 0
      }
      // timestamp lag over-reports after idle periods, LSN lag is bounded by the sample spacing: take the tighter bound
      const lag = tsLag !== null && lsnLag !== null ? Math.min(tsLag, lsnLag) : (tsLag ?? lsnLag)
      r.lagMs = lag === null ? null : Math.round(lag)
      const fresh = lag === null || lag <= maxLagMs
      if (events.has('db.replica.lag')) {
        events.emit('db.replica.lag', { node: r.name, lagMs: r.lagMs ?? -1, healthy: fresh, ...(r.lagBytes !== null ? { lagBytes: r.lagBytes } : {}) })
      }
      setReplicaHealth(r, fresh, fresh ? 'ok' : 'lagging')
    } catch (error) {
      r.lagMs = null
      if (events.has('db.replica.lag')) events.emit('db.replica.lag', { node: r.name, lagMs: -1, healthy: false })
      if (r.healthy || !r.probed) logger.debug({ err: error, node: r.name }, 'ri db: replica probe failed')
      setReplicaHealth(r, false, 'ping-failed')
    }
  }

  let probeRound: Promise<void> | undefined
  const runProbes = (): Promise<void> =>
    (probeRound ??= (async () => {
      await probePrimary()
      await Promise.all(replicas.map((r) => probeReplica(r)))
    })().finally(() => {
      probeRound = undefined
    }))

  let timer: NodeJS.Timeout | undefined
  let firstRound: Promise<void> = Promise.resolve()
  if (probes) {
    firstRound = runProbes()
    timer = setInterval(() => {
      if (!closed) void runProbes()
    }, intervalMs)
    timer.unref()
  } else {
    for (const r of replicas) {
      r.healthy = true
      r.probed = true
      r.reason = 'ok'
    }
    rebuildRotation()
  }

  // ---- public surface ---------------------------------------------------------------------

  const closedError = () => Promise.reject(new RiClosedError('db router'))

  const query = (sql: string, params?: readonly unknown[]): Promise<R> => {
    if (closed) return closedError()
    const store = als.getStore()
    if (store !== undefined && store.tx !== undefined && !store.tx.done) return txQuery(store.tx, sql, params)
    const v = classifier.get(sql)
    if (v.target === 'primary') return runPrimary(sql, params, v, v.reason, store?.c)
    return routeRead(sql, params, v, store?.c, false)
  }

  const primaryRole: DbQueryable<R> = {
    query(sql, params) {
      if (closed) return closedError()
      const store = als.getStore()
      if (store !== undefined && store.tx !== undefined && !store.tx.done) return txQuery(store.tx, sql, params)
      const v = classifier.get(sql)
      return runPrimary(sql, params, v, 'explicit', store?.c)
    },
  }

  const replicaRole: DbQueryable<R> = {
    query(sql, params) {
      if (closed) return closedError()
      const store = als.getStore()
      if (store !== undefined && store.tx !== undefined && !store.tx.done) return txQuery(store.tx, sql, params)
      const v = classifier.get(sql)
      if (v.reason === 'write' || v.reason === 'volatile' || v.reason === 'learned') return Promise.reject(readOnlyViolation(sql))
      return routeRead(sql, params, v, store?.c, true)
    },
  }

  const newState = (): ConsistencyState => ({ lsn: 0n, lsnText: undefined, writeAt: 0, wrote: false })

  const stateFromToken = (token: string | undefined): ConsistencyState => {
    const c = newState()
    if (!token) return c
    if (token.charCodeAt(0) === 116 /* t */) {
      const at = Number(token.slice(1))
      if (Number.isSafeInteger(at) && at > 0 && at <= Date.now()) c.writeAt = at
      return c
    }
    const lsn = parseLsn(token)
    if (lsn !== undefined) {
      c.lsn = lsn
      c.lsnText = formatLsn(lsn)
    }
    return c
  }

  const tokenOf = (c: ConsistencyState | undefined): string | undefined => {
    if (c === undefined || !c.wrote) return undefined
    if (useLsn && c.lsnText !== undefined) return c.lsnText
    return c.writeAt > 0 ? `t${c.writeAt}` : undefined
  }

  const status = (): DbStatus => ({
    primary: { name: primaryNode.name, healthy: primaryHealthy, walLsn: primaryWalText },
    replicas: replicas.map((r) => ({
      name: r.name,
      healthy: r.healthy,
      lagMs: r.lagMs,
      lagBytes: r.lagBytes,
      replayLsn: r.replayText,
      ...(r.healthy ? {} : { reason: r.reason }),
    })),
  })

  const router: DbRouter<R> = {
    query,
    primary: primaryRole,
    replica: replicaRole,
    events,
    transaction,
    scope: (fn) => als.run({ c: newState(), tx: undefined }, fn),
    runInScope: (token, fn) => als.run({ c: stateFromToken(token), tx: undefined }, fn),
    sessionToken: () => tokenOf(als.getStore()?.c),
    feature: (featureOptions) =>
      createDbFeature(featureOptions, {
        enter: (token) => {
          const c = stateFromToken(token)
          als.enterWith({ c, tx: undefined })
          return c
        },
        token: tokenOf,
      }),
    status,
    readiness() {
      const s = status()
      if (!s.primary.healthy) return { status: 'fail', output: `primary ${s.primary.name} does not answer`, details: s }
      const out = s.replicas.filter((r) => !r.healthy)
      if (out.length > 0) return { status: 'warn', output: `replicas out of rotation: ${out.map((r) => `${r.name} (${r.reason})`).join(', ')}`, details: s }
      return { status: 'pass', details: s }
    },
    async refresh() {
      await runProbes()
      return status()
    },
    ready: () => firstRound,
    async close() {
      if (closed) return
      closed = true
      if (timer) clearInterval(timer)
      await probeRound?.catch(() => {})
      const nodes = [primaryNode as DbNode<unknown>, ...replicas.map((r) => r.node)]
      await Promise.all(nodes.map((n) => n.close?.().catch((error: unknown) => logger.warn({ err: error, node: n.name }, 'ri db: closing a node failed'))))
    },
  }
  return router
}
