import 'reflect-metadata'
import type { AddressInfo } from 'node:net'
import { Controller, Get, HttpCode, type INestApplication, Module, Post, Req, Res, type Type } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import type { Feature, RiOptions } from '@ri/core'
import { createCache } from '@ri/cache'
import { createHealth } from '@ri/health'
import { createMetrics } from '@ri/metrics'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import { type ConformanceKit, type ConformanceRoute, runConformance, type StartSetup } from '@ri/testing'
import { Cached, RiModule, SkipThrottle, SlowThreshold, Throttle, UseFeatures } from './index.js'

type Platform = 'express' | 'fastify'

interface AnyRes {
  status?: (code: number) => unknown
  set?: (headers: Record<string, string>) => unknown
  code?: (code: number) => unknown
  headers?: (headers: Record<string, string>) => unknown
}

/** A controller built from the shared route table (explicit decorators: no design:paramtypes here). */
function controllerFor(routes: readonly ConformanceRoute[], platform: Platform): Type {
  class ConformanceController {}
  const proto = ConformanceController.prototype as unknown as Record<string, unknown>
  routes.forEach((route, i) => {
    const key = `route${i}`
    proto[key] = async (req: { method: string; params: Record<string, string>; headers: Record<string, string>; body: unknown }, res: AnyRes) => {
      const out = await route.handler({ method: req.method, params: req.params, headers: req.headers, body: req.body })
      if (platform === 'fastify') {
        res.code!(out.status)
        if (out.headers) res.headers!(out.headers)
      } else {
        res.status!(out.status)
        if (out.headers) res.set!(out.headers)
      }
      return out.body
    }
    const descriptor = Object.getOwnPropertyDescriptor(proto, key)!
    Req()(proto, key, 0)
    Res({ passthrough: true })(proto, key, 1)
    HttpCode(200)(proto, key, descriptor)
    if (route.features) UseFeatures(...(route.features as unknown as Feature[]))(proto, key, descriptor)
    // the named decorators, as an app writes them
    if (route.skipThrottle) SkipThrottle()(proto, key, descriptor)
    if (route.throttle) Throttle(route.throttle)(proto, key, descriptor)
    if (route.slowMs !== undefined) SlowThreshold(route.slowMs)(proto, key, descriptor)
    if (route.cache) Cached(route.cache)(proto, key, descriptor)
    ;(route.method === 'GET' ? Get(route.path) : Post(route.path))(proto, key, descriptor)
  })
  Controller()(ConformanceController)
  return ConformanceController
}

/** Builds a Nest app (Express or Fastify platform) with RiModule from the shared route table. */
export function nestSetup(platform: Platform): StartSetup {
  return async (routes, options) => {
    @Module({ imports: [RiModule.forRoot(options as unknown as RiOptions)], controllers: [controllerFor(routes, platform)] })
    class AppModule {}
    const app: INestApplication =
      platform === 'fastify' ? await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false }) : await NestFactory.create(AppModule, { logger: false })
    await app.listen(0, '127.0.0.1')
    const { port } = app.getHttpServer().address() as AddressInfo
    return {
      url: `http://127.0.0.1:${port}`,
      close: async () => {
        const server = app.getHttpServer() as { closeAllConnections?: () => void }
        server.closeAllConnections?.()
        await app.close()
      },
    }
  }
}

const kit: ConformanceKit = { createCache, createHealth, createMetrics, createSlowLog, createThrottle }

runConformance('nest-express', nestSetup('express'), kit)
runConformance('nest-fastify', nestSetup('fastify'), kit)
