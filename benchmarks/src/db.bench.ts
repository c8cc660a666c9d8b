// @ri/db routing overhead: the same pg pool queried directly and through the router, in one run.
import { createDbRouter, type DbNode, pgNode } from '@ri/db'
import { noopLogger } from '@ri/core'
import { startPostgres } from '@ri/testing'
import pg from 'pg'
import type { BenchComparison, BenchFile } from './types.js'

const CONCURRENCY = 100

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

interface Sample {
  latencies: number[]
  queries: number
  elapsedMs: number
}

/** Runs batches of `CONCURRENCY` concurrent queries; returns per-query latencies and wall time. */
async function batch(run: () => Promise<unknown>, into: Sample): Promise<void> {
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      const s = performance.now()
      await run()
      into.latencies.push(performance.now() - s)
    }),
  )
  into.elapsedMs += performance.now() - t0
  into.queries += CONCURRENCY
}

function summarize(name: string, s: Sample) {
  const sorted = [...s.latencies].sort((a, b) => a - b)
  return { name, opsPerSec: (s.queries / s.elapsedMs) * 1000, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) }
}

const bench: BenchFile = async ({ quick, progress }) => {
  const rounds = quick ? 60 : 300
  const results: BenchComparison[] = []

  // 1. Against a real replica: pg directly on the replica pool vs db.query() routed to that same pool.
  progress('db: starting PostgreSQL primary + replica')
  const cluster = await startPostgres({ replicas: 1 })
  const primaryPool = new pg.Pool({ connectionString: cluster.primary.url, max: 10 })
  const replicaPool = new pg.Pool({ connectionString: cluster.replicas[0]!.url, max: 10 })
  const db = createDbRouter({
    primary: pgNode(primaryPool, { name: 'primary' }),
    replicas: [pgNode(replicaPool, { name: 'replica' })],
    logger: noopLogger,
  })
  try {
    await db.ready()
    const sql = 'SELECT $1::int AS n'
    const params = [1]
    const direct: Sample = { latencies: [], queries: 0, elapsedMs: 0 }
    const control: Sample = { latencies: [], queries: 0, elapsedMs: 0 }
    const routed: Sample = { latencies: [], queries: 0, elapsedMs: 0 }
    const runs: Array<[() => Promise<unknown>, Sample]> = [
      [() => replicaPool.query(sql, params), direct],
      [() => db.query(sql, params), routed],
      [() => replicaPool.query(sql, params), control],
    ]
    // warm up every path (connections, JIT), then interleave in alternating order so drift hits all equally
    for (let i = 0; i < 20; i++) for (const [run] of runs) await batch(run, { latencies: [], queries: 0, elapsedMs: 0 })
    progress(`db: ${rounds} rounds of ${CONCURRENCY} concurrent queries, direct vs routed (plus a direct A/A control)`)
    for (let i = 0; i < rounds; i++) {
      // every subject takes every position equally often (rotations, forwards and backwards)
      const shift = i % runs.length
      const rotated = [...runs.slice(shift), ...runs.slice(0, shift)]
      const order = Math.floor(i / runs.length) % 2 === 0 ? rotated : rotated.reverse()
      for (const [run, into] of order) await batch(run, into)
    }
    const d = summarize('pg Pool.query (direct, same replica pool)', direct)
    const a = summarize('pg Pool.query again (A/A control: run-to-run noise)', control)
    const r = summarize('ri db.query (routed to that pool)', routed)
    // the baseline is both direct samples together: their difference is the run's noise floor
    const baseOps = (d.opsPerSec + a.opsPerSec) / 2
    const ratio = r.opsPerSec / baseOps
    results.push({
      id: 'db.routing-overhead-pg',
      title: `Routing overhead at ${CONCURRENCY} concurrent simple queries (real PostgreSQL replica)`,
      baseline: d.name,
      subjects: [
        d,
        a,
        {
          ...r,
          extra: {
            'throughput vs direct (mean of both direct samples)': `${(ratio * 100).toFixed(1)} %`,
            'A/A noise (direct vs direct)': `${((Math.abs(d.opsPerSec - a.opsPerSec) / baseOps) * 100).toFixed(1)} %`,
            'added p50 µs': Math.round((r.p50Ms - (d.p50Ms + a.p50Ms) / 2) * 1000),
            'added p99 µs': Math.round((r.p99Ms - (d.p99Ms + a.p99Ms) / 2) * 1000),
          },
        },
      ],
      target: { text: 'routing costs under 5 % of throughput at 100 concurrent simple queries', met: ratio >= 0.95 },
      notes: 'Same pg.Pool (max 10) for both subjects; batches interleaved; health probes running in the background.',
    })
  } finally {
    await db.close()
    await cluster.stop()
  }

  // 2. The router's own CPU cost: an in-process node that answers at once, so only routing is measured.
  progress('db: in-process node, routing cost only')
  const answer = Promise.resolve({ rows: [] })
  const node = (name: string): DbNode<unknown> => ({ name, query: () => answer, ping: async () => {} })
  const replica = node('replica')
  const cpuDb = createDbRouter({ primary: node('primary'), replicas: [replica], healthCheck: false, readYourWrites: 'time', logger: noopLogger })
  const n = quick ? 200_000 : 1_000_000
  const sqls = ['SELECT * FROM users WHERE id = $1', 'SELECT count(*) FROM orders', 'SELECT name FROM products WHERE sku = $1']
  const measureLoop = async (fn: (sql: string) => Promise<unknown>) => {
    const t0 = performance.now()
    for (let i = 0; i < n; i++) await fn(sqls[i % 3]!)
    return performance.now() - t0
  }
  await measureLoop((s) => replica.query(s))
  await measureLoop((s) => cpuDb.query(s))
  let directMs = 0
  let routedMs = 0
  for (let k = 0; k < 3; k++) {
    directMs += await measureLoop((s) => replica.query(s))
    routedMs += await measureLoop((s) => cpuDb.query(s))
  }
  const scoped = await cpuDb.scope(() => measureLoop((s) => cpuDb.query(s)))
  const perDirect = (directMs / (3 * n)) * 1000
  const perRouted = (routedMs / (3 * n)) * 1000
  results.push({
    id: 'db.routing-cpu',
    title: 'Router CPU cost per query (in-process node, no I/O)',
    baseline: 'node.query (direct)',
    subjects: [
      { name: 'node.query (direct)', opsPerSec: 1e6 / perDirect, extra: { 'µs per query': perDirect.toFixed(3) } },
      { name: 'ri db.query (classify + pick)', opsPerSec: 1e6 / perRouted, extra: { 'µs per query': perRouted.toFixed(3), 'added µs': (perRouted - perDirect).toFixed(3) } },
      { name: 'ri db.query inside a scope', opsPerSec: (n / scoped) * 1000, extra: { 'µs per query': ((scoped / n) * 1000).toFixed(3) } },
    ],
    notes: 'Classification is cached per SQL text (LRU); the loop awaits each query, so the numbers include one microtask hop.',
  })
  await cpuDb.close()
  return results
}
export default bench
