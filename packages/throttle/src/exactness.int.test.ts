import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeWithRedis, type RedisCluster, type RedisServer, startRedis, startRedisCluster } from '@ri/testing'
import { afterAll, beforeAll, expect, it } from 'vitest'

const here = path.dirname(fileURLToPath(import.meta.url))
const WORKER = path.join(here, '__fixtures__', 'worker.ts')

function startWorker(url: string, prefix: string, concurrency: number, limit: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, url, prefix, String(concurrency), String(limit)], {
    cwd: path.join(here, '..'),
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let buf = ''
  const lines: string[] = []
  const waiters: Array<() => void> = []
  child.stdout!.on('data', (d) => {
    buf += d
    let nl: number
    while ((nl = buf.indexOf('\n')) !== -1) {
      lines.push(buf.slice(0, nl))
      buf = buf.slice(nl + 1)
      waiters.splice(0).forEach((w) => w())
    }
  })
  const nextLine = async (): Promise<string> => {
    while (lines.length === 0) {
      if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}`)
      await new Promise<void>((r) => waiters.push(r))
    }
    return lines.shift()!
  }
  return { child, nextLine }
}

describeWithRedis('exactness across processes (real Redis, real child processes)', () => {
  let redis: RedisServer
  let cluster: RedisCluster
  const children: ChildProcess[] = []
  beforeAll(async () => {
    ;[redis, cluster] = await Promise.all([startRedis(), startRedisCluster()])
  })
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
    await Promise.all([redis?.stop(), cluster?.stop()])
  })

  it.each([
    ['a single Redis', () => redis.url],
    ['a three-master Redis Cluster', () => `cluster:${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`],
  ])('4 processes x 500 concurrent requests on one key with limit 100 -> exactly 100 allowed, on %s', async (_label, target) => {
    const workers = Array.from({ length: 4 }, () => startWorker(target(), 'exact', 500, 100))
    children.push(...workers.map((w) => w.child))
    for (const w of workers) expect(await w.nextLine()).toBe('ready')
    for (const w of workers) w.child.stdin!.write('go\n')
    const results = await Promise.all(workers.map(async (w) => JSON.parse(await w.nextLine()) as { allowed: number; refused: number; stores: string[] }))
    const allowed = results.reduce((n, r) => n + r.allowed, 0)
    const refused = results.reduce((n, r) => n + r.refused, 0)
    expect(allowed).toBe(100)
    expect(refused).toBe(1900)
    // Every decision was made by Redis (the shared counter), none by the insurance limiter.
    for (const r of results) expect(r.stores.every((s) => s === 'redis')).toBe(true)
  }, 60_000)
})
