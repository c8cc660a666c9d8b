import { type Cache, createCache } from '@ri/cache'
import { createEvents, type Logger, type RiEvents } from '@ri/core'
import { createHealth, dbRouterCheck, eventLoopCheck, type Health, type HealthCheck, redisCheck } from '@ri/health'
import { createMetrics, type Metrics } from '@ri/metrics'
import { createSlowLog, type SlowLog } from '@ri/slowlog'
import { createThrottle, type Throttle } from '@ri/throttle'
import type { RiModuleOptions } from '@ri/nest'
import { Cluster, Redis } from 'ioredis'
import { Registry } from 'prom-client'
import type { AppConfig } from './config.js'
import { type Database, openDatabase } from './database.js'
import { createReplicaPurge, type ReplicaPurge } from './replica-purge.js'
import { createStore, type Store } from './store.js'

/** Everything the app is built from: one instance of each ri package, sharing one event bus. */
export interface Infra {
  readonly config: AppConfig
  readonly events: RiEvents
  readonly logger: Logger
  readonly database: Database
  readonly store: Store
  /** Second purge of written tags once the replicas have the write (no-op without replicas). */
  readonly replicaPurge: ReplicaPurge
  readonly cache: Cache
  /** The namespace HTTP responses are stored in (`@Cached()`); tags are shared by every namespace. */
  readonly responses: Cache
  readonly throttle: Throttle
  readonly slowlog: SlowLog
  readonly health: Health
  readonly metrics: Metrics
  readonly redis: Redis | Cluster | undefined
  /** What the app runs on, for the banner: `cache: L1 (in-process)`, `database: PGlite (embedded)` ... */
  readonly modes: Readonly<Record<'cache' | 'throttle' | 'database', string>>
  /** `RiModule.forRoot()` options. */
  readonly riOptions: RiModuleOptions
}

export interface InfraOptions {
  logger: Logger
  /** Where slow-request lines go (default: `logger`). */
  slowLogger?: Logger
  /** false: no signal handlers and no exit (tests); the app's `close()` still drains through health. */
  signals?: boolean
}

function connectRedis(config: AppConfig): Redis | Cluster | undefined {
  // Fail fast instead of queueing commands behind a dead connection: every ri package degrades instead.
  if (config.redisClusterNodes) return new Cluster([...config.redisClusterNodes], { redisOptions: { maxRetriesPerRequest: 1 } })
  if (config.redisUrl) return new Redis(config.redisUrl, { maxRetriesPerRequest: 1 })
  return undefined
}

export async function createInfra(config: AppConfig, options: InfraOptions): Promise<Infra> {
  const { logger } = options
  const events = createEvents()
  const redis = connectRedis(config)
  // One client for everything: on a Cluster @ri/cache groups its commands by hash slot itself.
  const l2 = redis ?? false
  const database = await openDatabase(config, { events, logger: logger.child({ component: 'db' }) })
  const cache = createCache({ namespace: 'shop', l2, ttl: '30s', grace: '10m', events, logger: logger.child({ component: 'cache' }) })
  const responses = cache.namespace('http')
  const throttle = createThrottle({
    store: redis ? { redis, prefix: 'shop:rl' } : 'memory',
    // Per client ip (X-Forwarded-For honoured from a loopback proxy, see trustProxy below).
    default: { limit: 100, window: '1s' },
    events,
    logger: logger.child({ component: 'throttle' }),
  })
  const slowlog = createSlowLog({
    logger: options.slowLogger ?? logger,
    thresholdMs: '250ms',
    serverTiming: true,
    events,
  })
  const checks: HealthCheck[] = [dbRouterCheck(database.db, { maxLagMs: '5s' }), eventLoopCheck({ maxDelayMs: 200 })]
  if (redis) checks.push(redisCheck(redis, { critical: false })) // a Redis outage degrades (warn), it does not stop serving
  const health = createHealth({
    checks,
    events,
    logger: logger.child({ component: 'health' }),
    service: { serviceId: 'ri-reference-app' },
    shutdown: {
      ...(options.signals === false ? { signals: [], exit: false } : { timeoutMs: '10s' }),
      ...(config.drainDelayMs !== undefined ? { drainDelayMs: config.drainDelayMs } : {}),
    },
  })
  // RiModule subscribes metrics to the shared bus (createRiPipeline): no `events` here, or it would count twice.
  // Behind a balancer every instance exposes the same series: an `instance` label keeps them apart
  // (Prometheus renames it `exported_instance` unless the scrape job sets honor_labels).
  const registry = new Registry()
  if (config.instance) registry.setDefaultLabels({ instance: config.instance })
  const metrics = createMetrics({ registry })
  // Cleanup hooks run in reverse registration order: metrics, cache, Redis, then the database.
  health.onShutdown('database', () => database.db.close())
  if (redis) health.onShutdown('redis', async () => void (await redis.quit()))
  health.onShutdown('cache', () => cache.close())
  health.onShutdown('metrics', () => metrics.close())

  return {
    config,
    events,
    logger,
    database,
    store: createStore(database.db),
    replicaPurge: createReplicaPurge(database.db, responses, logger.child({ component: 'replica-purge' })),
    cache,
    responses,
    throttle,
    slowlog,
    health,
    metrics,
    redis,
    modes: {
      cache: l2 ? `L1 + L2 on ${config.redisClusterNodes ? 'Redis Cluster' : 'Redis'} (bus on)` : 'L1 (in-process)',
      throttle: config.redisClusterNodes ? 'Redis Cluster' : redis ? 'Redis' : 'in-memory',
      database: database.kind === 'pglite' ? 'PGlite (embedded PostgreSQL, in-memory)' : `PostgreSQL primary + ${database.replicas} replica(s)`,
    },
    riOptions: {
      metrics,
      health,
      slowlog,
      throttle,
      cache: responses,
      db: { feature: () => database.db.feature({ secret: config.dbSecret, maxAge: '10s' }), events: database.db.events },
      events,
      logger,
      // The app expects to sit behind a reverse proxy on the same host; the load script sends X-Forwarded-For.
      trustProxy: 'loopback',
      // Clients quote the id when they report a problem; it is in every slow-log line too.
      echoRequestId: true,
    },
  }
}
