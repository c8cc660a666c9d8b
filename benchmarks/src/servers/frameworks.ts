// Servers of http-frameworks.bench.ts: for each framework the bare app, the app with ri's full
// stack (metrics + slowlog + throttle on memory + health) and the anchor stack users assemble
// today, the app with one empty middleware, and the same per-request work hand-rolled without a
// library (`handRolled()`), all serving `GET /users/:id` with the same small constant JSON object.
// Plus, per framework, an app with a response cache serving a constant route and a `cached()` route.
// Every factory builds its app only when called: each subject runs in its own child process.
import 'reflect-metadata'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createCache } from '@ri/cache'
import { createHealth } from '@ri/health'
import { createMetrics } from '@ri/metrics'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import pino from 'pino'

const user = Object.freeze({ id: 1, name: 'Ada' })
/** No request may be refused during a run (a 429 makes autocannonRun throw). */
const LIMIT = 1e9
const WINDOW_MS = 60_000

/** Every logger (pino-http, slowlog) writes to a discarding destination, for all subjects alike. */
function discardLogger() {
  return pino(pino.destination('/dev/null'))
}

/** ri's full stack: metrics + slowlog + throttle (memory) + health, without signal handlers. */
function riFullStack() {
  return {
    metrics: createMetrics(),
    slowlog: createSlowLog({ logger: discardLogger() }),
    throttle: createThrottle({ default: { limit: LIMIT, window: '1m' } }),
    health: createHealth({ shutdown: false }),
  }
}

/**
 * Plain code that does, per request, what ri's full stack must: a duration histogram by method,
 * route template and status (OpenTelemetry's buckets), an active-requests count, the slow-request
 * comparison, a per-IP fixed-window counter, and the two headers the draft requires (`RateLimit`,
 * `RateLimit-Policy`), the same bytes ri sends. No library, no options, no label cap, no log line:
 * what this work costs through a framework's documented extension points (a middleware, or
 * Fastify's hooks). It is a reference, not a floor: ri's full stack can cost less (it reads
 * Fastify's route from the route context instead of `routeOptions`, and joins its headers as the
 * head is written).
 */
function handRolled() {
  const bounds = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
  const series = new Map<string, { counts: Float64Array; sum: number; count: number }>()
  const windows = new Map<string, { used: number; resetAt: number }>()
  const state = { active: 0, slow: 0 }
  return {
    /** Counts the request against its IP's window and returns its `RateLimit` value. */
    start(ip: string): string {
      state.active++
      const now = Date.now()
      let w = windows.get(ip)
      if (w === undefined || w.resetAt <= now) windows.set(ip, (w = { used: 0, resetAt: now + WINDOW_MS }))
      w.used++
      return `"${LIMIT}-per-1m";r=${LIMIT - w.used};t=${Math.ceil((w.resetAt - now) / 1000)}`
    },
    policy: `"${LIMIT}-per-1m";q=${LIMIT};w=${WINDOW_MS / 1000}`,
    /** Records the finished request. */
    end(method: string, route: string, status: number, startedAt: number): void {
      state.active--
      const ms = performance.now() - startedAt
      const key = `${method} ${route} ${status}`
      let s = series.get(key)
      if (s === undefined) series.set(key, (s = { counts: new Float64Array(bounds.length + 1), sum: 0, count: 0 }))
      const seconds = ms / 1000
      let i = 0
      while (i < bounds.length && seconds > bounds[i]!) i++
      s.counts[i]!++
      s.sum += seconds
      s.count++
      if (ms > 500) state.slow++
    },
  }
}

/** `handRolled()` as an Express middleware (also what a NestJS app on Express would `app.use()`). */
function handRolledExpress(): ExpressMiddleware {
  const m = handRolled()
  return (req, res, next) => {
    const startedAt = performance.now()
    res.setHeader('ratelimit', m.start(req.socket.remoteAddress ?? ''))
    res.setHeader('ratelimit-policy', m.policy)
    res.on('finish', () => m.end(req.method, (req.route as { path?: string } | undefined)?.path ?? '', res.statusCode, startedAt))
    next()
  }
}

/**
 * Warms a cached route once the server listens (the child's `listening` line is printed by the
 * listen callback, registered after this listener, so the MISS is issued before load starts).
 */
function warmOnListen(server: Server, path: string): Server {
  server.once('listening', () => {
    const { port } = server.address() as AddressInfo
    fetch(`http://127.0.0.1:${port}${path}`)
      .then((r) => r.arrayBuffer())
      .catch((error: unknown) => console.error('warm-up failed', error))
  })
  return server
}

// ---------------------------------------------------------------------------------------------
// Express 5
// ---------------------------------------------------------------------------------------------

type ExpressMiddleware = import('express').RequestHandler

/** `GET /users/:id` on Express, behind `middleware` when one is given. */
async function expressUsers(middleware?: ExpressMiddleware) {
  const { default: express } = await import('express')
  const app = express()
  if (middleware) app.use(middleware)
  app.get('/users/:id', (_req, res) => {
    res.json(user)
  })
  return (await import('node:http')).createServer(app)
}

export const expressBare = () => expressUsers()

export async function expressRi() {
  const { ri } = await import('@ri/express')
  return expressUsers(ri(riFullStack()))
}

/** `ri({})`: the Express adapter with no feature (for `pnpm instructions`, beside `expressEmpty`). */
export async function expressRiNoFeature() {
  const { ri } = await import('@ri/express')
  return expressUsers(ri({}))
}

/** `handRolled()` on Express. */
export const expressHandRolled = () => expressUsers(handRolledExpress())

/** The floor any middleware pays on Express: one that only calls next(). */
export const expressEmpty = () => expressUsers((_req, _res, next) => next())

export async function expressAnchor() {
  const { default: express } = await import('express')
  const { default: promBundle } = await import('express-prom-bundle')
  const { pinoHttp } = await import('pino-http')
  const { rateLimit } = await import('express-rate-limit')
  const app = express()
  app.use(promBundle({ includeMethod: true, includePath: true, includeStatusCode: true }))
  app.use(pinoHttp({ logger: discardLogger() }))
  app.use(rateLimit({ windowMs: WINDOW_MS, limit: LIMIT, standardHeaders: 'draft-8', legacyHeaders: false }))
  app.get('/users/:id', (_req, res) => {
    res.json(user)
  })
  return (await import('node:http')).createServer(app)
}

/** `GET /constant` returns the constant; `GET /cached/:id` is a `cached()` route (warmed). */
export async function expressCache() {
  const { default: express } = await import('express')
  const { ri, cached } = await import('@ri/express')
  const app = express()
  app.use(ri({ cache: createCache() }))
  app.get('/constant', (_req, res) => {
    res.json(user)
  })
  app.get('/cached/:id', cached({ ttl: '1m' }), (_req, res) => {
    res.json(user)
  })
  return warmOnListen((await import('node:http')).createServer(app), '/cached/1')
}

// ---------------------------------------------------------------------------------------------
// Fastify 5
// ---------------------------------------------------------------------------------------------

async function fastifyApp() {
  const { default: Fastify } = await import('fastify')
  return Fastify({ logger: false })
}

export async function fastifyBare() {
  const app = await fastifyApp()
  app.get('/users/:id', async () => user)
  await app.ready()
  return app.server
}

export async function fastifyRi() {
  const { riPlugin } = await import('@ri/fastify')
  const app = await fastifyApp()
  await app.register(riPlugin, riFullStack())
  app.get('/users/:id', async () => user)
  await app.ready()
  return app.server
}

/** The floor any plugin pays on Fastify: an `onRequest` hook that only calls done(). */
export async function fastifyEmpty() {
  const app = await fastifyApp()
  app.addHook('onRequest', (_request, _reply, done) => done())
  app.get('/users/:id', async () => user)
  await app.ready()
  return app.server
}

/** `handRolled()` on Fastify: an `onRequest` and an `onResponse` hook, as fastify-metrics and @fastify/rate-limit use. */
export async function fastifyHandRolled() {
  const m = handRolled()
  const startedAt = new WeakMap<object, number>()
  const app = await fastifyApp()
  app.addHook('onRequest', (request, reply, done) => {
    startedAt.set(request, performance.now())
    reply.header('ratelimit', m.start(request.socket.remoteAddress ?? ''))
    reply.header('ratelimit-policy', m.policy)
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    m.end(request.method, request.routeOptions.url ?? '', reply.statusCode, startedAt.get(request)!)
    done()
  })
  app.get('/users/:id', async () => user)
  await app.ready()
  return app.server
}

export async function fastifyAnchor() {
  const metricsModule = await import('fastify-metrics')
  // CommonJS with `exports.default`: under Node's ESM loader the plugin is one `default` deeper.
  const metricsPlugin = metricsModule.default.default
  const { default: promClient } = await import('@platformatic/prom-client')
  const { default: rateLimitPlugin } = await import('@fastify/rate-limit')
  const app = await fastifyApp()
  // fastify-metrics 14 would load @prometheus-io/client (Node >= 22); pass the drop-in it supports.
  await app.register(metricsPlugin, { endpoint: '/metrics', promClient: promClient as never })
  await app.register(rateLimitPlugin, { max: LIMIT, timeWindow: WINDOW_MS })
  app.get('/users/:id', async () => user)
  await app.ready()
  return app.server
}

export async function fastifyCache() {
  const { riPlugin } = await import('@ri/fastify')
  const app = await fastifyApp()
  await app.register(riPlugin, { cache: createCache() })
  app.get('/constant', async () => user)
  app.get('/cached/:id', { config: { cache: { ttl: '1m' } } }, async () => user)
  await app.ready()
  return warmOnListen(app.server, '/cached/1')
}

// ---------------------------------------------------------------------------------------------
// Hono 4 on @hono/node-server
// ---------------------------------------------------------------------------------------------

type HonoFetch = Parameters<typeof import('@hono/node-server').createAdaptorServer>[0]['fetch']

async function honoServer(app: { fetch: HonoFetch }) {
  const { createAdaptorServer } = await import('@hono/node-server')
  return createAdaptorServer({ fetch: app.fetch }) as Server
}

type HonoMiddleware = import('hono').MiddlewareHandler

/** `GET /users/:id` on Hono, behind `middleware` when one is given. */
async function honoUsers(middleware?: HonoMiddleware) {
  const { Hono } = await import('hono')
  const app = new Hono()
  if (middleware) app.use(middleware)
  app.get('/users/:id', (c) => c.json(user))
  return honoServer(app)
}

export const honoBare = () => honoUsers()

export async function honoRi() {
  const { ri } = await import('@ri/hono')
  return honoUsers(ri(riFullStack()))
}

/**
 * The floor any middleware pays on Hono: one that only returns next(). A route with a single
 * handler is called directly; a second one (any `app.use`) runs the chain through Hono's async
 * compose, a few promises per request.
 */
export const honoEmpty = () => honoUsers((_c, next) => next())

/** `handRolled()` on Hono: one middleware, the headers set with `c.header()` before the handler builds its response. */
export async function honoHandRolled() {
  const m = handRolled()
  return honoUsers(async (c, next) => {
    const startedAt = performance.now()
    const incoming = (c.env as { incoming?: import('node:http').IncomingMessage } | undefined)?.incoming
    c.header('ratelimit', m.start(incoming?.socket.remoteAddress ?? ''))
    c.header('ratelimit-policy', m.policy)
    await next()
    m.end(c.req.method, c.req.routePath, c.res.status, startedAt)
  })
}

export async function honoAnchor() {
  const { Hono } = await import('hono')
  const { prometheus } = await import('@hono/prometheus')
  const { rateLimiter } = await import('hono-rate-limiter')
  const { getConnInfo } = await import('@hono/node-server/conninfo')
  const app = new Hono()
  const { printMetrics, registerMetrics } = prometheus()
  app.use('*', registerMetrics)
  app.get('/metrics', printMetrics)
  app.use(
    rateLimiter({
      windowMs: WINDOW_MS,
      limit: LIMIT,
      standardHeaders: 'draft-7',
      keyGenerator: (c) => getConnInfo(c).remote.address ?? '',
    }),
  )
  app.get('/users/:id', (c) => c.json(user))
  return honoServer(app)
}

export async function honoCache() {
  const { Hono } = await import('hono')
  const { ri, cached } = await import('@ri/hono')
  const app = new Hono()
  app.use(ri({ cache: createCache() }))
  app.get('/constant', (c) => c.json(user))
  app.get('/cached/:id', cached({ ttl: '1m' }), (c) => c.json(user))
  return warmOnListen(await honoServer(app), '/cached/1')
}

// ---------------------------------------------------------------------------------------------
// NestJS 11 on the Express platform. tsx (esbuild) emits no design:paramtypes: explicit @Inject.
// Classes are declared inside the factories so the decorators (and the ri objects given to
// RiModule.forRoot) are evaluated only in the child that serves them.
// ---------------------------------------------------------------------------------------------

async function nestServer(module: new () => unknown): Promise<Server> {
  const { NestFactory } = await import('@nestjs/core')
  const app = await NestFactory.create(module, { logger: false })
  await app.init()
  return app.getHttpServer() as Server
}

async function usersController() {
  const { Controller, Get } = await import('@nestjs/common')
  @Controller('users')
  class UsersController {
    @Get(':id')
    get() {
      return user
    }
  }
  return UsersController
}

/** The users controller on NestJS (Express platform), behind an Express `middleware` when one is given. */
async function nestUsers(middleware?: ExpressMiddleware) {
  const { Module } = await import('@nestjs/common')
  const { NestFactory } = await import('@nestjs/core')
  @Module({ controllers: [await usersController()] })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false })
  if (middleware) app.use(middleware)
  await app.init()
  return app.getHttpServer() as Server
}

export const nestBare = () => nestUsers()

export async function nestRi() {
  const { Module } = await import('@nestjs/common')
  const { RiModule } = await import('@ri/nest')
  @Module({ imports: [RiModule.forRoot(riFullStack())], controllers: [await usersController()] })
  class AppModule {}
  return nestServer(AppModule)
}

/** The floor any middleware pays on NestJS (Express platform): an Express middleware that only calls next(), where @ri/nest binds. */
export const nestEmpty = () => nestUsers((_req, _res, next) => next())

/** `handRolled()` on NestJS (Express platform): its Express middleware through `app.use()`. */
export const nestHandRolled = () => nestUsers(handRolledExpress())

export async function nestAnchor() {
  const { Inject, Injectable, Module } = await import('@nestjs/common')
  const { APP_GUARD, APP_INTERCEPTOR } = await import('@nestjs/core')
  const { PrometheusModule, makeHistogramProvider, getToken } = await import('@willsoto/nestjs-prometheus')
  const { ThrottlerGuard, ThrottlerModule } = await import('@nestjs/throttler')
  type Histogram = import('prom-client').Histogram<string>
  type Interceptor = import('@nestjs/common').NestInterceptor
  type Ctx = import('@nestjs/common').ExecutionContext
  type Handler = import('@nestjs/common').CallHandler
  type Req = { method: string; route?: { path?: string } }
  type Res = { statusCode: number; once(event: 'finish', listener: () => void): unknown }

  const METRIC = 'http_request_duration_seconds'
  // @willsoto/nestjs-prometheus exposes /metrics and metric providers but records no HTTP
  // metrics itself: users add the RED histogram with an interceptor like this one.
  @Injectable()
  class HttpMetricsInterceptor implements Interceptor {
    constructor(@Inject(getToken(METRIC)) private readonly histogram: Histogram) {}
    intercept(context: Ctx, next: Handler) {
      const http = context.switchToHttp()
      const req = http.getRequest<Req>()
      const res = http.getResponse<Res>()
      const start = performance.now()
      res.once('finish', () => {
        this.histogram.observe(
          { method: req.method, route: req.route?.path ?? '', status_code: String(res.statusCode) },
          (performance.now() - start) / 1000,
        )
      })
      return next.handle()
    }
  }

  @Module({
    imports: [PrometheusModule.register(), ThrottlerModule.forRoot([{ ttl: WINDOW_MS, limit: LIMIT }])],
    controllers: [await usersController()],
    providers: [
      makeHistogramProvider({ name: METRIC, help: 'Duration of HTTP requests in seconds', labelNames: ['method', 'route', 'status_code'] }),
      { provide: APP_INTERCEPTOR, useClass: HttpMetricsInterceptor },
      { provide: APP_GUARD, useClass: ThrottlerGuard },
    ],
  })
  class AppModule {}
  return nestServer(AppModule)
}

export async function nestCache() {
  const { Controller, Get, Module } = await import('@nestjs/common')
  const { RiModule, Cached } = await import('@ri/nest')
  @Controller()
  class CacheController {
    @Get('constant')
    constant() {
      return user
    }

    @Get('cached/:id')
    @Cached({ ttl: '1m' })
    cachedUser() {
      return user
    }
  }
  @Module({ imports: [RiModule.forRoot({ cache: createCache() })], controllers: [CacheController] })
  class AppModule {}
  return warmOnListen(await nestServer(AppModule), '/cached/1')
}
