import { expect, it } from 'vitest'
import { parseLsn } from './lsn.js'
import type { DbNode } from './node.js'

/** What the contract needs to know about the server behind a node. */
export interface NodeContractTarget {
  /** A node on the primary. */
  primary: () => DbNode<{ rows: any[] }>
  /** A node on a streaming replica, when the cluster has one. */
  replica?: () => DbNode<{ rows: any[] }>
}

/**
 * The shared contract every DbNode implementation passes (unstorage's `testDriver()` shape).
 * Call it inside a `describe` whose `beforeAll` started the servers.
 */
export function runDbNodeContract(target: NodeContractTarget): void {
  it('has a name and answers query() and ping()', async () => {
    const node = target.primary()
    expect(typeof node.name).toBe('string')
    expect(node.name.length).toBeGreaterThan(0)
    const res = await node.query('SELECT $1::int + 1 AS n', [41])
    expect(res.rows[0].n).toBe(42)
    await expect(node.ping()).resolves.toBeUndefined()
  })

  it('rejects query() with the server error for bad SQL', async () => {
    await expect(target.primary().query('SELEC nonsense')).rejects.toMatchObject({ code: '42601' })
  })

  it('walPosition() on the primary is a pg_lsn that advances after a write', async () => {
    const node = target.primary()
    if (!node.walPosition) return
    await node.query('CREATE TABLE IF NOT EXISTS ri_contract (id serial primary key, v text)')
    const before = parseLsn(await node.walPosition())
    await node.query("INSERT INTO ri_contract (v) VALUES ('x')")
    const after = parseLsn(await node.walPosition())
    expect(before).toBeTypeOf('bigint')
    expect(after! > before!).toBe(true)
  })

  it('waiting() is a non-negative number when present', () => {
    const node = target.primary()
    if (!node.waiting) return
    expect(node.waiting()).toBeGreaterThanOrEqual(0)
  })

  it('connect() pins one session: transaction state survives between its queries', async () => {
    const node = target.primary()
    if (!node.connect) return
    const session = await node.connect()
    try {
      await session.query('BEGIN')
      const a = await session.query('SELECT txid_current() AS x')
      const b = await session.query('SELECT txid_current() AS x')
      expect(a.rows[0].x).toBe(b.rows[0].x)
      await session.query('ROLLBACK')
    } finally {
      session.release()
    }
  })

  it('replayPosition() on a replica is a pg_lsn and null on the primary; replayLagMs() is a number on a replica', async () => {
    const primary = target.primary()
    if (primary.replayPosition) expect(await primary.replayPosition()).toBeNull()
    if (!target.replica) return
    const replica = target.replica()
    if (replica.replayPosition) expect(parseLsn(await replica.replayPosition())).toBeTypeOf('bigint')
    if (replica.replayLagMs) expect(await replica.replayLagMs()).toBeGreaterThanOrEqual(0)
    if (primary.replayLagMs) expect(await primary.replayLagMs()).toBeNull()
  })
}
