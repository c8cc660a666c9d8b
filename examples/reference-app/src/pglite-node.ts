import { PGlite } from '@electric-sql/pglite'
import type { DbNode, PgResult } from '@ri/db'

/** A `DbNode` over PGlite (PostgreSQL compiled to WebAssembly, in this process), plus `exec` for multi-statement scripts. */
export interface PgliteNode extends DbNode<PgResult> {
  exec(sql: string): Promise<void>
}

/**
 * The embedded database: one in-memory PGlite instance as @ri/db's primary. PGlite is a single
 * connection and queues statements itself, so `query` needs no pool; it reports WAL positions,
 * so the router runs read-your-writes in LSN mode as it would on a real primary.
 * No `connect()`: `db.transaction()` is not available on the embedded database (the app writes
 * with single statements, data-modifying CTEs where two tables change together).
 */
export async function pgliteNode(options: { name?: string; dataDir?: string } = {}): Promise<PgliteNode> {
  const pg = await PGlite.create(options.dataDir)
  const query = async (sql: string, params?: readonly unknown[]): Promise<PgResult> => {
    const r = await pg.query<Record<string, unknown>>(sql, params as unknown[] | undefined)
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length, command: '', fields: r.fields }
  }
  return {
    name: options.name ?? 'pglite',
    query,
    async exec(sql) {
      await pg.exec(sql)
    },
    async walPosition() {
      const r = await pg.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')
      return r.rows[0]!.lsn
    },
    async ping() {
      await pg.query('SELECT 1')
    },
    async close() {
      if (!pg.closed) await pg.close()
    },
  }
}
