import { randomBytes } from 'node:crypto'

/** What the environment selects. With nothing set, everything runs in-process (embedded defaults). */
export interface AppConfig {
  readonly port: number
  readonly host: string
  /** `REDIS_URL`: cache L2 + bus, throttle counters and a readiness check on one Redis. */
  readonly redisUrl?: string
  /** `REDIS_CLUSTER_NODES=host:port,host:port`: an ioredis Cluster instead (cache L2 + bus, throttle store). */
  readonly redisClusterNodes?: ReadonlyArray<{ host: string; port: number }>
  /** `DATABASE_URL`: the PostgreSQL primary; unset = embedded PGlite. */
  readonly databaseUrl?: string
  /** `DATABASE_REPLICA_URLS`: comma-separated read replicas. */
  readonly replicaUrls: readonly string[]
  /** `RI_DB_SECRET` signs the read-your-writes cookie; a random one per process when unset. */
  readonly dbSecret: string
  /** `METRICS_TOKEN`: protect `/metrics` with `Authorization: Bearer <token>`. */
  readonly metricsToken?: string
  /** `ORDERS_SEED`: how many sample orders an empty database gets (default 20 000). */
  readonly seedOrders: number
  /** `RI_INSTANCE`: an `instance` label on every metric, so several instances behind one balancer stay apart. */
  readonly instance?: string
  /**
   * `RI_DRAIN_DELAY_MS`: on SIGTERM, how long readiness fails while requests are still served, so a
   * load balancer polling `/health/ready` stops routing here before the listener closes (default 0,
   * or @ri/health's Kubernetes default when it detects Kubernetes).
   */
  readonly drainDelayMs?: number
}

const list = (value: string | undefined) =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')

function drainDelay(value: string | undefined): number | undefined {
  if (!value) return undefined
  const ms = Number(value)
  if (!Number.isInteger(ms) || ms < 0) throw new Error(`RI_DRAIN_DELAY_MS must be a whole number of milliseconds, got ${value}`)
  return ms
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const port = Number(env.PORT ?? 3000)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number (0 picks a free one), got ${env.PORT}`)
  const nodes = list(env.REDIS_CLUSTER_NODES).map((hp) => {
    const i = hp.lastIndexOf(':')
    const p = Number(hp.slice(i + 1))
    if (i <= 0 || !Number.isInteger(p)) throw new Error(`REDIS_CLUSTER_NODES takes host:port,host:port..., got ${hp}`)
    return { host: hp.slice(0, i), port: p }
  })
  return {
    port,
    host: env.HOST ?? '127.0.0.1',
    redisUrl: env.REDIS_URL || undefined,
    redisClusterNodes: nodes.length > 0 ? nodes : undefined,
    databaseUrl: env.DATABASE_URL || undefined,
    replicaUrls: list(env.DATABASE_REPLICA_URLS),
    dbSecret: env.RI_DB_SECRET || randomBytes(24).toString('base64url'),
    metricsToken: env.METRICS_TOKEN || undefined,
    seedOrders: env.ORDERS_SEED ? Number(env.ORDERS_SEED) : 20_000,
    instance: env.RI_INSTANCE || undefined,
    drainDelayMs: drainDelay(env.RI_DRAIN_DELAY_MS),
  }
}
