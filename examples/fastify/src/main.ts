// ri on Fastify: one plugin for every feature, per-route `config` where a route needs more.
import { createCache } from '@ri/cache'
import { riPlugin } from '@ri/fastify'
import { createHealth } from '@ri/health'
import { createMetrics } from '@ri/metrics'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import Fastify from 'fastify'

const cache = createCache({ l2: process.env.REDIS_URL || false, ttl: '1m' }) // L1 only without Redis
const throttle = createThrottle({ default: { limit: 100, window: '1m' } }) // per client ip, in memory
const health = createHealth() // /health, /health/ready, /health/startup; drains on SIGTERM
const metrics = createMetrics() // /metrics, labelled by route template
const slowlog = createSlowLog({ thresholdMs: 500 })
health.onShutdown('cache', () => cache.close())

const products = new Map([1, 2, 3].map((id) => [id, { id, name: `Product ${id}`, priceCents: 100 * id }]))
type ById = { Params: { id: string } }

const app = Fastify()
await app.register(riPlugin, { cache, throttle, health, metrics, slowlog }) // before the routes

// Cached for 30 s under the tag `product:<id>` (X-Cache: MISS, then HIT).
const productTags = (ex: { path: string }) => [`product:${ex.path.split('/')[2]}`]
app.get<ById>('/products/:id', { config: { cache: { ttl: '30s', tags: productTags } } }, async (req, reply) => {
  const product = products.get(Number(req.params.id))
  return product ?? reply.code(404).send({ error: 'not found' })
})

// A write: 5 per 10 s per client, then purges the cached product on every instance.
app.post<ById & { Body: { priceCents?: number } }>('/products/:id/price', { config: { throttle: { limit: 5, window: '10s' } } }, async (req, reply) => {
  const product = products.get(Number(req.params.id))
  if (!product) return reply.code(404).send({ error: 'not found' })
  product.priceCents = Number(req.body?.priceCents) || product.priceCents
  await cache.invalidateTags([`product:${product.id}`])
  return product
})

// An expensive report: 2 per 10 s per client, logged as slow above 50 ms.
app.get('/reports/daily', { config: { throttle: { limit: 2, window: '10s' }, slowMs: '50ms' } }, async () => {
  await new Promise((resolve) => setTimeout(resolve, 60))
  return { day: new Date().toISOString().slice(0, 10), products: products.size }
})

const url = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' })
console.log(`fastify example listening on ${url}`)
