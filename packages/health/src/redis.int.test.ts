import http from 'node:http'
import { describeWithRedis, type RedisServer, startRedis } from '@ri/testing'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { redisCheck } from './checks/builtin.js'
import { createHealth, type Health } from './health.js'
import { get, sleep, startServer, type TestServer } from './test-helpers.js'

async function pingCalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats')
  const m = /cmdstat_ping:calls=(\d+)/.exec(info)
  return m ? Number(m[1]) : 0
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await fn()) return
    await sleep(50)
  }
  throw new Error(`timed out waiting for ${what}`)
}

describeWithRedis('redisCheck against a real Redis', () => {
  let redis: RedisServer
  let client: Redis
  let admin: Redis
  let critical: Health
  let optional: Health
  let srvCritical: TestServer
  let srvOptional: TestServer

  beforeAll(async () => {
    redis = await startRedis()
    client = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 })
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 })
    // Connection errors while Redis is killed are expected; the check reports them.
    client.on('error', () => {})
    admin.on('error', () => {})
    critical = createHealth({ cacheMs: 100, shutdown: false, checks: [redisCheck(client, { timeoutMs: 300 })] })
    optional = createHealth({ cacheMs: 100, shutdown: false, checks: [redisCheck(client, { timeoutMs: 300, critical: false, name: 'cache:responseTime' })] })
    srvCritical = await startServer(critical)
    srvOptional = await startServer(optional)
  })
  afterAll(async () => {
    critical?.close()
    optional?.close()
    await srvCritical?.close()
    await srvOptional?.close()
    client?.disconnect()
    admin?.disconnect()
    await redis?.stop()
  })

  it('passes with the PING round trip', async () => {
    const res = await get(`${srvCritical.url}/health/ready`)
    expect(res.status).toBe(200)
    expect(res.json().checks['redis:responseTime'][0]).toMatchObject({ status: 'pass', componentType: 'datastore', observedUnit: 'ms' })
  })

  it('a 1,000-probe flood costs one PING per cacheMs (counted by Redis itself)', async () => {
    await sleep(150)
    const before = await pingCalls(admin)
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 })
    const started = performance.now()
    let ok = 0
    // 1,000 probes paced over ~1 s: 20 every 20 ms.
    for (let batch = 0; batch < 50; batch++) {
      const replies = await Promise.all(Array.from({ length: 20 }, () => get(`${srvCritical.url}/health/ready`, { agent })))
      ok += replies.filter((r) => r.status === 200).length
      const next = started + (batch + 1) * 20
      const wait = next - performance.now()
      if (wait > 0) await sleep(wait)
    }
    const elapsed = performance.now() - started
    agent.destroy()
    const pings = (await pingCalls(admin)) - before
    expect(ok).toBe(1_000)
    expect(pings).toBeGreaterThan(0)
    expect(pings).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 2)
    expect(pings / 1_000).toBeLessThan(0.05)
  })

  it('Redis killed: readiness fails (critical) or warns (non-critical); recovers after restart', async () => {
    await redis.kill()
    await until('critical readiness to fail', async () => (await get(`${srvCritical.url}/health/ready`)).status === 503)
    const failed = (await get(`${srvCritical.url}/health/ready`)).json()
    expect(failed.status).toBe('fail')
    expect(failed.checks['redis:responseTime'][0].status).toBe('fail')
    expect(failed.checks['redis:responseTime'][0].output).toBeTruthy()
    await until('optional readiness to warn', async () => (await get(`${srvOptional.url}/health/ready`)).json().status === 'warn')
    const warned = await get(`${srvOptional.url}/health/ready`)
    expect(warned.status).toBe(200)
    expect(warned.json().checks['cache:responseTime'][0].status).toBe('warn')
    // Liveness never depends on Redis.
    expect((await get(`${srvCritical.url}/health`)).status).toBe(200)

    await redis.restart()
    await until('critical readiness to pass again', async () => (await get(`${srvCritical.url}/health/ready`)).status === 200)
    await until('optional readiness to pass again', async () => (await get(`${srvOptional.url}/health/ready`)).json().status === 'pass')
  })
})
