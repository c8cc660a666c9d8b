import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Feature, RiOptions } from '@ri/core'
import { createCache } from '@ri/cache'
import { createHealth } from '@ri/health'
import { createMetrics } from '@ri/metrics'
import { createSlowLog } from '@ri/slowlog'
import { type ConformanceKit, type ConformanceRoute, type ConformanceServer, runConformance, type StartSetup } from '@ri/testing'
import { createThrottle } from '@ri/throttle'
import express5 from 'express'
import express4 from 'express4'
import { cached, ri, skipThrottle, slowThreshold, throttled, withFeatures } from './index.js'

type ExpressFactory = typeof express5

function listen(server: Server): Promise<ConformanceServer> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          }),
      })
    })
  })
}

/** Builds an Express app from the shared route table: the adapter under test plus native routing. */
export function expressSetup(express: ExpressFactory): StartSetup {
  return async (routes: readonly ConformanceRoute[], options) => {
    const app = express()
    app.use(ri(options as unknown as RiOptions))
    app.use(express.json())
    for (const route of routes) {
      // the named route helpers, as an app writes them
      const units: express5.RequestHandler[] = []
      if (route.skipThrottle) units.push(skipThrottle())
      if (route.throttle) units.push(throttled(route.throttle))
      if (route.slowMs !== undefined) units.push(slowThreshold(route.slowMs))
      if (route.cache) units.push(cached(route.cache))
      if (route.features) units.push(withFeatures(...(route.features as unknown as Feature[])))
      const method = route.method === 'GET' ? 'get' : 'post'
      app[method](route.path, ...units, async (req: express5.Request, res: express5.Response, next: express5.NextFunction) => {
        try {
          const out = await route.handler({ method: req.method, params: req.params as Record<string, string>, headers: req.headers, body: req.body })
          res.status(out.status)
          if (out.headers) res.set(out.headers)
          res.send(out.body)
        } catch (error) {
          next(error)
        }
      })
    }
    const server = (await import("node:http")).createServer(app)
    return listen(server)
  }
}

export const kit: ConformanceKit = { createCache, createHealth, createMetrics, createSlowLog, createThrottle }

runConformance('express 5', expressSetup(express5), kit)
runConformance('express 4', expressSetup(express4 as unknown as ExpressFactory), kit)
