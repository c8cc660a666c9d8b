import 'reflect-metadata'
import { type INestApplication, type LogLevel, Module } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import type { Logger } from '@ri/core'
import { RiModule } from '@ri/nest'
import type { AddressInfo } from 'node:net'
import type { AppConfig } from './config.js'
import { AnalyticsController, IndexController, LookupController, OrdersController, ProductsController, REPLICA_PURGE, STORE } from './controllers.js'
import { createInfra, type Infra } from './infra.js'

export interface AppOptions {
  logger: Logger
  /** Where slow-request lines go (default: `logger`). */
  slowLogger?: Logger
  /** false (tests): no signal handlers, no exit; `close()` drains and releases everything. */
  signals?: boolean
  /** Nest's own log levels (default: warnings and errors). */
  nestLogLevels?: LogLevel[] | false
}

export interface RunningApp {
  readonly url: string
  readonly port: number
  readonly app: INestApplication
  readonly infra: Infra
  /** Graceful: readiness 503, in-flight requests drain, connections and the database close. */
  close(): Promise<void>
}

/** Builds the NestJS app on the ri infrastructure the config selects, and starts listening. */
export async function startApp(config: AppConfig, options: AppOptions): Promise<RunningApp> {
  const infra = await createInfra(config, { logger: options.logger, slowLogger: options.slowLogger, signals: options.signals })

  @Module({
    imports: [RiModule.forRoot(infra.riOptions)],
    controllers: [IndexController, ProductsController, OrdersController, AnalyticsController, LookupController],
    providers: [
      { provide: STORE, useValue: infra.store },
      { provide: REPLICA_PURGE, useValue: infra.replicaPurge },
    ],
  })
  class AppModule {}

  const app = await NestFactory.create(AppModule, { logger: options.nestLogLevels ?? ['error', 'warn'] })
  app.getHttpAdapter().getInstance().disable('x-powered-by')
  // Health owns SIGTERM/SIGINT (drain, cleanup hooks, exit 0), so no app.enableShutdownHooks() here.
  await app.listen(config.port, config.host)
  const port = (app.getHttpServer().address() as AddressInfo).port
  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  return {
    url: `http://${host}:${port}`,
    port,
    app,
    infra,
    // RiModule's beforeApplicationShutdown runs health.shutdown(): drain, then the cleanup hooks.
    close: () => app.close(),
  }
}
