import { noopLogger } from '@ri/core'
import { describeWithPostgres, type PostgresCluster, requireService, startPostgres, startRedis, startRedisCluster } from '@ri/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningApp, startApp } from './app.js'
import { configFromEnv } from './config.js'

interface RedisSetup {
  readonly env: Record<string, string>
  stop(): Promise<void>
}

// Both topologies the app supports: REDIS_URL, and REDIS_CLUSTER_NODES (cache L2 + bus and the
// throttle on a three-master cluster).
const topologies: Array<[string, () => Promise<RedisSetup>]> = [
  ['a single Redis', async () => {
    const r = await startRedis()
    return { env: { REDIS_URL: r.url }, stop: () => r.stop() }
  }],
  ['a three-master Redis Cluster', async () => {
    const c = await startRedisCluster()
    return { env: { REDIS_CLUSTER_NODES: c.startupNodes.map((n) => `${n.host}:${n.port}`).join(',') }, stop: () => c.stop() }
  }],
]

// Locally without redis-server this suite is skipped (with a printed reason); under CI it fails.
const describeWithServices = requireService('redis') ? describeWithPostgres : describe.skip

// The same app on real services: Redis (cache L2 + bus, throttle) and a PostgreSQL primary with a
// streaming replica that applies WAL 300 ms late, so replica reads are visibly stale after a write.
for (const [topology, startRedisSetup] of topologies)
describeWithServices(`reference app on ${topology} and PostgreSQL primary + replica`, () => {
  let redis: RedisSetup | undefined
  let pg: PostgresCluster | undefined
  let running: RunningApp
  let base = ''

  beforeAll(async () => {
    ;[redis, pg] = await Promise.all([startRedisSetup(), startPostgres({ replicas: 1, applyDelayMs: 300 })])
    const env = { PORT: '0', ...redis.env, DATABASE_URL: pg.primary.url, DATABASE_REPLICA_URLS: pg.replicas[0]!.url, ORDERS_SEED: '3000' }
    running = await startApp(configFromEnv(env), { logger: noopLogger, signals: false, nestLogLevels: false })
    base = running.url
    // The cache trusts its L1 only while its bus is connected: start once it is (bounded, and loud
    // if it never connects, rather than a confusing MISS later).
    const deadline = Date.now() + 20_000
    while (!/^ri_cache_bus_connected 1$/m.test(await (await fetch(`${base}/metrics`)).text())) {
      if (Date.now() > deadline) throw new Error('the cache bus did not connect to Redis within 20 s')
      await new Promise((r) => setTimeout(r, 50))
    }
    // The seed is written on the primary; reads go to the replica, which replays it after its apply
    // delay. Wait until the replica has it (product 10 is seeded by the same statement as product 9,
    // which the test reads first and expects as a MISS).
    while ((await fetch(`${base}/products/10`)).status !== 200) {
      if (Date.now() > deadline) throw new Error('the replica did not replay the seed within 20 s')
      await new Promise((r) => setTimeout(r, 50))
    }
  })
  afterAll(async () => {
    await Promise.allSettled([redis?.stop(), pg?.stop()])
  })

  it('reads from the replica, writes to the primary, the writer reads its write, everyone converges', async () => {
    const price = async (headers: Record<string, string> = {}) => {
      const res = await fetch(`${base}/products/9`, { headers })
      expect(res.status).toBe(200)
      return { cache: res.headers.get('x-cache'), priceCents: ((await res.json()) as { priceCents: number }).priceCents }
    }
    const before = await price()
    expect(before.cache).toBe('MISS')
    // The MISS stores the response off the request path; the next reads hit once it has landed.
    let again = await price()
    for (let i = 0; i < 40 && again.cache !== 'HIT'; i++) {
      await new Promise((r) => setTimeout(r, 50))
      again = await price()
    }
    expect(again.cache).toBe('HIT')

    const write = await fetch(`${base}/products/9/price`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ priceCents: before.priceCents + 1 }) })
    expect(write.status).toBe(200)
    const cookie = write.headers.get('set-cookie')!.split(';')[0]!
    // The writer: its cookie skips the cache and the lagging replica (read-your-writes by LSN).
    expect(await price({ cookie })).toEqual({ cache: null, priceCents: before.priceCents + 1 })
    // Another client, at once: may read the old price from the replica (300 ms behind) ...
    await price()
    // ... but the second purge, once the replica replayed the write, brings everyone to the new price.
    await new Promise((r) => setTimeout(r, 1_000))
    expect((await price()).priceCents).toBe(before.priceCents + 1)

    const text = await (await fetch(`${base}/metrics`)).text()
    expect(text).toMatch(/ri_db_queries_total\{role="replica",reason="read"\} [1-9]/)
    expect(text).toMatch(/ri_db_queries_total\{role="primary",reason="read-your-writes"\} [1-9]/)
    expect(text).toMatch(/ri_cache_bus_connected 1/)
    expect(text).toMatch(/ri_throttle_decisions_total\{[^}]*store="redis"\} [1-9]/)
    const ready = (await (await fetch(`${base}/health/ready`)).json()) as { status: string; checks: Record<string, unknown> }
    expect(ready.status).toBe('pass')
    expect(Object.keys(ready.checks)).toEqual(expect.arrayContaining(['db:replication', 'redis:responseTime']))
  })

  it('shuts down cleanly: drain, then cache, Redis and the database close without error', async () => {
    const result = await running.infra.health.shutdown('test')
    expect(result).toMatchObject({ code: 0, timedOut: false })
    await running.close()
  })
})
