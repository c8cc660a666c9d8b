import {
  type BeforeApplicationShutdown,
  type DynamicModule,
  Global,
  Inject,
  type MiddlewareConsumer,
  Module,
  type ModuleMetadata,
  type NestModule,
  type OnApplicationBootstrap,
  type Provider,
} from '@nestjs/common'
import { APP_FILTER, DiscoveryModule, HttpAdapterHost } from '@nestjs/core'
import { createOptionsChecker, createRiPipeline, isPlainObject, type Pipeline, type RiOptions } from '@ri/core'
import { createNodeBinding, writeAnswer } from '@ri/core/node'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { RiAnswerFilter } from './answer.js'
import { RiRoutes } from './routes.js'
import { RI_CACHE, RI_DB, RI_OPTIONS, RI_PIPELINE } from './tokens.js'

/**
 * Options of `RiModule.forRoot()`: every `RiOptions` of @ri/core, plus Express-platform compression.
 *
 * @example
 * const options: RiModuleOptions = { throttle, health, cache, trustProxy: 'loopback' }
 */
export interface RiModuleOptions extends RiOptions {
  /**
   * Express platform only: compress handler responses with the `compression` package (install it;
   * an object is passed to it as its options). Early answers (cached responses, 429s, probes) are
   * never compressed here. On Fastify register @fastify/compress. Default false.
   */
  compression?: boolean | Record<string, unknown>
}

/**
 * `RiModule.forRootAsync()`: options from a factory with injected dependencies (ConfigService ...).
 *
 * @example
 * const async: RiModuleAsyncOptions = { inject: [ConfigService], useFactory: (config: ConfigService) => ({ trustProxy: config.get('TRUST_PROXY') }) }
 */
export interface RiModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory: (...args: never[]) => RiModuleOptions | Promise<RiModuleOptions>
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown) | (new (...args: never[]) => unknown)>
}

/** What the binding uses of a Fastify request/reply (no import of fastify: it is an optional platform). */
interface FastifyLike {
  readonly raw: unknown
  hijack?(): void
}

/** The parts of @ri/health's object the module drives, duck-typed (health is optional). */
interface Drainable {
  attach?(server: unknown): () => void
  shutdown?(reason?: string): Promise<unknown>
}

function pipelineOf(options: RiModuleOptions): Pipeline {
  const { compression, ...riOptions } = options
  if (compression !== undefined && typeof compression !== 'boolean' && !isPlainObject(compression)) {
    const check = createOptionsChecker('RiModule')
    check.problem('compression', compression, 'true, false or compression options')
    check.done()
  }
  return createRiPipeline(riOptions)
}

type NodeMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void

// `compression` is an optional peer, loaded only when the option is set (Express platform)
function compressionMiddleware(option: true | Record<string, unknown>): NodeMiddleware {
  // resolved from this package (the CJS build gets import.meta.url shimmed from __filename)
  const load = createRequire(import.meta.url)
  let mod: unknown
  try {
    mod = load('compression')
  } catch {
    const check = createOptionsChecker('RiModule')
    check.problem('compression', option, 'the optional peer "compression" installed (npm i compression)')
    check.done()
  }
  const factory = (typeof mod === 'function' ? mod : (mod as { default: unknown }).default) as (o: object) => NodeMiddleware
  return factory(option === true ? {} : option)
}

function providers(options: Provider): Provider[] {
  return [
    options,
    { provide: RI_PIPELINE, useFactory: pipelineOf, inject: [RI_OPTIONS] },
    { provide: RI_CACHE, useFactory: (o: RiModuleOptions) => o.cache ?? null, inject: [RI_OPTIONS] },
    { provide: RI_DB, useFactory: (o: RiModuleOptions) => o.db ?? null, inject: [RI_OPTIONS] },
    RiRoutes,
    { provide: APP_FILTER, useClass: RiAnswerFilter },
  ]
}

// RiRoutes: for the RiInterceptor instances the decorators attach, created in the controllers' modules.
const EXPORTS = [RI_OPTIONS, RI_PIPELINE, RI_CACHE, RI_DB, RiRoutes]

/**
 * ri for NestJS, on the Express and the Fastify platform alike: the global features run in core's
 * node binding on the platform's node request/response (installed before Nest's routes),
 * route-level features come from decorators, `@InjectCache()`/`@InjectDb()` provide the
 * instances, and with `app.enableShutdownHooks()` shutdown drains through @ri/health.
 *
 * @example
 * @Module({ imports: [RiModule.forRoot({ metrics, health, slowlog, throttle, cache })], controllers: [UsersController] })
 * export class AppModule {}
 */
@Global()
@Module({})
export class RiModule implements NestModule, OnApplicationBootstrap, BeforeApplicationShutdown {
  private detach: (() => void) | undefined

  constructor(
    @Inject(RI_PIPELINE) private readonly pipeline: Pipeline,
    @Inject(RI_OPTIONS) private readonly options: RiModuleOptions,
    @Inject(HttpAdapterHost) private readonly host: HttpAdapterHost,
    @Inject(RiRoutes) private readonly routes: RiRoutes,
  ) {}

  /**
   * @example
   * RiModule.forRoot({ metrics, health, throttle, cache, trustProxy: 'loopback' })
   */
  static forRoot(options: RiModuleOptions = {}): DynamicModule {
    return { module: RiModule, global: true, imports: [DiscoveryModule], providers: providers({ provide: RI_OPTIONS, useValue: options }), exports: EXPORTS }
  }

  /**
   * @example
   * RiModule.forRootAsync({ imports: [ConfigModule], inject: [ConfigService], useFactory: (config: ConfigService) => ({ trustProxy: config.get('TRUST_PROXY') }) })
   */
  static forRootAsync(options: RiModuleAsyncOptions): DynamicModule {
    return {
      module: RiModule,
      global: true,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: providers({ provide: RI_OPTIONS, useFactory: options.useFactory as (...args: unknown[]) => unknown, inject: options.inject ?? [] }),
      exports: EXPORTS,
    }
  }

  /** Nest calls this before it registers routes: the binding goes in first, on either platform. */
  configure(_consumer: MiddlewareConsumer): void {
    const adapter = this.host.httpAdapter
    if (!adapter) return
    const routes = this.routes
    const route = (req: IncomingMessage, path: string) => routes.routeOf(req.method ?? 'GET', path)
    // `before`: @SkipThrottle() handlers are marked before the global throttle runs
    const before = [routes.early]
    if (adapter.getType() === 'fastify') {
      const fastify = adapter.getInstance() as { addHook(name: 'onRequest', hook: (request: FastifyLike, reply: FastifyLike, done: (error?: unknown) => void) => void): unknown }
      // Fastify hands node's objects over as `raw`; an early answer is written there, after the
      // reply is hijacked so Fastify sends nothing of its own
      const replies = new WeakMap<IncomingMessage, FastifyLike>()
      const bind = createNodeBinding(this.pipeline, {
        before,
        route,
        answer: (req, res, answer) => {
          replies.get(req)?.hijack?.()
          writeAnswer(res, answer, req.method === 'HEAD')
        },
      })
      fastify.addHook('onRequest', (request, reply, done) => {
        const raw = request.raw as IncomingMessage
        replies.set(raw, reply)
        bind(raw, reply.raw as ServerResponse, done)
      })
    } else {
      const app = adapter.getInstance() as { use(fn: (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void): unknown }
      app.use(createNodeBinding(this.pipeline, { before, route }))
      // after the binding: early answers never reach it; onSend features of routes see the plain body
      const compression = this.options.compression
      if (compression) app.use(compressionMiddleware(compression))
    }
  }

  onApplicationBootstrap(): void {
    const health = this.options.health as Drainable | undefined
    const server = this.host.httpAdapter?.getHttpServer()
    if (server && typeof health?.attach === 'function') this.detach = health.attach(server)
  }

  /** With `app.enableShutdownHooks()`: readiness turns 503 and in-flight requests drain before Nest closes the server. */
  async beforeApplicationShutdown(signal?: string): Promise<void> {
    const health = this.options.health as Drainable | undefined
    if (typeof health?.shutdown === 'function') await health.shutdown(signal ?? 'application shutdown')
    this.detach?.()
  }
}
