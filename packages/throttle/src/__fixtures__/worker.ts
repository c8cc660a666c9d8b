/**
 * Child process for the cross-process exactness test: connects to Redis, waits for "go" on
 * stdin, fires N concurrent checks against one key, prints the counts as JSON.
 */
import { createPipeline } from '@ri/core'
import { Cluster, Redis } from 'ioredis'
import { createThrottle } from '../index.js'

const [url, prefix, concurrency, limit] = [process.argv[2]!, process.argv[3]!, Number(process.argv[4]), Number(process.argv[5])]
// `cluster:host:port,host:port` connects to a Redis Cluster, anything else is a single Redis URL.
const redis = url.startsWith('cluster:')
  ? new Cluster(url.slice('cluster:'.length).split(',').map((hp) => ({ host: hp.split(':')[0]!, port: Number(hp.split(':')[1]) })))
  : new Redis(url, { lazyConnect: false })
await new Promise<void>((resolve) => redis.once('ready', () => resolve()))
const throttle = createThrottle({
  store: { redis, prefix },
  default: { limit, window: '30s' },
  insurance: { timeout: '10s' },
})
const pipeline = createPipeline([])
process.stdout.write('ready\n')
process.stdin.once('data', async () => {
  const results = await Promise.all(
    Array.from({ length: concurrency }, () =>
      throttle.check(pipeline.exchange({ method: 'GET', url: '/shared', route: '/shared', headers: {}, remoteAddress: '203.0.113.7' })),
    ),
  )
  const allowed = results.filter((r) => r.allowed).length
  const stores = [...new Set(results.map((r) => r.store))]
  process.stdout.write(`${JSON.stringify({ allowed, refused: results.length - allowed, stores })}\n`)
  redis.disconnect()
  process.exit(0)
})
