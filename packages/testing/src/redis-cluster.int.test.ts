import { Cluster } from 'ioredis'
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
