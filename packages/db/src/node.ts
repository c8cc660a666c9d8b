/**
 * The node interface: one small object per database server (unstorage-driver style). The router
 * only needs `query` and `ping`; WAL positions, pool pressure, sessions and close are optional
 * and unlock read-your-writes by LSN, the least-busy strategy, transactions and `db.close()`.
 */

/**
 * One database server the router can send statements to.
 *
 * @example
 * // A node for any driver: only `name`, `query` and `ping` are required.
 * const node: DbNode<{ rows: unknown[] }> = {
 *   name: 'analytics-replica',
 *   query: (sql, params) => myDriver.execute(sql, params),
 *   ping: async () => { await myDriver.execute('SELECT 1') },
 *   replayPosition: async () => (await myDriver.execute('SELECT pg_last_wal_replay_lsn()::text AS l')).rows[0].l,
 * }
 */
export interface DbNode<R = unknown> {
  /** Stable name, used in events, spans, logs and `db.status()`. */
  readonly name: string
  /** Runs one statement (autocommit) and resolves with the driver's result. */
  query(sql: string, params?: readonly unknown[]): Promise<R>
  /**
   * Primary: the current WAL insert position (`pg_current_wal_insert_lsn()` as text,
   * `'16/B374D848'`). Enables exact read-your-writes.
   */
  walPosition?(): Promise<string>
  /** Replica: the last replayed WAL position (`pg_last_wal_replay_lsn()`), null when not in recovery. */
  replayPosition?(): Promise<string | null>
  /** Replica: lag by replay timestamp in ms (0 when everything received is replayed), null when unknown. */
  replayLagMs?(): Promise<number | null>
  /** Resolves when the server answers; rejects otherwise. */
  ping(): Promise<void>
  /** Callers waiting for a connection right now (pool pressure), for the least-busy strategy. */
  waiting?(): number
  /** A dedicated session (one connection) for transactions; released by the router. */
  connect?(): Promise<DbSession<R>>
  /** Releases the node's resources; called by `db.close()`. */
  close?(): Promise<void>
}

/** One pinned connection, as `DbNode.connect()` returns it. */
export interface DbSession<R = unknown> {
  query(sql: string, params?: readonly unknown[]): Promise<R>
  /** Returns the connection; pass the error when it is broken so the pool discards it. */
  release(error?: Error): void
}

/** The result shape of `pg`'s `query()` (structural: no import of `pg`). */
export interface PgResult<Row = any> {
  rows: Row[]
  rowCount: number | null
  command: string
  fields: unknown[]
}

/** What `pgNode` needs from a `pg.Pool` (structural, so `pg` stays an optional peer). */
export interface PgPoolLike {
  query(text: string, values?: any[]): Promise<any>
  connect(): Promise<PgPoolClientLike>
  end(): Promise<void>
  readonly waitingCount?: number
  on?(event: 'error', listener: (error: Error) => void): unknown
  listenerCount?(event: 'error'): number
}

/** What `pgNode` needs from a checked-out `pg.PoolClient`. */
export interface PgPoolClientLike {
  query(text: string, values?: any[]): Promise<any>
  release(error?: Error | boolean): void
}

export interface PgNodeOptions {
  /** Node name for events, logs and status. Default `'pg'`. */
  name?: string
  /** End the pool on `db.close()`. Default true. */
  endPoolOnClose?: boolean
  /**
   * Called for errors of idle pooled connections (a restarted server). pg emits them on the pool
   * and an unhandled `'error'` event would crash the process, so pgNode adds a listener when the
   * pool has none. Default: ignore (the next query fails and the router degrades).
   */
  onIdleError?: (error: Error) => void
}

const WAL_SQL = 'SELECT pg_current_wal_insert_lsn()::text AS lsn'
const REPLAY_SQL = 'SELECT pg_last_wal_replay_lsn()::text AS lsn'
// Timestamp lag is only meaningful while something received is still waiting for replay; when
// everything received is replayed the replica is as fresh as its WAL stream (LSN lag covers that).
const LAG_SQL =
  'SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 ' +
  'ELSE GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::float8 END AS lag'

/**
 * Wraps a `pg.Pool` as a `DbNode`: queries through the pool, WAL positions with
 * `pg_current_wal_insert_lsn()` / `pg_last_wal_replay_lsn()`, lag from
 * `pg_last_xact_replay_timestamp()`, sessions with `pool.connect()`, pressure from `waitingCount`.
 *
 * The insert position (not `pg_current_wal_lsn()`, the write position) is recorded after a write:
 * with `synchronous_commit = off` a commit is acknowledged before it is written, so only the insert
 * position is guaranteed to be at or past the commit record.
 *
 * @example
 * import pg from 'pg'
 * const db = createDbRouter({
 *   primary: pgNode(new pg.Pool({ connectionString: process.env.DATABASE_URL }), { name: 'primary' }),
 *   replicas: [pgNode(new pg.Pool({ connectionString: process.env.REPLICA_URL }), { name: 'replica-a' })],
 * })
 */
export function pgNode(pool: PgPoolLike, options: PgNodeOptions = {}): DbNode<PgResult> {
  const name = options.name ?? 'pg'
  const endOnClose = options.endPoolOnClose ?? true
  if (typeof pool.on === 'function' && (typeof pool.listenerCount !== 'function' || pool.listenerCount('error') === 0)) {
    pool.on('error', options.onIdleError ?? (() => {}))
  }
  const node: DbNode<PgResult> = {
    name,
    query: (sql, params) => pool.query(sql, params as unknown[] | undefined),
    async walPosition() {
      const res = (await pool.query(WAL_SQL)) as PgResult<{ lsn: string }>
      return res.rows[0]!.lsn
    },
    async replayPosition() {
      const res = (await pool.query(REPLAY_SQL)) as PgResult<{ lsn: string | null }>
      return res.rows[0]?.lsn ?? null
    },
    async replayLagMs() {
      const res = (await pool.query(LAG_SQL)) as PgResult<{ lag: number | null }>
      const lag = res.rows[0]?.lag
      return lag === null || lag === undefined ? null : Number(lag)
    },
    async ping() {
      await pool.query('SELECT 1')
    },
    waiting: () => pool.waitingCount ?? 0,
    async connect() {
      const client = await pool.connect()
      return {
        query: (sql, params) => client.query(sql, params as unknown[] | undefined),
        release: (error) => client.release(error),
      }
    },
    async close() {
      if (endOnClose) await pool.end()
    },
  }
  return node
}
