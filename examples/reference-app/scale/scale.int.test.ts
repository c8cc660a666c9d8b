import { describeWithPostgres, requireService } from '@ri/testing'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { formatTable, runChaos, writeReport } from './chaos.js'
import { type Fleet, startFleet } from './fleet.js'
import { startLoad } from './load.js'

// Three reference-app processes behind scale/lb.ts on one throwaway Redis and PostgreSQL primary +
// replica. Nothing here asserts a latency: only counts (admitted, lost, stale) and bounded waits.
describeWithPostgres('reference app: three instances behind a load balancer', () => {
  let fleet: Fleet | undefined

  beforeAll(async () => {
    if (!requireService('redis')) return
    fleet = await startFleet({ instances: 3 })
  }, 180_000)
  afterAll(async () => {
    await fleet?.stop()
  })

  it('round-robins over all three instances', async () => {
    if (!fleet) return
    for (let i = 0; i < 30; i++) expect((await fetch(`${fleet.lb.url}/products/${1 + i}`)).status).toBe(200)
    // Not exactly 10 each: a readiness poll that times out on a busy box takes one out for a moment.
    for (const i of fleet.instances) expect(fleet.lb.stats.perUpstream[i.url] ?? 0).toBeGreaterThan(0)
  })

  it('a rate limit holds across instances: never more than the limit admitted in total', async () => {
    if (!fleet) return
    // POST /orders: 10 per 10 s per client, counted in Redis; 30 tries spread over the 3 instances.
    const statuses = await Promise.all(
      Array.from({ length: 30 }, () =>
        fetch(`${fleet!.lb.url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': '192.0.2.77' },
          body: JSON.stringify({ productId: 3, quantity: 1 }),
        }).then((r) => r.status),
      ),
    )
    expect(statuses.filter((s) => s === 201)).toHaveLength(10)
    expect(statuses.filter((s) => s === 429)).toHaveLength(20)
    // Each instance answered some of them: the limit is shared, not per process.
    for (const i of fleet.instances) expect(fleet.lb.stats.perUpstream[i.url]).toBeGreaterThan(10)
  })

  it('a write through one instance reaches every instance\'s next reads (cache invalidation over the bus)', async () => {
    if (!fleet) return
    const price = async (url: string) => {
      const res = await fetch(`${url}/products/42`)
      return { cache: res.headers.get('x-cache'), priceCents: ((await res.json()) as { priceCents: number }).priceCents }
    }
    // Every instance caches the old price (HIT from its own L1 or the shared L2).
    const before = (await price(fleet.instances[0]!.url)).priceCents
    for (const i of fleet.instances) {
      let r = await price(i.url)
      for (let k = 0; k < 40 && r.cache !== 'HIT'; k++) {
        await new Promise((res) => setTimeout(res, 50))
        r = await price(i.url)
      }
      expect(r, i.name).toEqual({ cache: 'HIT', priceCents: before })
    }
    const write = await fetch(`${fleet.instances[1]!.url}/products/42/price`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ priceCents: before + 5 }),
    })
    expect(write.status).toBe(200)
    // Bounded: the replica replays the write, the second purge runs; then no instance serves the old price.
    const deadline = Date.now() + 10_000
    for (const i of fleet.instances) {
      while ((await price(i.url)).priceCents !== before + 5) {
        if (Date.now() > deadline) throw new Error(`${i.name} still serves the old price 10 s after the write`)
        await new Promise((res) => setTimeout(res, 50))
      }
    }
    for (const i of fleet.instances) for (let k = 0; k < 3; k++) expect((await price(i.url)).priceCents, i.name).toBe(before + 5)
  })

  it('metrics from each instance carry its own instance label', async () => {
    if (!fleet) return
    for (const i of fleet.instances) {
      const text = await (await fetch(`${i.url}/metrics`)).text()
      expect(text).toMatch(new RegExp(`^http_server_request_duration_seconds_count\\{[^}]*instance="${i.name}"`, 'm'))
      const others = fleet.instances.filter((o) => o !== i).map((o) => `instance="${o.name}"`)
      for (const o of others) expect(text).not.toContain(o)
    }
  })

  it('rolling restart of every instance under load drops zero requests', async () => {
    if (!fleet) return
    const retriesBefore = fleet.lb.stats.retries
    const removalsBefore = fleet.lb.stats.removals
    const load = startLoad(fleet.lb.url, {
      concurrency: 8,
      maxMs: 150_000,
      next: (n) => ({ path: `/products/${1 + (n % 500)}`, headers: { 'x-forwarded-for': `203.0.113.${n % 200}` } }),
    })
    try {
      await new Promise((r) => setTimeout(r, 500))
      for (let i = 0; i < fleet.instances.length; i++) {
        const { exitCode } = await fleet.restart(i)
        expect(exitCode, `${fleet.instances[i]!.name} exit code after SIGTERM`).toBe(0)
      }
      await new Promise((r) => setTimeout(r, 500))
    } finally {
      await load.stop()
    }
    const failed = load.samples.filter((s) => s.status !== 200)
    console.log(`rolling restart: ${load.samples.length} requests, ${failed.length} not 200, balancer retries ${fleet.lb.stats.retries - retriesBefore}, removals ${fleet.lb.stats.removals - removalsBefore}`)
    expect(failed.slice(0, 5)).toEqual([])
    expect(load.samples.length).toBeGreaterThan(100)
    // The balancer saw each instance leave the rotation (readiness 503 while draining).
    expect(fleet.lb.stats.removals - removalsBefore).toBeGreaterThanOrEqual(3)
  }, 240_000)

  it('chaos under load: no lost request, no stale read after recovery, recovery within a bound', async () => {
    if (!fleet) return
    const { rows, samples } = await runChaos(fleet, { faultMs: 1_500, afterMs: 1_500, connections: 8 })
    console.log(`${formatTable(rows)}\nJSON: ${writeReport('chaos', { rows, totalRequests: samples.length })}`)
    expect(rows).toHaveLength(4)
    for (const r of rows) {
      expect(r.lost, r.fault).toBe(0)
      expect(r.staleReads, r.fault).toBe(0)
      expect(r.stalePreFault, r.fault).toBe(0)
      expect(r.recoveryMs, r.fault).not.toBeNull()
      expect(r.recoveryMs!, r.fault).toBeLessThan(30_000)
      expect(r.errorRateAfter, r.fault).toBe(0)
    }
  }, 240_000)
})

// The same three instances on a 3-master Redis Cluster with a replica per master (cache L2 + bus
// and throttle counters, REDIS_CLUSTER_NODES): the short form of `scale:chaos --cluster`.
describeWithPostgres('reference app: three instances on a Redis Cluster, a master killed under load', () => {
  let fleet: Fleet | undefined

  beforeAll(async () => {
    if (!requireService('redis')) return
    fleet = await startFleet({ instances: 3, redis: 'cluster', clusterReplicas: 1 })
  }, 180_000)
  afterAll(async () => {
    await fleet?.stop()
  })

  it('cluster master SIGKILLed, its replica promoted, restarted: no lost request, no stale read, no error once recovered', async () => {
    if (!fleet) return
    const { rows, samples } = await runChaos(fleet, { faultMs: 1_500, afterMs: 1_500, connections: 8, faults: ['cluster master SIGKILLed + restarted'] })
    console.log(`${formatTable(rows)}\n${rows.map((r) => `${r.fault}: ${r.detail}`).join('\n')}\nJSON: ${writeReport('chaos-cluster', { rows, totalRequests: samples.length })}`)
    expect(rows).toHaveLength(1)
    const r = rows[0]!
    expect(r.detail).toMatch(/replica promoted/)
    expect(r.detail).toMatch(/back as replica/)
    expect(r.requestsDuring).toBeGreaterThan(0)
    expect(r.lost).toBe(0)
    expect(r.staleReads).toBe(0)
    expect(r.stalePreFault).toBe(0)
    expect(r.recoveryMs).not.toBeNull()
    expect(r.recoveryMs!).toBeLessThan(30_000)
    expect(r.errorRateAfter).toBe(0)
  }, 120_000)
})
