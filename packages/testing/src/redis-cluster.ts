import { spawnSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { resolveBinaries } from './binaries.js'
import { type RedisServer, startRedis } from './redis.js'

export interface RedisClusterOptions {
  /** Number of masters (default 3, the minimum Redis accepts). */
  masters?: number
  /** Replicas per master (default 0). */
  replicasPerMaster?: number
  /** How long to wait for `cluster_state:ok` on every node (default 30 000 ms). */
  readyTimeoutMs?: number
}

export interface RedisCluster {
  /** Every node, masters first. */
  readonly nodes: readonly RedisServer[]
  /** `{ host, port }` of each node: what ioredis `new Cluster(startupNodes)` takes. */
  readonly startupNodes: ReadonlyArray<{ host: string; port: number }>
  /** Stops every node and removes their temp dirs. */
  stop(): Promise<void>
}

function redisCli(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 30_000 })
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`)
  return r.stdout
}

/**
 * Starts a real local Redis Cluster: `redis-server --cluster-enabled yes` on random ports, joined by
 * `redis-cli --cluster create`, resolved once every node reports `cluster_state:ok`.
 * Each node is a full `RedisServer` handle, so one node can be killed, paused or restarted.
 *
 * @example
 * const cluster = await startRedisCluster()
 * const client = new Cluster(cluster.startupNodes)
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3
  const replicas = options.replicasPerMaster ?? 0
  if (masters < 3) throw new Error('startRedisCluster: Redis Cluster needs at least 3 masters')
  const { 'redis-cli': cli } = resolveBinaries('redis')
  const count = masters * (1 + replicas)
  const nodes: RedisServer[] = []
  try {
    for (let i = 0; i < count; i++) {
      nodes.push(
        await startRedis({
          // nodes.conf lives in the node's own temp dir (its working dir), so restart() keeps its identity.
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'],
        }),
      )
    }
    redisCli(cli, [
      '--cluster',
      'create',
      ...nodes.map((n) => `${n.host}:${n.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ])
    const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000)
    for (const node of nodes) {
      for (;;) {
        const info = redisCli(cli, ['-h', node.host, '-p', String(node.port), 'cluster', 'info'])
        if (info.includes('cluster_state:ok') && /cluster_slots_ok:16384/.test(info)) break
        if (Date.now() > deadline) throw new Error(`Redis Cluster node ${node.port} not ready:\n${info}`)
        await sleep(100)
      }
    }
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop().catch(() => {})))
    throw error
  }
  return {
    nodes,
    startupNodes: nodes.map((n) => ({ host: n.host, port: n.port })),
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()))
    },
  }
}
