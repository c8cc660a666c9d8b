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
import { APP_FILTER, APP_INTERCEPTOR, DiscoveryModule, HttpAdapterHost } from '@nestjs/core'
import { createRiPipeline, type Pipeline, type RiOptions } from '@ri/core'
import { ri as riExpress, type RiExpressOptions } from '@ri/express'
import { riPlugin } from '@ri/fastify'
import { RiAnswerFilter } from './answer.js'
import { RiInterceptor } from './interceptor.js'
import { RiRoutes } from './routes.js'
import { RI_CACHE, RI_DB, RI_OPTIONS, RI_PIPELINE } from './tokens.js'

/**
 * Options of `RiModule.forRoot()`: every `RiOptions` of @ri/core, plus Express-platform compression.
 *
 * @example
 * const options: RiModuleOptions = { throttle, health, cache, trustProxy: 'loopback' }
 */
export interface RiModuleOptions extends RiOptions {
  /** Express platform only (as in @ri/express); on Fastify register @fastify/compress. Default false. */
  compression?: RiExpressOptions['compression']
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

/** The parts of @ri/health's object the module drives, duck-typed (health is optional). */
interface Drainable {
  attach?(server: unknown): () => void
  shutdown?(reason?: string): Promise<unknown>
}

function pipelineOf(options: RiModuleOptions): Pipeline {
  const { compression: _compression, ...riOptions } = options
  return createRiPipeline(riOptions)
}

function providers(options: Provider): Provider[] {
  return [
    options,
    { provide: RI_PIPELINE, useFactory: pipelineOf, inject: [RI_OPTIONS] },
    { provide: RI_CACHE, useFactory: (o: RiModuleOptions) => o.cache ?? null, inject: [RI_OPTIONS] },
    { provide: RI_DB, useFactory: (o: RiModuleOptions) => o.db ?? null, inject: [RI_OPTIONS] },
    RiRoutes,
    { provide: APP_INTERCEPTOR, useClass: RiInterceptor },
    { provide: APP_FILTER, useClass: RiAnswerFilter },
  ]
}

const EXPORTS = [RI_OPTIONS, RI_PIPELINE, RI_CACHE, RI_DB]

/**
 * ri for NestJS, on the Express and the Fastify platform alike: the global features run in the
 * platform's own binding (@ri/express middleware or the @ri/fastify plugin, installed before
 * Nest's routes), route-level features come from decorators, `@InjectCache()`/`@InjectDb()`
 * provide the instances, and with `app.enableShutdownHooks()` shutdown drains through @ri/health.
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

  /** Nest calls this before it registers routes: the platform binding goes in first. */
  configure(_consumer: MiddlewareConsumer): void {
    const adapter = this.host.httpAdapter
    if (!adapter) return
    const instance = adapter.getInstance() as { use?: (fn: unknown) => unknown; register?: (plugin: unknown, opts: unknown) => unknown }
    // `before`: @SkipThrottle() handlers are marked before the global throttle runs
    const before = [this.routes.early]
    if (adapter.getType() === 'fastify') {
      void instance.register?.(riPlugin, { pipeline: this.pipeline, before })
    } else {
      instance.use?.(riExpress({ pipeline: this.pipeline, compression: this.options.compression, before }))
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
