import type {} from 'reflect-metadata'
import { UseInterceptors } from '@nestjs/common'
import type { Cache, CachedOptions } from '@ri/cache'
import type { Duration, Feature } from '@ri/core'
import type { JsonSchema } from '@ri/core/node'
import type { ThrottledOptions } from '@ri/throttle'
import { RiInterceptor } from './interceptor.js'
import { RI_CACHE_TAGS, RI_CACHED, RI_FEATURES, RI_INVALIDATE_TAGS, RI_SERIALIZE, RI_SKIP_THROTTLE, RI_SLOW, RI_THROTTLE } from './tokens.js'

type Decorator = ClassDecorator & MethodDecorator

/** Writes metadata on a handler (method decorator) or a controller (class decorator). */
function define(key: string, value: unknown): Decorator {
  return (target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    Reflect.defineMetadata(key, value, (descriptor ? descriptor.value : target) as object)
  }
}

// @nestjs/common/constants INTERCEPTORS_METADATA, as a plain string: no deep import.
const INTERCEPTORS_METADATA = '__interceptors__'

/**
 * Also attaches `RiInterceptor` to the handler or controller (once per target): only routes that
 * carry ri decorators pay for an interceptor; the others run none of ri's (Nest's interceptor
 * chain costs an Observable pipeline per request).
 */
function intercepted(decorator: Decorator): Decorator {
  return (target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => {
    ;(decorator as (t: object, k?: string | symbol, d?: PropertyDescriptor) => void)(target, key, descriptor)
    const holder = (descriptor ? descriptor.value : target) as object
    const list = Reflect.getMetadata(INTERCEPTORS_METADATA, holder) as readonly unknown[] | undefined
    if (!list?.includes(RiInterceptor)) (UseInterceptors(RiInterceptor) as (t: object, k?: string | symbol, d?: PropertyDescriptor) => void)(target, key, descriptor)
  }
}

/** Like `define`, but stacked decorators on one target add up. */
function append(key: string, values: readonly unknown[]): Decorator {
  return (target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    const holder = (descriptor ? descriptor.value : target) as object
    const previous = (Reflect.getMetadata(key, holder) as readonly unknown[] | undefined) ?? []
    Reflect.defineMetadata(key, Object.freeze([...previous, ...values]), holder)
  }
}

/**
 * Turns any core `Feature` into a Nest decorator for a handler or a whole controller; `RiModule`'s
 * interceptor runs it after the global features. Stacked decorators add up (controller first).
 * `@Cached()`, `@Throttle()`, `@SlowThreshold()` ... compile to features the same way.
 *
 * @example
 * const poweredBy: Feature = { name: 'powered-by', onHeaders: (ex) => ex.setHeader('x-powered-by', 'ri') }
 * @Controller('users')
 * class UsersController {
 *   @Get(':id') @UseFeatures(poweredBy) get(@Param('id') id: string) { return { id } }
 * }
 */
export function UseFeatures(...features: Feature[]): Decorator {
  return intercepted(append(RI_FEATURES, features))
}

/**
 * Options of `@Cached()`: @ri/cache's `CachedOptions`, where `cache` is optional (default: the
 * cache given to `RiModule.forRoot({ cache })`).
 *
 * @example
 * const options: CachedDecoratorOptions = { ttl: '30s', tags: ['products'], vary: ['accept-language'] }
 */
export type CachedDecoratorOptions = Omit<CachedOptions, 'cache'> & { readonly cache?: Cache }

/**
 * Caches the handler's HTTP response (@ri/cache `cached()`): `X-Cache: MISS/HIT/STALE`, ETag and
 * 304, `Age`, `Cache-Control`, `Vary`. Tags from `@CacheTags()` are added to `options.tags`.
 * A handler's `@Cached()` overrides its controller's. Validated at bootstrap.
 *
 * @example
 * @Get(':id') @Cached({ ttl: '30s' }) @CacheTags('products') get(@Param('id') id: string) { return this.products.get(id) }
 */
export function Cached(options: CachedDecoratorOptions = {}): Decorator {
  return intercepted(define(RI_CACHED, Object.freeze({ ...options })))
}

/**
 * Tags of the responses `@Cached()` stores (controller and handler tags add up), so
 * `cache.invalidateTags()` (or `@InvalidateTags()`) purges them.
 *
 * @example
 * @Controller('products') @CacheTags('products') class ProductsController {}
 */
export function CacheTags(...tags: string[]): Decorator {
  return intercepted(append(RI_CACHE_TAGS, tags))
}

/** A tag to invalidate: a string, or computed from the platform request (`req.params` ...). */
export type InvalidateTag = string | ((request: { readonly params?: Record<string, string> }) => string | readonly string[])

/**
 * After the handler succeeds, `await cache.invalidateTags(tags)` on the module's cache (so every
 * instance sharing its Redis drops the tagged responses) before the response is sent. A handler
 * that throws invalidates nothing.
 *
 * @example
 * @Put(':id') @InvalidateTags('products', (req) => `product:${req.params.id}`) update() {}
 */
export function InvalidateTags(...tags: InvalidateTag[]): Decorator {
  return intercepted(append(RI_INVALIDATE_TAGS, tags))
}

/**
 * A route-level rate limit (@ri/throttle `throttle.route()`), on the store and headers of the
 * module's throttle (a private in-memory one without). A handler's overrides its controller's.
 *
 * @example
 * @Post('sync') @Throttle({ limit: 2, window: '1m' }) sync() {}
 */
export function Throttle(rule: Omit<ThrottledOptions, 'throttle'>): Decorator {
  return intercepted(define(RI_THROTTLE, Object.freeze({ ...rule })))
}

/**
 * Exempts a handler (or a controller) from every throttle, the app-wide one included: the module
 * maps `METHOD route template` to this flag at bootstrap, and the platform binding marks the
 * request before the global throttle runs. `@SkipThrottle(false)` on a handler undoes its
 * controller's.
 *
 * @example
 * @Post('webhooks/stripe') @SkipThrottle() stripe() {}
 */
export function SkipThrottle(skip = true): Decorator {
  return define(RI_SKIP_THROTTLE, skip)
}

/**
 * This handler's slow-log threshold (@ri/slowlog), instead of the global one; `false` never logs
 * it as slow.
 *
 * @example
 * @Get('export') @SlowThreshold('5s') export() {}
 */
export function SlowThreshold(threshold: Duration | false): Decorator {
  return intercepted(define(RI_SLOW, threshold))
}

/**
 * The JSON schema `@Serialize()` takes (fast-json-stringify's).
 *
 * @example
 * const schema: SerializeSchema = { type: 'object', properties: { id: { type: 'string' } } }
 */
export type SerializeSchema = JsonSchema

/**
 * Serializes the handler's return value with fast-json-stringify, compiled once from a JSON
 * schema: faster than JSON.stringify, and properties outside the schema never leak.
 *
 * @example
 * @Get(':id') @Serialize({ type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } }) get() {}
 */
export function Serialize(schema: SerializeSchema): Decorator {
  return intercepted(define(RI_SERIALIZE, schema))
}
