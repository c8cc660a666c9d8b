import 'reflect-metadata'
import type { AddressInfo } from 'node:net'
import { Controller, Get, HttpCode, type INestApplication, Module, Param, Post, Req, type Type, VersioningType } from '@nestjs/common'
import { NestFactory, RouterModule } from '@nestjs/core'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { createCache } from '@ri/cache'
import { type Feature, type Logger, RiConfigError } from '@ri/core'
import { createSlowLog } from '@ri/slowlog'
import { createThrottle } from '@ri/throttle'
import { request } from 'undici'
import { describe, expect, it, vi } from 'vitest'
import { Cached, CacheTags, InvalidateTags, RiInterceptor, RiModule, type RiModuleOptions, Serialize, SkipThrottle, SlowThreshold, Throttle, UseFeatures } from './index.js'

function capture(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const log = (obj: unknown) => void lines.push(obj as Record<string, unknown>)
  const logger = { lines, trace: log, debug: log, info: log, warn: log, error: log, fatal: log, child: () => logger } as unknown as Logger & { lines: Array<Record<string, unknown>> }
  return logger
}

const get = async (url: string, headers: Record<string, string> = {}, method: 'GET' | 'POST' = 'GET') => {
  const r = await request(url, { headers, method })
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() }
}

let calls = 0

@Controller('items')
@CacheTags('items')
class ItemsController {
  @Get('cached/:id')
  @Cached({ ttl: '1m' })
  @CacheTags('item')
  cachedItem(@Param('id') id: string) {
    return { id, calls: ++calls }
  }

  @Post('cached/:id')
  @HttpCode(200)
  @InvalidateTags((req) => `item-${req.params?.id}`, 'items')
  update(@Param('id') id: string) {
    return { updated: id }
  }

  @Get('tight')
  @Throttle({ limit: 1, window: '1m' })
  @SlowThreshold(0)
  tight() {
    return 'tight'
  }

  @Get('free')
  @SkipThrottle()
  free() {
    return 'free'
  }

  @Get('user')
  @Serialize({ type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } })
  user() {
    return { id: 7, name: 'Ada', password: 'never' }
  }
}

async function boot(platform: 'express' | 'fastify', options: RiModuleOptions, controller: Type): Promise<{ app: INestApplication; base: string }> {
  @Module({ imports: [RiModule.forRoot(options)], controllers: [controller] })
  class AppModule {}
  const app: INestApplication =
    platform === 'fastify' ? await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false }) : await NestFactory.create(AppModule, { logger: false })
  app.setGlobalPrefix('api')
  await app.listen(0, '127.0.0.1')
  return { app, base: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/api/items` }
}

for (const platform of ['express', 'fastify'] as const) {
  describe(`ri decorators on nest-${platform}`, () => {
    it('@Cached + @CacheTags (MISS, HIT, 304), @InvalidateTags, @Throttle, @SkipThrottle, @SlowThreshold, @Serialize', async () => {
      calls = 0
      const logger = capture()
      const cache = createCache()
      const { app, base } = await boot(
        platform,
        { cache, throttle: createThrottle({ default: { limit: 5, window: '1m' } }), slowlog: createSlowLog({ logger, thresholdMs: '10s' }) },
        ItemsController,
      )
      try {
        const miss = await get(`${base}/cached/1`)
        expect(miss.status).toBe(200)
        expect(miss.headers['x-cache']).toBe('MISS')
        const hit = await get(`${base}/cached/1`)
        expect(hit.headers['x-cache']).toBe('HIT')
        expect(hit.text).toBe(miss.text)
        expect((await get(`${base}/cached/1`, { 'if-none-match': String(miss.headers.etag) })).status).toBe(304)
        expect(calls).toBe(1)
        // handler tag from a function of the request, controller tag 'items'
        expect((await get(`${base}/cached/1`, {}, 'POST')).status).toBe(200)
        expect((await get(`${base}/cached/1`)).headers['x-cache']).toBe('MISS')
        expect(calls).toBe(2)
        // 5 requests so far against the global 5/min
        expect((await get(`${base}/cached/1`)).status).toBe(429)
        for (let i = 0; i < 3; i++) expect((await get(`${base}/free`)).status).toBe(200)
        expect((await get(`${base}/user`)).status).toBe(429) // the global limit still applies elsewhere
      } finally {
        await app.close()
      }
      const { app: app2, base: base2 } = await boot(platform, { cache, slowlog: createSlowLog({ logger, thresholdMs: '10s' }) }, ItemsController)
      try {
        expect((await get(`${base2}/tight`)).status).toBe(200)
        const limited = await get(`${base2}/tight`)
        expect(limited.status).toBe(429)
        expect(limited.headers['retry-after']).toBeDefined()
        expect(limited.headers.ratelimit).toBeDefined()
        const user = await get(`${base2}/user`)
        expect(user.headers['content-type']).toContain('application/json')
        expect(user.text).toBe('{"id":"7","name":"Ada"}')
        await new Promise((r) => setTimeout(r, 20))
        const routes = logger.lines.map((l) => (l as { route?: string }).route)
        expect(routes).toContain('/api/items/tight')
        expect(routes).not.toContain('/api/items/user')
      } finally {
        await app2.close()
      }
    })

    it('adds no property to the request a decorated route runs on (Express swaps its prototype per request)', async () => {
      let keys: string[] = []
      @Controller('items')
      class KeysController {
        @Get('keys')
        @Throttle({ limit: 100, window: '1m' })
        keys(@Req() req: object) {
          const raw = (req as { raw?: object }).raw ?? req
          keys = [...Reflect.ownKeys(req), ...Reflect.ownKeys(raw)].map(String).filter((k) => k.includes('@ri'))
          return 'ok'
        }
      }
      const { app, base } = await boot(platform, {}, KeysController)
      try {
        const r = await get(`${base}/keys`)
        expect(r.status).toBe(200)
        expect(r.headers.ratelimit).toBeDefined() // the plan ran
        expect(keys).toEqual([])
      } finally {
        await app.close()
      }
    })

    it('only decorated routes run RiInterceptor, once per request, from controllers in any module', async () => {
      const seen: string[] = []
      const counter: Feature = { name: 'counter', onRequest: (ex) => void seen.push(ex.route ?? '?') }
      @Controller('deco')
      @UseFeatures(counter)
      class DecoratedController {
        @Get('both')
        @Throttle({ limit: 100, window: '1m' })
        both() {
          return 'both'
        }
      }
      @Controller('plain')
      class PlainController {
        @Get()
        plain() {
          return 'plain'
        }
      }
      @Module({ controllers: [DecoratedController] })
      class FeatureModule {}
      @Module({ imports: [RiModule.forRoot({}), FeatureModule], controllers: [PlainController] })
      class AppModule {}
      const intercept = vi.spyOn(RiInterceptor.prototype, 'intercept')
      const app: INestApplication =
        platform === 'fastify' ? await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false }) : await NestFactory.create(AppModule, { logger: false })
      await app.listen(0, '127.0.0.1')
      const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`
      try {
        // the interceptor sits on the decorated controller and its handler, not on PlainController
        expect(Reflect.getMetadata('__interceptors__', DecoratedController)).toEqual([RiInterceptor])
        expect(Reflect.getMetadata('__interceptors__', DecoratedController.prototype.both)).toEqual([RiInterceptor])
        expect(Reflect.getMetadata('__interceptors__', PlainController.prototype.plain)).toBeUndefined()
        const both = await get(`${base}/deco/both`)
        expect(both.status).toBe(200)
        expect(both.headers.ratelimit).toBe('"100-per-1m";r=99;t=60') // counted once, not twice
        expect(seen).toEqual(['/deco/both'])
        intercept.mockClear()
        expect((await get(`${base}/plain`)).text).toBe('plain')
        expect(intercept).not.toHaveBeenCalled()
      } finally {
        intercept.mockRestore()
        await app.close()
      }
    })

    it('a bad decorator configuration fails the bootstrap with a RiConfigError', async () => {
      @Controller('bad')
      class BadController {
        @Get()
        @Cached({ ttl: '1m' })
        get() {
          return 'x'
        }
      }
      await expect(boot(platform, {}, BadController)).rejects.toThrow(RiConfigError)
    })

    it('@SkipThrottle() is mapped through the global prefix, URI versioning and RouterModule paths', async () => {
      @Controller({ path: 'ver', version: '2' })
      class VersionedController {
        @Get('free')
        @SkipThrottle()
        free() {
          return 'free'
        }

        @Get('counted')
        counted() {
          return 'counted'
        }
      }
      @Module({ controllers: [VersionedController] })
      class AdminModule {}
      @Module({
        imports: [RiModule.forRoot({ throttle: createThrottle({ default: { limit: 1, window: '1m' } }) }), AdminModule, RouterModule.register([{ path: 'admin', module: AdminModule }])],
      })
      class AppModule {}
      const app: INestApplication =
        platform === 'fastify' ? await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false }) : await NestFactory.create(AppModule, { logger: false })
      app.setGlobalPrefix('api')
      app.enableVersioning({ type: VersioningType.URI })
      await app.listen(0, '127.0.0.1')
      const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/api/v2/admin/ver`
      try {
        for (let i = 0; i < 3; i++) expect((await get(`${base}/free`)).status).toBe(200)
        expect((await get(`${base}/counted`)).status).toBe(200)
        expect((await get(`${base}/counted`)).status).toBe(429)
      } finally {
        await app.close()
      }
    })
  })
}
