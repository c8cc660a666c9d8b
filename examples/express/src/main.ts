// ri on Express: every feature in one middleware, route helpers where a route needs more.
import { createCache } from '@ri/cache'
import { cached, ri, slowThreshold, throttled } from '@ri/express'
import { createHealth } from '@ri/health'
import { createMetrics } from '@ri/metrics'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import express from 'express'
import type { AddressInfo } from 'node:net'

const cache = createCache({ l2: process.env.REDIS_URL || false, ttl: '1m' }) // L1 only without Redis
const throttle = createThrottle({ default: { limit: 100, window: '1m' } }) // per client ip, in memory
const health = createHealth() // /health, /health/ready, /health/startup; drains on SIGTERM
const metrics = createMetrics() // /metrics, labelled by route template
const slowlog = createSlowLog({ thresholdMs: 500 })
health.onShutdown('cache', () => cache.close())

const products = new Map([1, 2, 3].map((id) => [id, { id, name: `Product ${id}`, priceCents: 100 * id }]))

const app = express()
app.use(express.json())
app.use(ri({ cache, throttle, health, metrics, slowlog }))

// Cached for 30 s under the tag `product:<id>` (X-Cache: MISS, then HIT).
app.get('/products/:id', cached({ ttl: '30s', tags: (ex) => [`product:${ex.path.split('/')[2]}`] }), (req, res) => {
  const product = products.get(Number(req.params.id))
  if (product) res.json(product)
  else res.status(404).json({ error: 'not found' })
})

// A write: 5 per 10 s per client, then purges the cached product on every instance.
app.post('/products/:id/price', throttled({ limit: 5, window: '10s' }), async (req, res) => {
  const product = products.get(Number(req.params.id))
  if (!product) return void res.status(404).json({ error: 'not found' })
  product.priceCents = Number(req.body?.priceCents) || product.priceCents
  await cache.invalidateTags([`product:${product.id}`])
  res.json(product)
})

// An expensive report: 2 per 10 s per client, logged as slow above 50 ms.
app.get('/reports/daily', throttled({ limit: 2, window: '10s' }), slowThreshold('50ms'), async (_req, res) => {
  await new Promise((resolve) => setTimeout(resolve, 60))
  res.json({ day: new Date().toISOString().slice(0, 10), products: products.size })
})

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`express example listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`)
})
