import type { Feature, RiOptions } from '@ri/core'
import { createCache } from '@ri/cache'
import { createHealth } from '@ri/health'
import { createMetrics } from '@ri/metrics'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import { type ConformanceKit, type ConformanceRoute, runConformance, type StartSetup } from '@ri/testing'
import Fastify from 'fastify'
import { riPlugin, withFeatures } from './index.js'

/** Builds a Fastify app from the shared route table: the plugin under test plus native routing. */
export const fastifySetup: StartSetup = async (routes: readonly ConformanceRoute[], options) => {
  const app = Fastify()
  await app.register(riPlugin, options as unknown as RiOptions)
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.path,
      // the named route options, as an app writes them
      config: {
        ...(route.features ? withFeatures(...(route.features as unknown as Feature[])) : {}),
        ...(route.cache ? { cache: route.cache } : {}),
        ...(route.throttle || route.skipThrottle ? { throttle: route.skipThrottle ? false : route.throttle } : {}),
        ...(route.slowMs !== undefined ? { slowMs: route.slowMs } : {}),
      },
      handler: async (req, reply) => {
        const out = await route.handler({ method: req.method, params: req.params as Record<string, string>, headers: req.headers, body: req.body })
        reply.code(out.status)
        if (out.headers) reply.headers(out.headers)
        return out.body
      },
    })
  }
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { url, close: () => app.close() }
}

const kit: ConformanceKit = { createCache, createHealth, createMetrics, createSlowLog, createThrottle }

runConformance('fastify', fastifySetup, kit)
