import type { AddressInfo } from 'node:net'
import type { Feature, RiOptions } from '@ri/core'
import { serve } from '@hono/node-server'
import { createCache } from '@ri/cache'
import { createHealth } from '@ri/health'
import { createMetrics } from '@ri/metrics'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import { type ConformanceKit, type ConformanceRoute, runConformance, type StartSetup } from '@ri/testing'
import { Hono, type MiddlewareHandler } from 'hono'
import { cached, ri, skipThrottle, slowThreshold, throttled, withFeatures } from './index.js'

/** Builds a Hono app on @hono/node-server from the shared route table. */
export const honoSetup: StartSetup = async (routes: readonly ConformanceRoute[], options) => {
  const app = new Hono()
  app.use(ri(options as unknown as RiOptions))
  app.onError((_error, c) => c.text('Internal Server Error', 500))
  for (const route of routes) {
    const handler = async (c: import('hono').Context) => {
      const body = route.method === 'POST' ? await c.req.json().catch(() => undefined) : undefined
      const headers = Object.fromEntries(c.req.raw.headers)
      const out = await route.handler({ method: c.req.method, params: c.req.param() as Record<string, string>, headers, body })
      return new Response(out.body, { status: out.status, headers: out.headers })
    }
    // the named route helpers, as an app writes them
    const units: MiddlewareHandler[] = []
    if (route.skipThrottle) units.push(skipThrottle())
    if (route.throttle) units.push(throttled(route.throttle))
    if (route.slowMs !== undefined) units.push(slowThreshold(route.slowMs))
    if (route.cache) units.push(cached(route.cache))
    if (route.features) units.push(withFeatures(...(route.features as unknown as Feature[])))
    const on = app.on.bind(app) as unknown as (method: string, path: string, ...handlers: MiddlewareHandler[]) => void
    on(route.method, route.path, ...units, handler as unknown as MiddlewareHandler)
  }
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            ;(server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
          }),
      })
    })
  })
}

const kit: ConformanceKit = { createCache, createHealth, createMetrics, createSlowLog, createThrottle }

runConformance('hono', honoSetup, kit)
