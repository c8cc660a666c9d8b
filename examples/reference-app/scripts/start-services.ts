// Local Redis and a PostgreSQL primary + streaming replica for the reference app, from the test
// harness (@ri/testing; needs redis-server and the PostgreSQL binaries on PATH, or RI_*_BIN).
// `--cluster`: a three-master Redis Cluster instead of one Redis.
//   pnpm --filter reference-app start:services     (keep it running; Ctrl-C stops and removes everything)
import { type RedisCluster, type RedisServer, startPostgres, startRedis, startRedisCluster } from '@ri/testing'

const cluster = process.argv.includes('--cluster')
console.log(`starting ${cluster ? 'a Redis Cluster' : 'Redis'} and PostgreSQL (primary + 1 streaming replica) on random ports ...`)
const [redis, pg] = await Promise.all([cluster ? startRedisCluster() : startRedis(), startPostgres({ replicas: 1 })])

const redisEnv = cluster
  ? `REDIS_CLUSTER_NODES=${(redis as RedisCluster).startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`
  : `REDIS_URL=${(redis as RedisServer).url}`
const env = [redisEnv, `DATABASE_URL=${pg.primary.url}`, `DATABASE_REPLICA_URLS=${pg.replicas.map((r) => r.url).join(',')}`]

console.log('\nready. In another shell:\n')
for (const line of env) console.log(`  export ${line}`)
console.log('  pnpm --filter reference-app start     # or: npm start at the repository root')
console.log(`\nor in one line:\n\n  ${env.join(' ')} pnpm --filter reference-app start\n`)
console.log('Ctrl-C stops the services and removes their data.')

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  console.log('\nstopping ...')
  await Promise.allSettled([redis.stop(), pg.stop()])
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
setInterval(() => {}, 1 << 30) // keep running until a signal
