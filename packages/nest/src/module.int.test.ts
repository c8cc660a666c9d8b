import 'reflect-metadata'
import type { AddressInfo } from 'node:net'
import { Controller, Get, Inject, Injectable, type INestApplication, Module, Param } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { createEvents, type Feature, type FeatureProvider } from '@ri/core'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { InjectCache, InjectDb, RiModule, UseFeatures } from './index.js'

const CONFIG = 'CONFIG'
const stamp = (name: string): Feature => ({ name, onHeaders: (ex) => ex.setHeader(`x-${name}`, ex.route ?? 'none') })

@Controller('items')
@UseFeatures(stamp('controller'))
class ItemsController {
  constructor(
    @InjectCache() private readonly cache: { kind: string } | null,
    @InjectDb() private readonly db: { kind: string } | null,
  ) {}

  @Get(':id')
  @UseFeatures(stamp('handler'))
  get(@Param('id') id: string) {
    return { id, cache: this.cache?.kind ?? null, db: this.db?.kind ?? null }
  }

  @Get()
  list() {
    return []
  }
}

@Injectable()
class Config {
  readonly trustProxy = 'loopback' as const
}
@Module({ providers: [{ provide: CONFIG, useClass: Config }], exports: [CONFIG] })
class ConfigModule {}

/** A health-like provider: records drain calls (the real one is @ri/health). */
function fakeHealth() {
  const calls: string[] = []
  const provider: FeatureProvider & { attach(server: unknown): () => void; shutdown(reason?: string): Promise<void> } = {
    feature: () => ({ name: 'fake-health', onRequest: (ex) => (ex.path === '/health' ? { status: 200, body: 'up' } : undefined) }),
    attach: () => {
      calls.push('attach')
      return () => calls.push('detach')
    },
    shutdown: async (reason) => {
      calls.push(`shutdown:${reason}`)
    },
  }
  return { provider, calls }
}

for (const platform of ['express', 'fastify'] as const) {
  describe(`RiModule on nest-${platform}`, () => {
    it('forRootAsync, injected cache/db, controller + handler features, global prefix, drain on shutdown', async () => {
      const health = fakeHealth()
      const events = createEvents()
      const seen: Array<string | undefined> = []
      events.on('http.request', (e) => seen.push(e.route))
      @Module({
        imports: [
          RiModule.forRootAsync({
            imports: [ConfigModule],
            inject: [CONFIG],
            useFactory: (config: Config) => ({ trustProxy: config.trustProxy, health: health.provider, events, cache: { kind: 'cache' } as never, db: { kind: 'db', feature: () => ({ name: 'db' }) } as never }),
          }),
        ],
        controllers: [ItemsController],
      })
      class AppModule {}
      const app: INestApplication =
        platform === 'fastify' ? await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false }) : await NestFactory.create(AppModule, { logger: false })
      app.setGlobalPrefix('api')
      app.enableShutdownHooks()
      await app.listen(0, '127.0.0.1')
      const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`
      try {
        const r = await request(`${base}/api/items/4`)
        expect(await r.body.json()).toEqual({ id: '4', cache: 'cache', db: 'db' })
        expect(r.headers['x-controller']).toBe('/api/items/:id')
        expect(r.headers['x-handler']).toBe('/api/items/:id')
        const list = await request(`${base}/api/items`)
        await list.body.dump()
        expect(list.headers['x-controller']).toBe('/api/items')
        expect(list.headers['x-handler']).toBeUndefined()
        const probe = await request(`${base}/health`)
        expect(await probe.body.text()).toBe('up')
        await new Promise((res) => setTimeout(res, 20))
        expect(seen).toEqual(['/api/items/:id', '/api/items', undefined])
      } finally {
        await app.close()
      }
      expect(health.calls).toEqual(['attach', 'shutdown:application shutdown', 'detach'])
    })
  })
}
