import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { describeWithRedis, type RedisCluster, startRedisCluster } from './index.js'

describeWithRedis('startRedisCluster', () => {
  let cluster: RedisCluster
  let client: Cluster
  beforeAll(async () => {
    cluster = await startRedisCluster()
    client = new Cluster(cluster.startupNodes as Array<{ host: string; port: number }>, { redisOptions: { maxRetriesPerRequest: 1 } })
  })
  afterAll(async () => {
    client?.disconnect()
    await cluster?.stop()
  })

  it('serves keys from every slot range across three masters', async () => {
    const keys = Array.from({ length: 60 }, (_, i) => `key:${i}`)
    for (const k of keys) await client.set(k, k)
    expect(await Promise.all(keys.map((k) => client.get(k)))).toEqual(keys)
    const masters = client.nodes('master')
    expect(masters).toHaveLength(3)
    const perNode = await Promise.all(masters.map((m) => m.dbsize()))
    expect(perNode.every((n) => n > 0)).toBe(true)
    expect(perNode.reduce((a, b) => a + b, 0)).toBe(60)
  })

  it('one node can be killed and restarted with its cluster identity', async () => {
    const node = cluster.nodes[0]!
    await node.kill()
    expect(node.running).toBe(false)
    await node.restart()
    // The node rejoins from its nodes.conf; the cluster converges back to ok.
    const deadline = Date.now() + 20_000
    for (;;) {
      const info = (await client.cluster('INFO')) as string
      if (info.includes('cluster_state:ok')) break
      if (Date.now() > deadline) throw new Error(info)
      await new Promise((r) => setTimeout(r, 200))
    }
    await client.set('after-restart', '1')
    expect(await client.get('after-restart')).toBe('1')
  })
})

describeWithRedis('startRedisCluster with replicas: a killed master fails over', () => {
  let cluster: RedisCluster
  let client: Cluster
  beforeAll(async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 1 })
    client = new Cluster(cluster.startupNodes as Array<{ host: string; port: number }>, { redisOptions: { maxRetriesPerRequest: 1 } })
    client.on('error', () => {}) // the killed node's connection errors are expected
  }, 60_000)
  afterAll(async () => {
    client?.disconnect()
    await cluster?.stop()
  })

  it('reports 3 masters with a replica each, promotes the replica of a killed master, and takes the master back as a replica', async () => {
    const before = await cluster.topology()
    expect(before.filter((s) => s.role === 'master')).toHaveLength(3)
    expect(before.filter((s) => s.role === 'replica')).toHaveLength(3)
    expect(before.filter((s) => s.role === 'master').reduce((n, s) => n + s.slots.reduce((k, [a, b]) => k + b - a + 1, 0), 0)).toBe(16384)

    const master = await cluster.masterOf('failover:key')
    const replica = before.find((s) => s.role === 'replica' && s.masterPort === master.port)!.node
    // Written straight to its master, and on the replica before the kill (replication is asynchronous).
    const direct = new Redis(master.url)
    await direct.set('failover:key', 'v1')
    expect(await direct.wait(1, 5_000)).toBe(1)
    direct.disconnect()

    await master.kill()
    await cluster.waitUntilOk({ timeoutMs: 30_000 })
    expect((await cluster.masterOf('failover:key')).port).toBe(replica.port)
    expect(await client.get('failover:key')).toBe('v1')

    await master.restart()
    await cluster.waitUntilOk({ timeoutMs: 30_000 })
    const after = await cluster.topology()
    const rejoined = after.find((s) => s.node === master)!
    expect(rejoined).toMatchObject({ role: 'replica', failed: false, masterPort: replica.port })
    expect(after.filter((s) => s.role === 'master')).toHaveLength(3)
  }, 90_000)
})
