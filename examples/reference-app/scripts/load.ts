// Load test: mixed traffic against a running reference app, then latency percentiles and the
// response-cache hit ratio (read from /metrics before and after).
//   pnpm --filter reference-app load [URL] [--duration 10] [--connections 50]
// Without a URL it starts the app itself (embedded defaults) in a child process and stops it after.
import autocannon from 'autocannon'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const args = process.argv.slice(2)
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const duration = flag('duration', 10)
const connections = flag('connections', 50)
let url = args.find((a) => /^https?:\/\//.test(a))
let child: ChildProcess | undefined

if (!url) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..')
  console.log('no URL given: starting the reference app (embedded defaults) ...')
  child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: root, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] })
  url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child!.stdout!.on('data', (c: Buffer) => {
      out += c
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m) resolve(m[1]!)
    })
    child!.once('exit', (code) => reject(new Error(`the app exited (${code}): ${out}`)))
  })
  child.stdout!.resume() // slow-log lines: not shown during the run
}

/** `ri_cache_requests_total` of the HTTP response cache, summed by result. */
async function cacheCounters(): Promise<Record<'hit' | 'miss' | 'stale', number>> {
  const text = await (await fetch(`${url}/metrics`, { headers: process.env.METRICS_TOKEN ? { authorization: `Bearer ${process.env.METRICS_TOKEN}` } : {} })).text()
  const sums = { hit: 0, miss: 0, stale: 0 }
  for (const m of text.matchAll(/^ri_cache_requests_total\{namespace="[^"]*http",tier="[^"]*",result="(hit|miss|stale)"\} (\d+(?:\.\d+)?)/gm)) {
    sums[m[1] as keyof typeof sums] += Number(m[2])
  }
  return sums
}

// 200 clients behind the (trusted, loopback) proxy; product ids skewed towards a hot set, as real catalogues are.
const clients = Array.from({ length: 200 }, (_, i) => `10.1.${i >> 8}.${i & 255}`)
const pick = <T>(list: readonly T[]) => list[Math.floor(Math.random() * list.length)]!
const hotId = () => (Math.random() < 0.8 ? 1 + Math.floor(Math.random() * 50) : 1 + Math.floor(Math.random() * 500))
const MIX: Array<[number, () => { method: string; path: string; body?: string }]> = [
  [0.7, () => ({ method: 'GET', path: `/products/${hotId()}` })],
  [0.15, () => ({ method: 'GET', path: `/products?limit=20&offset=${20 * Math.floor(Math.random() * 5)}` })],
  [0.05, () => ({ method: 'GET', path: '/analytics/revenue' })],
  [0.07, () => ({ method: 'POST', path: '/orders', body: JSON.stringify({ productId: hotId(), quantity: 1 }) })],
  [0.03, () => ({ method: 'POST', path: `/products/${hotId()}/price`, body: JSON.stringify({ priceCents: 500 + Math.floor(Math.random() * 5000) }) })],
]
const next = () => {
  let r = Math.random()
  for (const [weight, make] of MIX) {
    if ((r -= weight) <= 0) return make()
  }
  return MIX[0]![1]()
}

const before = await cacheCounters()
console.log(`load: ${url}, ${connections} connections, ${duration} s, mix: 70% product reads, 15% lists, 5% analytics, 7% orders, 3% price changes`)
const result = await autocannon({
  url,
  connections,
  duration,
  requests: [
    {
      setupRequest: (req) => ({
        ...req,
        ...next(),
        headers: { 'content-type': 'application/json', 'x-forwarded-for': pick(clients) },
      }),
    },
  ],
})
const after = await cacheCounters()

const hits = after.hit - before.hit
const misses = after.miss - before.miss
const stale = after.stale - before.stale
const lookups = hits + misses + stale
const statuses = Object.entries(result.statusCodeStats)
  .map(([code, s]) => `${code}: ${s.count}`)
  .join(', ')
console.log(`
requests      ${result.requests.total} in ${result.duration} s (${result.requests.average.toFixed(0)} req/s), errors ${result.errors}, timeouts ${result.timeouts}
statuses      ${statuses}
latency (ms)  p50 ${result.latency.p50}  p90 ${result.latency.p90}  p99 ${result.latency.p99}  max ${result.latency.max}
cache         hit ratio ${lookups === 0 ? 'n/a' : `${((100 * hits) / lookups).toFixed(1)}%`} (${hits} hits, ${misses} misses, ${stale} stale; HTTP response cache, from /metrics)`)

if (child) {
  child.kill('SIGTERM')
  await once(child, 'exit')
}
