// ri on NestJS: RiModule.forRoot() wires every feature; decorators refine a handler.
import 'reflect-metadata'
import { Body, Controller, Get, HttpCode, Module, NotFoundException, Param, ParseIntPipe, Post } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { createCache } from '@ri/cache'
import { createHealth } from '@ri/health'
import { createMetrics } from '@ri/metrics'
import { Cached, InvalidateTags, RiModule, SlowThreshold, Throttle } from '@ri/nest'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import type { AddressInfo } from 'node:net'

const cache = createCache({ l2: process.env.REDIS_URL || false, ttl: '1m' }) // L1 only without Redis
const throttle = createThrottle({ default: { limit: 100, window: '1m' } }) // per client ip, in memory
const health = createHealth() // /health, /health/ready, /health/startup; drains on SIGTERM
const metrics = createMetrics() // /metrics, labelled by route template
const slowlog = createSlowLog({ thresholdMs: 500 })
health.onShutdown('cache', () => cache.close())

const products = new Map([1, 2, 3].map((id) => [id, { id, name: `Product ${id}`, priceCents: 100 * id }]))
function find(id: number) {
  const product = products.get(id)
  if (!product) throw new NotFoundException('product not found')
  return product
}

@Controller()
class ShopController {
  // Cached for 30 s under the tag `product:<id>` (X-Cache: MISS, then HIT).
  @Get('products/:id')
  @Cached({ ttl: '30s', tags: (ex) => [`product:${ex.path.split('/')[2]}`] })
  product(@Param('id', ParseIntPipe) id: number) {
    return find(id)
  }

  // A write: 5 per 10 s per client; the cached product is purged before the response is sent.
  @Post('products/:id/price')
  @HttpCode(200)
  @Throttle({ limit: 5, window: '10s' })
  @InvalidateTags((req) => `product:${req.params?.id}`)
  setPrice(@Param('id', ParseIntPipe) id: number, @Body() body: { priceCents?: number }) {
    const product = find(id)
    product.priceCents = Number(body?.priceCents) || product.priceCents
    return product
  }

  // An expensive report: 2 per 10 s per client, logged as slow above 50 ms.
  @Get('reports/daily')
  @Throttle({ limit: 2, window: '10s' })
  @SlowThreshold('50ms')
  async report() {
    await new Promise((resolve) => setTimeout(resolve, 60))
    return { day: new Date().toISOString().slice(0, 10), products: products.size }
  }
}

@Module({ imports: [RiModule.forRoot({ cache, throttle, health, metrics, slowlog })], controllers: [ShopController] })
class AppModule {}

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] })
await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1') // SIGTERM: @ri/health drains, then exits
console.log(`nest example listening on http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`)
