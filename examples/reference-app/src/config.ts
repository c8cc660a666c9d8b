import { randomBytes } from 'node:crypto'

/** What the environment selects. With nothing set, everything runs in-process (embedded defaults). */
export interface AppConfig {
  readonly port: number
  readonly host: string
  /** `REDIS_URL`: cache L2 + bus, throttle counters and a readiness check on one Redis. */
  readonly redisUrl?: string
  /** `REDIS_CLUSTER_NODES=host:port,host:port`: an ioredis Cluster instead (throttle store). */
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
}

const list = (value: string | undefined) =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')

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
  }
}
