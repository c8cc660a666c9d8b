// The main job: `npm start` at the repository root. No environment needed (embedded defaults);
// REDIS_URL / REDIS_CLUSTER_NODES, DATABASE_URL and DATABASE_REPLICA_URLS switch to real services.
import { createDefaultLogger } from '@ri/core'
import { startApp } from './app.js'
import { configFromEnv } from './config.js'

const logger = createDefaultLogger()
const { url, infra } = await startApp(configFromEnv(), { logger }).catch((error: unknown) => {
  // e.g. DATABASE_URL unreachable: say so and exit (open Redis connections would keep the process alive)
  console.error('ri reference app could not start:', error instanceof Error ? error.message : error)
  process.exit(1)
})
const { modes } = infra

console.log(`ri reference app listening on ${url}`)
console.log(`  cache: ${modes.cache} | throttle: ${modes.throttle} | database: ${modes.database}`)
console.log('try:')
console.log(`  curl -i ${url}/products/1                      # run twice: X-Cache MISS, then HIT`)
console.log(`  curl -s '${url}/products?limit=5'`)
console.log(`  curl -i -X POST ${url}/products/1/price -H 'content-type: application/json' -d '{"priceCents":1299}'`)
console.log(`  curl -i -X POST ${url}/orders -H 'content-type: application/json' -d '{"productId":1,"quantity":2}'`)
console.log(`  curl -i ${url}/analytics/revenue               # heavy aggregate: 5 per 10 s, cached 5 s, slow-logged`)
console.log(`  curl -s ${url}/health/ready`)
console.log(`  curl -s ${url}/metrics | grep ri_cache`)
console.log(`load test: pnpm --filter reference-app load ${url}`)
