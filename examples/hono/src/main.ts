// ri on Hono (Node.js via @hono/node-server): every feature in one middleware, route helpers where a route needs more.
import { serve } from '@hono/node-server'
import { createCache } from '@ri/cache'
import { createHealth } from '@ri/health'
import { cached, ri, slowThreshold, throttled } from '@ri/hono'
import { createMetrics } from '@ri/metrics'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import { Hono } from 'hono'

const cache = createCache({ l2: process.env.REDIS_URL || false, ttl: '1m' }) // L1 only without Redis
const throttle = createThrottle({ default: { limit: 100, window: '1m' } }) // per client ip, in memory
const health = createHealth() // /health, /health/ready, /health/startup; drains on SIGTERM
const metrics = createMetrics() // /metrics, labelled by route template
const slowlog = createSlowLog({ thresholdMs: 500 })
health.onShutdown('cache', () => cache.close())

const products = new Map([1, 2, 3].map((id) => [id, { id, name: `Product ${id}`, priceCents: 100 * id }]))

const app = new Hono()
app.use(ri({ cache, throttle, health, metrics, slowlog }))

// Cached for 30 s under the tag `product:<id>` (X-Cache: MISS, then HIT).
app.get('/products/:id', cached({ ttl: '30s', tags: (ex) => [`product:${ex.path.split('/')[2]}`] }), (c) => {
  const product = products.get(Number(c.req.param('id')))
  return product ? c.json(product) : c.json({ error: 'not found' }, 404)
})

// A write: 5 per 10 s per client, then purges the cached product on every instance.
app.post('/products/:id/price', throttled({ limit: 5, window: '10s' }), async (c) => {
  const product = products.get(Number(c.req.param('id')))
  if (!product) return c.json({ error: 'not found' }, 404)
  const body = await c.req.json<{ priceCents?: number }>().catch(() => ({}) as { priceCents?: number })
  product.priceCents = Number(body.priceCents) || product.priceCents
  await cache.invalidateTags([`product:${product.id}`])
  return c.json(product)
})

// An expensive report: 2 per 10 s per client, logged as slow above 50 ms.
app.get('/reports/daily', throttled({ limit: 2, window: '10s' }), slowThreshold('50ms'), async (c) => {
  await new Promise((resolve) => setTimeout(resolve, 60))
  return c.json({ day: new Date().toISOString().slice(0, 10), products: products.size })
})

serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: '127.0.0.1' }, (info) => {
  console.log(`hono example listening on http://127.0.0.1:${info.port}`)
})
