import { createServer, type IncomingMessage, type Server } from 'node:http'
import { createDefaultLogger, createPipeline, type Feature, type Logger, renderServerTiming } from '@ri/core'
import { createNodeHandler, type NodeRoute } from '@ri/core/node'
import { createCatalog } from './catalog.js'

export interface AppOptions {
  logger?: Logger
}

/** Adds a `Server-Timing` header built from the request's timing marks. */
const serverTiming: Feature = {
  name: 'server-timing',
  onHeaders: (ex) => ex.setHeader('server-timing', renderServerTiming(ex.timings.entries, ex.elapsed())),
}

const MAX_BODY_BYTES = 16 * 1024

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) throw new Error('body too large')
    chunks.push(chunk)
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

/** Builds the reference app's HTTP server (not yet listening). */
export function createApp(options: AppOptions = {}): { server: Server; catalog: ReturnType<typeof createCatalog> } {
  const catalog = createCatalog()
  const logger = options.logger ?? createDefaultLogger()
  const pipeline = createPipeline([serverTiming], { logger, trustProxy: 'loopback' })

  const routes: NodeRoute[] = [
    {
      method: 'GET',
      path: '/',
      handler: (_req, _res, ctx) =>
        ctx.json(200, {
          name: 'ri reference app',
          endpoints: ['GET /products', 'GET /products/:id', 'POST /orders', 'GET /analytics/revenue'],
        }),
    },
    {
      method: 'GET',
      path: '/products',
      handler: (_req, _res, ctx) => {
        const params = new URLSearchParams(ctx.exchange.query)
        const limit = Math.min(Math.max(Number(params.get('limit') ?? 20) || 20, 1), 100)
        const offset = Math.max(Number(params.get('offset') ?? 0) || 0, 0)
        return ctx.json(200, { items: catalog.page(offset, limit), offset, limit, total: catalog.products.length })
      },
    },
    {
      method: 'GET',
      path: '/products/:id',
      handler: (_req, _res, ctx) => {
        const product = catalog.find(Number(ctx.params.id))
        return product ? ctx.json(200, product) : ctx.json(404, { error: 'product not found' })
      },
    },
    {
      method: 'POST',
      path: '/orders',
      handler: async (req, _res, ctx) => {
        let body: { productId?: unknown; quantity?: unknown }
        try {
          body = (await readJson(req)) as typeof body
        } catch {
          return ctx.json(400, { error: 'expected a JSON body {"productId": number, "quantity": number}' })
        }
        const productId = Number(body?.productId)
        const quantity = Number(body?.quantity ?? 1)
        if (!catalog.find(productId) || !Number.isInteger(quantity) || quantity < 1 || quantity > 100) {
          return ctx.json(422, { error: 'productId must name a product and quantity be an integer from 1 to 100' })
        }
        return ctx.json(201, catalog.order(productId, quantity))
      },
    },
    {
      method: 'GET',
      path: '/analytics/revenue',
      handler: (_req, _res, ctx) => {
        const end = ctx.exchange.timings.start('aggregate')
        const totals = catalog.revenueByCategory()
        end()
        return ctx.json(200, { totals })
      },
    },
  ]

  return { server: createServer(createNodeHandler(pipeline, routes)), catalog }
}
