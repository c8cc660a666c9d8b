/**
 * @ri/cache: multi-level cache (L1 lru-cache + L2 Redis) with tags, a cross-instance bus,
 * stampede protection, grace/fail-safe and an HTTP response cache feature.
 */
export { createCache } from './cache/create.js'
export type {
  Cache,
  CacheEntryInfo,
  CacheStats,
  Loader,
  LoaderContext,
  BatchLoader,
  SetManyEntry,
} from './cache/types.js'
export {
  DEFAULTS,
  type CacheOptions,
  type L1Options,
  type L2Options,
  type TimeoutOptions,
  type SetOptions,
  type GetOrSetOptions,
  type NamespaceOptions,
  type RedisLike,
} from './options.js'
export { type Codec, jsonCodec, safeJsonParse } from './serializer.js'
export { cached, type CachedOptions, type StoredResponse } from './http/cached.js'
export type { BusMessage } from './bus/bus.js'
export { selectCached, type CachedSelection, type CachedRouteOptions, type CacheDeps } from './http/select.js'
