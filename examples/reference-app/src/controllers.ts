import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  NotFoundException,
  Param,
  Post,
  Query,
  Req,
  UnprocessableEntityException,
} from '@nestjs/common'
import type { Exchange } from '@ri/core'
import { nodeStateOf } from '@ri/core/node'
import { Cached, CacheTags, InvalidateTags, SlowThreshold, Throttle } from '@ri/nest'
import type { IncomingMessage } from 'node:http'
import type { ReplicaPurge } from './replica-purge.js'
import type { Store } from './store.js'

/** Injection tokens (explicit tokens: tsx/esbuild emit no `design:paramtypes`). */
export const STORE = 'STORE'
export const REPLICA_PURGE = 'REPLICA_PURGE'

/** The read-your-writes cookie set by `db.feature()` after a write. */
const RYW_COOKIE = /(?:^|;\s*)ri_lsn=/

/**
 * Response-cache key: path + query, or none (bypass) for a client that just wrote. Its next reads
 * go to the database, where @ri/db routes them to a replica that has replayed its write (or the
 * primary), so it sees its own write exactly, even if another client's read from a lagging
 * replica was cached meanwhile.
 */
const cacheKey = (ex: Exchange): string | undefined => {
  if (RYW_COOKIE.test(ex.header('cookie') ?? '')) return undefined
  return ex.query === '' ? ex.path : `${ex.path}?${ex.query}`
}

const productTag = (ex: Exchange) => [`product:${ex.path.split('/')[2] ?? ''}`]

/**
 * Product reads change on writes and the writer must see its write: cache them on the server
 * only (no `Cache-Control: public, max-age`, which would let browsers and CDNs serve the old
 * price); clients still revalidate cheaply with the ETag (304).
 */
const PRODUCT_CACHE = { ttl: '30s', key: cacheKey, cacheControl: false } as const

function intParam(value: string | undefined, name: string, min: number, max: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new BadRequestException(`${name} must be an integer from ${min} to ${max}`)
  return n
}

/** Times a piece of work on the exchange: it shows in `Server-Timing` and in the slow-log line. */
async function timed<T>(req: IncomingMessage, name: string, fn: () => Promise<T>): Promise<T> {
  // @ri/nest binds the exchange with @ri/core's node binding (it no longer goes through @ri/express).
  const ex = nodeStateOf(req)?.exchange
  return ex ? ex.timings.measure(name, fn) : fn()
}

@Controller()
export class IndexController {
  @Get()
  index() {
    return {
      name: 'ri reference app',
      endpoints: [
        'GET /products?limit&offset',
        'GET /products/:id',
        'POST /products/:id/price {"priceCents": n}',
        'POST /orders {"productId": n, "quantity": n}',
        'GET /analytics/revenue?days=30',
        'GET /lookup/:key',
        'GET /health',
        'GET /health/ready',
        'GET /health/startup',
        'GET /metrics',
      ],
    }
  }
}

@Controller('products')
export class ProductsController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(REPLICA_PURGE) private readonly replicaPurge: ReplicaPurge,
  ) {}

  @Get()
  @Cached(PRODUCT_CACHE)
  @CacheTags('products')
  async list(@Req() req: IncomingMessage, @Query('limit') limit?: string, @Query('offset') offset?: string) {
    const l = intParam(limit, 'limit', 1, 100, 20)
    const o = intParam(offset, 'offset', 0, 1_000_000, 0)
    const [items, total] = await timed(req, 'db', () => Promise.all([this.store.listProducts(l, o), this.store.countProducts()]))
    return { items, limit: l, offset: o, total }
  }

  @Get(':id')
  @Cached({ ...PRODUCT_CACHE, tags: productTag })
  async get(@Req() req: IncomingMessage, @Param('id') id: string) {
    const product = await timed(req, 'db', () => this.store.getProduct(intParam(id, 'id', 1, 2 ** 31 - 1)))
    if (!product) throw new NotFoundException('product not found')
    return product
  }

  /** A write: primary; the response carries the read-your-writes cookie; cached lists and this product are purged. */
  @Post(':id/price')
  @HttpCode(200)
  @Throttle({ limit: 20, window: '10s' })
  @InvalidateTags('products', (req) => `product:${req.params?.id ?? ''}`)
  async setPrice(@Param('id') id: string, @Body() body: { priceCents?: unknown } | undefined) {
    const priceCents = body?.priceCents
    if (typeof priceCents !== 'number' || !Number.isInteger(priceCents) || priceCents < 1 || priceCents > 10_000_000) {
      throw new UnprocessableEntityException('priceCents must be an integer from 1 to 10000000')
    }
    const product = await this.store.setPrice(intParam(id, 'id', 1, 2 ** 31 - 1), priceCents)
    if (!product) throw new NotFoundException('product not found')
    await this.replicaPurge.afterWrite(['products', `product:${product.id}`])
    return product
  }
}

@Controller('orders')
export class OrdersController {
  constructor(@Inject(STORE) private readonly store: Store) {}

  /** A write, throttled per client: 10 orders per 10 seconds. */
  @Post()
  @HttpCode(201)
  @Throttle({ limit: 10, window: '10s' })
  async create(@Body() body: { productId?: unknown; quantity?: unknown } | undefined) {
    const productId = body?.productId
    const quantity = body?.quantity ?? 1
    if (typeof productId !== 'number' || !Number.isInteger(productId) || productId < 1 || typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1 || quantity > 100) {
      throw new UnprocessableEntityException('expected {"productId": integer, "quantity": integer from 1 to 100}')
    }
    const order = await this.store.createOrder(productId, quantity)
    if (!order) throw new UnprocessableEntityException('unknown product or not enough stock')
    return order
  }
}

/** Which product a lookup key resolves to (FNV-1a): many keys share one product, so one write purges many entries. */
export function lookupProductId(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  return ((h >>> 0) % 500) + 1
}

/** The tag must name the product the handler reads (from the decoded param); malformed escapes never throw here. */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/**
 * A cache keyed by an open-ended path segment (`/lookup/<sku or slug>`): the soak test drives it
 * with a million distinct keys while price writes purge them by product tag.
 */
@Controller('lookup')
export class LookupController {
  constructor(@Inject(STORE) private readonly store: Store) {}

  @Get(':key')
  @Cached({ ...PRODUCT_CACHE, tags: (ex) => [`product:${lookupProductId(safeDecode(ex.path.split('/')[2] ?? ''))}`] })
  async get(@Req() req: IncomingMessage, @Param('key') key: string) {
    if (key.length > 128) throw new BadRequestException('key must be at most 128 characters')
    const product = await timed(req, 'db', () => this.store.getProduct(lookupProductId(key)))
    if (!product) throw new NotFoundException('product not found')
    return { key, product }
  }
}

/** The analytics dashboard's heavy aggregate: tightly throttled, cached briefly, logged when slow. */
export const ANALYTICS_SLOW = '20ms'

@Controller('analytics')
export class AnalyticsController {
  constructor(@Inject(STORE) private readonly store: Store) {}

  @Get('revenue')
  @Throttle({ limit: 5, window: '10s' })
  @SlowThreshold(ANALYTICS_SLOW)
  @Cached({ ttl: '5s' })
  @CacheTags('analytics')
  revenue(@Req() req: IncomingMessage, @Query('days') days?: string) {
    return timed(req, 'aggregate', () => this.store.revenue(intParam(days, 'days', 1, 365, 30)))
  }
}
