// Several reference-app processes on one Redis (or a Redis Cluster) and one PostgreSQL primary +
// replica, behind scale/lb.ts. Shared by the CI tests (scale.int.test.ts) and the chaos/soak scripts.
import { getFreePort, type PostgresCluster, type RedisCluster, type RedisServer, startPostgres, startRedis, startRedisCluster } from '@ri/testing'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type LoadBalancer, startLoadBalancer } from './lb.js'

export const APP_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

export interface Instance {
  readonly name: string
  readonly port: number
  readonly url: string
  readonly child: ChildProcess
  /** stdout + stderr so far (for failure messages). */
  output(): string
}

/** Starts `src/main.ts` in a child process and resolves once it prints its URL. */
export async function startInstance(name: string, port: number, env: Record<string, string>, extraArgs: string[] = [], entry = 'src/main.ts'): Promise<Instance> {
  const child = spawn(process.execPath, [...extraArgs, '--import', 'tsx', entry], {
    cwd: APP_ROOT,
    env: { ...process.env, ...env, PORT: String(port), RI_INSTANCE: name, HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stderr!.on('data', (c: Buffer) => (out = (out + c).slice(-20_000)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} printed no URL within 90 s:\n${out}`)), 90_000)
    child.stdout!.on('data', (c: Buffer) => {
      out = (out + c).slice(-20_000)
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited during startup (${code}):\n${out}`))
    })
  })
  return { name, port, url, child, output: () => out }
}

/** SIGTERM and wait for the exit code (health drains first). */
export async function stopInstance(instance: Instance, timeoutMs = 30_000): Promise<number | null> {
  if (instance.child.exitCode !== null || instance.child.signalCode !== null) return instance.child.exitCode
  const exited = once(instance.child, 'exit')
  instance.child.kill('SIGTERM')
  const timer = setTimeout(() => instance.child.kill('SIGKILL'), timeoutMs)
  const [code] = (await exited) as [number | null]
  clearTimeout(timer)
  return code
}

export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000, everyMs = 100): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await Promise.resolve().then(check).catch(() => false)) return Date.now() - started
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

export interface Fleet {
  /** The one Redis (topology 'single'). */
  readonly redis: RedisServer | undefined
  /** The Redis Cluster (topology 'cluster'): the instances get REDIS_CLUSTER_NODES instead of REDIS_URL. */
  readonly redisCluster: RedisCluster | undefined
  readonly pg: PostgresCluster
  readonly instances: Instance[]
  readonly lb: LoadBalancer
  readonly env: Record<string, string>
  /** Rolling restart of one instance: SIGTERM, drain, exit 0, start again on the same port, ready. */
  restart(index: number): Promise<{ exitCode: number | null }>
  stop(): Promise<void>
}

export interface FleetOptions {
  instances?: number
  /** Readiness keeps failing this long after SIGTERM, while requests are still served (RI_DRAIN_DELAY_MS). */
  drainDelayMs?: number
  env?: Record<string, string>
  /** 'single' (default): one redis-server; 'cluster': a 3-master Redis Cluster. */
  redis?: 'single' | 'cluster'
  /** Replicas per master for 'cluster' (default 1, so a killed master fails over). */
  clusterReplicas?: number
}

const ready = async (url: string) => (await fetch(`${url}/health/ready`)).status === 200
const busConnected = async (url: string) => /^ri_cache_bus_connected\{[^}]*\} 1$/m.test(await (await fetch(`${url}/metrics`)).text())

export async function startFleet(options: FleetOptions = {}): Promise<Fleet> {
  const topology = options.redis ?? 'single'
  const [redisAny, pg] = await Promise.all([
    topology === 'cluster' ? startRedisCluster({ replicasPerMaster: options.clusterReplicas ?? 1 }) : startRedis(),
    startPostgres({ replicas: 1 }),
  ])
  const redis = topology === 'single' ? (redisAny as RedisServer) : undefined
  const redisCluster = topology === 'cluster' ? (redisAny as RedisCluster) : undefined
  const env = {
    ...(redis ? { REDIS_URL: redis.url } : { REDIS_CLUSTER_NODES: redisCluster!.startupNodes.map((n) => `${n.host}:${n.port}`).join(',') }),
    DATABASE_URL: pg.primary.url,
    DATABASE_REPLICA_URLS: pg.replicas[0]!.url,
    ORDERS_SEED: '2000',
    // One secret for all: a read-your-writes cookie set by one instance is honoured by the others.
    RI_DB_SECRET: 'scale-test-secret-shared-by-all-instances',
    RI_DRAIN_DELAY_MS: String(options.drainDelayMs ?? 600),
    ...options.env,
  }
  const instances: Instance[] = []
  try {
    const n = options.instances ?? 3
    const ports = await Promise.all(Array.from({ length: n }, () => getFreePort()))
    // The first one seeds the database (under an advisory lock anyway), then the others start together.
    instances.push(await startInstance('app-0', ports[0]!, env))
    instances.push(...(await Promise.all(ports.slice(1).map((p, i) => startInstance(`app-${i + 1}`, p, env)))))
    for (const i of instances) {
      await waitUntil(`${i.name} ready`, () => ready(i.url))
      await waitUntil(`${i.name} cache bus connected`, () => busConnected(i.url))
    }
    // The seed is written on the primary; wait until the replica serves it.
    await waitUntil('replica has the seed', async () => (await fetch(`${instances[0]!.url}/products/500`)).status === 200)
  } catch (error) {
    await Promise.allSettled(instances.map((i) => stopInstance(i)))
    await Promise.allSettled([redisAny.stop(), pg.stop()])
    throw error
  }
  const lb = await startLoadBalancer({ upstreams: instances.map((i) => i.url) })

  return {
    redis,
    redisCluster,
    pg,
    instances,
    lb,
    env,
    async restart(index) {
      const old = instances[index]!
      const exitCode = await stopInstance(old)
      instances[index] = await startInstance(old.name, old.port, env)
      await waitUntil(`${old.name} ready again`, () => ready(old.url))
      await waitUntil(`${old.name} in rotation again`, () => lb.upstreams.find((u) => u.url === old.url)!.healthy)
      return { exitCode }
    },
    async stop() {
      await lb.close()
      await Promise.allSettled(instances.map((i) => stopInstance(i)))
      await Promise.allSettled([redisAny.stop(), pg.stop()])
    },
  }
}
