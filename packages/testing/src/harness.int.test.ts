import fs from 'node:fs'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis, type RedisOptions as IORedisOptions } from 'ioredis'
import pg from 'pg'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { describeWithPostgres, describeWithRedis, isPortFree, startPostgres, startRedis, type PgNode, type PostgresCluster, type RedisServer } from './index.js'

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

describeWithRedis('startRedis', () => {
  const servers: RedisServer[] = []
  const clients: Redis[] = []
  const client = (url: string, opts: IORedisOptions = {}) => {
    const c = new Redis(url, opts)
    c.on('error', () => {}) // reconnect noise after kill() is expected
    clients.push(c)
    return c
  }
  afterAll(async () => {
    for (const c of clients) c.disconnect()
    await Promise.all(servers.map((s) => s.stop()))
  })

  it('serves commands, dies on kill(), comes back on the same port with restart(), and stop() ends the process', async () => {
    const server = await startRedis()
    servers.push(server)
    expect(server.host).toBe('127.0.0.1')
    expect(server.port).not.toBe(6379)
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
    expect(server.running).toBe(true)

    // Fail fast instead of queueing while disconnected, but keep reconnecting.
    const c = client(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 50, lazyConnect: true })
    await c.connect()
    await c.set('k', 'v')
    expect(await c.get('k')).toBe('v')

    const firstPid = server.pid
    await server.kill()
    expect(server.running).toBe(false)
    expect(processGone(firstPid)).toBe(true)
    expect(await isPortFree(server.port)).toBe(true)
    await expect(c.get('k')).rejects.toThrow()

    const port = server.port
    await server.restart()
    expect(server.port).toBe(port)
    expect(server.pid).not.toBe(firstPid)
    const fresh = client(server.url)
    expect(await fresh.ping()).toBe('PONG')
    expect(await fresh.get('k')).toBeNull() // no persistence across restarts
    await vi.waitFor(async () => expect(await c.ping()).toBe('PONG'), { timeout: 5_000, interval: 50 })

    const pid = server.pid
    const dir = server.dir
    await server.stop()
    expect(server.running).toBe(false)
    expect(processGone(pid)).toBe(true)
    expect(fs.existsSync(dir)).toBe(false)
  })

  it('reports a clear error when a fixed port is already taken', async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      await expect(startRedis({ port })).rejects.toThrow(new RegExp(`port ${port} already in use`))
    } finally {
      blocker.close()
    }
  })

  it('pause() makes commands time out, resume() makes them succeed again', async () => {
    const server = await startRedis()
    servers.push(server)
    const c = client(server.url, { commandTimeout: 200, maxRetriesPerRequest: 0 })
    expect(await c.ping()).toBe('PONG')
    server.pause()
    try {
      await expect(c.ping()).rejects.toThrow(/timed out/i)
    } finally {
      server.resume()
    }
    expect(await c.ping()).toBe('PONG')
  })
})

describeWithPostgres('startPostgres (primary + 1 replica, applyDelayMs 1000)', () => {
  const APPLY_DELAY_MS = 1_000
  let cluster: PostgresCluster
  const clients: pg.Client[] = []

  async function connect(node: PgNode, extra: pg.ClientConfig = {}): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: node.url, ...extra })
    c.on('error', () => {}) // connections to killed nodes error asynchronously
    clients.push(c)
    await c.connect()
    return c
  }
  async function one<T>(c: pg.Client, sql: string, params: unknown[] = []): Promise<T> {
    const { rows } = await c.query(sql, params)
    return Object.values(rows[0] as object)[0] as T
  }
  async function pollUntil(what: string, fn: () => Promise<boolean>, timeoutMs = 10_000): Promise<number> {
    const t0 = performance.now()
    while (!(await fn())) {
      if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
      await sleep(20)
    }
    return performance.now() - t0
  }

  beforeAll(async () => {
    cluster = await startPostgres({ replicas: 1, applyDelayMs: APPLY_DELAY_MS })
  })
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => {})))
    await cluster?.stop()
  })

  it('replica is a hot standby that applies commits only after the configured delay', async () => {
    const replicaNode = cluster.replicas[0]!
    expect(cluster.replicas).toHaveLength(1)
    expect(cluster.primary.url).toBe(`postgres://postgres@127.0.0.1:${cluster.primary.port}/postgres`)
    expect([cluster.primary.port, replicaNode.port]).not.toContain(5432)

    const primary = await connect(cluster.primary)
    const replica = await connect(replicaNode)
    expect(await one(primary, 'select pg_is_in_recovery()')).toBe(false)
    expect(await one(replica, 'select pg_is_in_recovery()')).toBe(true)

    await primary.query('create table t (id int primary key, note text)')
    await pollUntil('table t on the replica', async () => (await one<string | null>(replica, "select to_regclass('public.t')::text")) !== null)
    const lsnBefore = await one<string>(replica, 'select pg_last_wal_replay_lsn()::text')

    await primary.query("insert into t values (1, 'one')")
    const committedAt = performance.now()
    expect(await one(replica, 'select count(*)::int from t where id = 1')).toBe(0)
    await pollUntil('row 1 on the replica', async () => (await one<number>(replica, 'select count(*)::int from t where id = 1')) === 1)
    const delay = performance.now() - committedAt
    expect(delay).toBeGreaterThanOrEqual(APPLY_DELAY_MS * 0.9)
    expect(delay).toBeLessThan(10_000)

    const advanced = await one<string>(replica, 'select pg_wal_lsn_diff(pg_last_wal_replay_lsn(), $1::pg_lsn)::text', [lsnBefore])
    expect(Number(advanced)).toBeGreaterThan(0)
  })

  it('pause() freezes the primary and resume() brings it back', async () => {
    const c = await connect(cluster.primary, { query_timeout: 300 })
    cluster.primary.pause()
    try {
      await expect(c.query('select 1')).rejects.toThrow(/timeout/i)
    } finally {
      cluster.primary.resume()
    }
    const fresh = await connect(cluster.primary)
    expect(await one(fresh, 'select 1')).toBe(1)
  })

  it('a SIGKILLed replica restarts on the same port, back in recovery, and catches up', async () => {
    const replicaNode = cluster.replicas[0]!
    const primary = await connect(cluster.primary)
    const pid = replicaNode.pid
    const port = replicaNode.port

    await replicaNode.kill()
    expect(replicaNode.running).toBe(false)
    expect(processGone(pid)).toBe(true)
    await primary.query("insert into t values (2, 'two')")

    await replicaNode.restart()
    expect(replicaNode.running).toBe(true)
    expect(replicaNode.port).toBe(port)
    expect(replicaNode.pid).not.toBe(pid)
    const replica = await connect(replicaNode)
    expect(await one(replica, 'select pg_is_in_recovery()')).toBe(true)
    await pollUntil('row 2 on the restarted replica', async () => (await one<number>(replica, 'select count(*)::int from t where id = 2')) === 1)
    expect(await one(replica, 'select status from pg_stat_wal_receiver')).toBe('streaming')
  })

  it('stop() ends every server and removes the temp dir', async () => {
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})))
    const pids = [cluster.primary.pid, ...cluster.replicas.map((r) => r.pid)]
    await cluster.stop()
    for (const pid of pids) expect(processGone(pid)).toBe(true)
    expect(cluster.primary.running).toBe(false)
    expect(fs.existsSync(cluster.dir)).toBe(false)
  })
})
