import { describeWithRedis, type RedisCluster, type RedisServer, startRedis, startRedisCluster } from '@ri/testing'
import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnWorker, type Worker } from './fixtures/spawn.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describeWithRedis('cache across real processes sharing one Redis', () => {
  let redis: RedisServer
  let cluster: RedisCluster
  beforeAll(async () => {
    ;[redis, cluster] = await Promise.all([startRedis(), startRedisCluster()])
  }, 60_000)
  afterAll(async () => {
    await Promise.all([redis?.stop(), cluster?.stop()])
  })

  describe.each(['a single Redis', 'a three-master Redis Cluster'] as const)('on %s', (topology) => {
    let admin: Redis | Cluster
    /** Single Redis: true after one beat. Cluster: becomes true within a bounded wait. */
    const seen = async (check: () => Promise<boolean>) => {
      await sleep(5)
      if (topology === 'a single Redis') return expect(await check()).toBe(true)
      const deadline = Date.now() + 2_000
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error('not seen within 2 s on the cluster')
        await sleep(10)
      }
    }
    let workers: Worker[] = []

    beforeAll(async () => {
      const onCluster = topology !== 'a single Redis'
      const env: Record<string, string> = onCluster ? { REDIS_CLUSTER: cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',') } : { REDIS_URL: redis.url }
      admin = onCluster ? new Cluster([...cluster.startupNodes]) : new Redis(redis.url)
      admin.on('error', () => {})
      // Four processes, started once (process start-up dominates on a small machine).
      workers = Array.from({ length: 4 }, () => spawnWorker({ ...env, LOCK: '1', CACHE_PREFIX: 'mp:' }))
      const ready = await Promise.all(workers.map((w) => w.send<boolean>({ op: 'ready' })))
      expect(ready.every(Boolean)).toBe(true)
    }, 60_000)
    afterAll(async () => {
      await Promise.all(workers.map((w) => w.close()))
      admin?.disconnect()
    })

    it('1,000 concurrent misses across 4 processes with the distributed lock: exactly one loader call', async () => {
      const results = await Promise.all(workers.map((w) => w.send<string[]>({ op: 'getOrSet', key: 'hot', value: 'v', delayMs: 100, concurrency: 250 })))
      expect(results.flat()).toHaveLength(1_000)
      expect(results.flat().every((r) => r === 'v')).toBe(true)
      expect(Number(await admin.get('mp:loads:hot'))).toBe(1)
    })

    for (const n of [2, 4]) {
      it(`${n} processes: invalidateTags in one is seen by the others' next read`, async () => {
        const group = workers.slice(0, n)
        const key = `user${n}`
        const tag = `user:${n}`
        for (const w of group) expect(await w.send({ op: 'getOrSet', key, value: 'v1', tags: [tag] })).toEqual(['v1'])
        for (const w of group) expect(await w.send({ op: 'get', key })).toBe('v1') // in every L1 now
        await group[0]!.send({ op: 'invalidate', tags: [tag] })
        // Single Redis: the bus message is already in each subscriber's socket when
        // invalidateTags resolves (published by the same script); one beat lets the receivers
        // read it. Cluster: the message still travels the cluster bus to the subscriber's node.
        for (const w of group.slice(1)) await seen(async () => (await w.send({ op: 'get', key })) === null)
        expect(await group[1]!.send({ op: 'getOrSet', key, value: 'v2', tags: [tag] })).toEqual(['v2'])
        for (const w of group) expect(await w.send({ op: 'get', key })).toBe('v2')
      })
    }

    it('set in one process drops the key from the other processes\' L1', async () => {
      await workers[0]!.send({ op: 'set', key: 'shared', value: 1 })
      for (const w of workers) expect(await w.send({ op: 'get', key: 'shared' })).toBe(1)
      await workers[3]!.send({ op: 'set', key: 'shared', value: 2 })
      for (const w of workers) await seen(async () => (await w.send({ op: 'get', key: 'shared' })) === 2)
    })
  })
})
