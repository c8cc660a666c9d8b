import { execFile, spawnSync } from 'node:child_process'
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
  /**
   * Who is master of what right now, as the running nodes see it (CLUSTER NODES of the first
   * node that answers): one row per node that is running or known as failed.
   */
  topology(): Promise<ClusterNodeState[]>
  /** The node serving `key`'s hash slot as master (asks a running node: CLUSTER KEYSLOT + topology). */
  masterOf(key: string): Promise<RedisServer>
  /**
   * Resolves (with the ms it took) once every *running* node reports `cluster_state:ok`, sees all
   * 16384 slots owned by running masters, and flags no running node `fail`/`fail?`.
   * After killing a master that has a replica, this is "the replica took over"; after restarting
   * it, "it rejoined" (as a replica of the promoted node). Throws with every node's view on timeout.
   * Async (never blocks the event loop), so it can run beside a load generator.
   */
  waitUntilOk(options?: { timeoutMs?: number }): Promise<number>
}

export interface ClusterNodeState {
  readonly node: RedisServer
  readonly role: 'master' | 'replica'
  /** Flagged `fail` or `fail?` by the node that answered. */
  readonly failed: boolean
  /** Slot ranges served (masters), inclusive. */
  readonly slots: ReadonlyArray<readonly [number, number]>
  /** The master this replica follows. */
  readonly masterPort?: number
}

function redisCliAsync(bin: string, node: RedisServer, args: string[], timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, ['-h', node.host, '-p', String(node.port), ...args], { encoding: 'utf8', timeout: timeoutMs }, (error, stdout, stderr) => {
      // redis-cli exits 0 even for a refused connection: it prints the error instead.
      if (error || /^(Could not connect|Error:)/m.test(stdout) || stderr.trim() !== '') reject(new Error(`redis-cli -p ${node.port} ${args.join(' ')}: ${error?.message ?? ''} ${stderr || stdout}`.trim()))
      else resolve(stdout)
    })
  })
}

/** Parses CLUSTER NODES (one line per node: id addr flags master ping pong epoch link slots...). */
function parseClusterNodes(text: string, nodes: readonly RedisServer[]): ClusterNodeState[] {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '')
  const byId = new Map<string, number>()
  const rows = lines.map((l) => l.split(' '))
  for (const r of rows) byId.set(r[0]!, Number(/:(\d+)@/.exec(r[1]!)?.[1] ?? /:(\d+)$/.exec(r[1]!)?.[1]))
  const out: ClusterNodeState[] = []
  for (const r of rows) {
    const port = byId.get(r[0]!)
    const node = nodes.find((n) => n.port === port)
    if (!node) continue
    const flags = r[2]!.split(',')
    const slots: Array<[number, number]> = []
    for (const s of r.slice(8)) {
      if (s.startsWith('[')) continue // slot being migrated/imported
      const [a, b] = s.split('-')
      slots.push([Number(a), Number(b ?? a)])
    }
    const masterPort = r[3] !== '-' ? byId.get(r[3]!) : undefined
    out.push({ node, role: flags.includes('master') ? 'master' : 'replica', failed: flags.includes('fail') || flags.includes('fail?'), slots, ...(masterPort !== undefined ? { masterPort } : {}) })
  }
  return out
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
        // With replicas: every node must also see them (gossip) and each replica must have synced
        // with its master, or a master killed right away would have no replica to fail over to.
        const view = replicas === 0 ? [] : parseClusterNodes(redisCli(cli, ['-h', node.host, '-p', String(node.port), 'cluster', 'nodes']), nodes)
        const replicaReady =
          replicas === 0 ||
          (view.filter((s) => s.role === 'replica').length === masters * replicas &&
            (view.find((s) => s.node === node)?.role !== 'replica' || /master_link_status:up/.test(redisCli(cli, ['-h', node.host, '-p', String(node.port), 'info', 'replication']))))
        if (info.includes('cluster_state:ok') && /cluster_slots_ok:16384/.test(info) && replicaReady) break
        if (Date.now() > deadline) throw new Error(`Redis Cluster node ${node.port} not ready:\n${info}${view.length > 0 ? `\nroles: ${view.map((s) => `${s.node.port}=${s.role}`).join(' ')}` : ''}`)
        await sleep(100)
      }
    }
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop().catch(() => {})))
    throw error
  }
  const ask = async (args: string[]): Promise<string> => {
    let last: unknown
    for (const n of nodes) {
      if (!n.running) continue
      try {
        return await redisCliAsync(cli, n, args)
      } catch (error) {
        last = error
      }
    }
    throw new Error(`no Redis Cluster node answered ${args.join(' ')}: ${String(last)}`)
  }
  const topology = async () => parseClusterNodes(await ask(['cluster', 'nodes']), nodes)
  return {
    nodes,
    startupNodes: nodes.map((n) => ({ host: n.host, port: n.port })),
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()))
    },
    topology,
    async masterOf(key) {
      const slot = Number((await ask(['cluster', 'keyslot', key])).trim())
      const owner = (await topology()).find((s) => s.role === 'master' && !s.failed && s.slots.some(([a, b]) => slot >= a && slot <= b))
      if (!owner) throw new Error(`no live master serves slot ${slot} (key ${key})`)
      return owner.node
    },
    async waitUntilOk(opts = {}) {
      const started = Date.now()
      const timeoutMs = opts.timeoutMs ?? 30_000
      let views: string[] = []
      for (;;) {
        views = []
        let ok = true
        const running = nodes.filter((n) => n.running)
        for (const n of running) {
          try {
            const info = await redisCliAsync(cli, n, ['cluster', 'info'])
            const seen = parseClusterNodes(await redisCliAsync(cli, n, ['cluster', 'nodes']), nodes)
            const flagged = seen.filter((s) => s.failed && s.node.running).map((s) => s.node.port)
            // A node killed a moment ago still owns its slots until it is flagged and replaced.
            const served = seen.filter((s) => s.role === 'master' && s.node.running).reduce((k, s) => k + s.slots.reduce((m, [a, b]) => m + b - a + 1, 0), 0)
            const good = info.includes('cluster_state:ok') && /cluster_slots_ok:16384/.test(info) && flagged.length === 0 && served === 16384
            if (!good) {
              ok = false
              views.push(`${n.port}: ${/cluster_state:\w+/.exec(info)?.[0]}, ${/cluster_slots_ok:\d+/.exec(info)?.[0]}, slots on running masters ${served}, flags running nodes as failed: [${flagged.join(', ')}]`)
            }
          } catch (error) {
            ok = false
            views.push(`${n.port}: ${(error as Error).message}`)
          }
        }
        if (ok) return Date.now() - started
        if (Date.now() - started > timeoutMs) throw new Error(`Redis Cluster not ok within ${timeoutMs} ms:\n  ${views.join('\n  ')}`)
        await sleep(100)
      }
    },
  }
}
