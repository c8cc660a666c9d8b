import { describeWithPostgres, type PostgresCluster, startPostgres } from '@ri/testing'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type DbRouterStatus, dbRouterCheck, pgCheck } from './checks/builtin.js'
import { createHealth, type Health } from './health.js'
import { get, sleep, startServer, type TestServer } from './test-helpers.js'

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await fn()) return
    await sleep(50)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A minimal router with the structural `status()` @ri/db is expected to offer, over real nodes. */
function miniRouter(primary: pg.Pool, replicas: Array<{ name: string; pool: pg.Pool }>) {
  const probe = async (pool: pg.Pool, sql: string) => {
    try {
      const r = await pool.query(sql)
      return { healthy: true, row: r.rows[0] as Record<string, unknown> }
    } catch (error) {
      return { healthy: false, error: (error as Error).message || 'unreachable' }
    }
  }
  return {
    async status(): Promise<DbRouterStatus> {
      const p = await probe(primary, 'SELECT 1')
      const rs = await Promise.all(
        replicas.map(async ({ name, pool }) => {
          const r = await probe(pool, 'SELECT COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000, 0)::float8 AS lag')
          return { name, healthy: r.healthy, lagMs: r.healthy ? Math.round(Number(r.row!.lag)) : null, error: r.error }
        }),
      )
      return { primary: { name: 'primary', healthy: p.healthy, error: p.error }, replicas: rs }
    },
  }
}

describeWithPostgres('pgCheck and dbRouterCheck against real PostgreSQL', () => {
  let cluster: PostgresCluster
  let primary: pg.Pool
  let replica: pg.Pool
  let health: Health
  let srv: TestServer

  beforeAll(async () => {
    cluster = await startPostgres({ replicas: 1 })
    primary = new pg.Pool({ connectionString: cluster.primary.url, max: 2, connectionTimeoutMillis: 1_000 })
    replica = new pg.Pool({ connectionString: cluster.replicas[0]!.url, max: 2, connectionTimeoutMillis: 1_000 })
    primary.on('error', () => {})
    replica.on('error', () => {})
    health = createHealth({
      cacheMs: 100,
      budgetMs: 5_000,
      shutdown: false,
      checks: [pgCheck(primary, { timeoutMs: 2_000 }), dbRouterCheck(miniRouter(primary, [{ name: 'replica-1', pool: replica }]), { maxLagMs: '30s', timeoutMs: 3_000 })],
    })
    srv = await startServer(health)
  })
  afterAll(async () => {
    health?.close()
    await srv?.close()
    await primary?.end().catch(() => {})
    await replica?.end().catch(() => {})
    await cluster?.stop()
  })

  it('passes with SELECT 1 timing, pool counts and replica lag', async () => {
    await until('readiness to pass', async () => (await get(`${srv.url}/health/ready`)).json().status === 'pass')
    const res = await get(`${srv.url}/health/ready`)
    expect(res.status).toBe(200)
    const body = res.json()
    expect(body.checks['postgres:responseTime'][0]).toMatchObject({ status: 'pass', componentType: 'datastore', observedUnit: 'ms' })
    expect(body.checks['postgres:responseTime'][0].totalCount).toBeGreaterThanOrEqual(1)
    const [p, r] = body.checks['db:replication']
    expect(p).toMatchObject({ componentId: 'primary', status: 'pass' })
    expect(r).toMatchObject({ componentId: 'replica-1', status: 'pass', observedUnit: 'ms' })
  })

  it('replica down is warn (200); primary down is fail (503); both recover', async () => {
    await cluster.replicas[0]!.kill()
    await until('replica warn', async () => (await get(`${srv.url}/health/ready`)).json().status === 'warn')
    const warned = await get(`${srv.url}/health/ready`)
    expect(warned.status).toBe(200)
    expect(warned.json().checks['db:replication'][1].status).toBe('warn')

    await cluster.primary.kill()
    await until('primary fail', async () => (await get(`${srv.url}/health/ready`)).status === 503)
    const failed = (await get(`${srv.url}/health/ready`)).json()
    expect(failed.checks['postgres:responseTime'][0].status).toBe('fail')

    await cluster.primary.restart()
    await cluster.replicas[0]!.restart()
    await until('pass again', async () => (await get(`${srv.url}/health/ready`)).json().status === 'pass', 20_000)
  })
})
