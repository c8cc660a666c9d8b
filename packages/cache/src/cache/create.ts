import { type CacheOptions, resolveConfig } from '../options.js'
import { createNamespace } from './namespace.js'
import type { Cache } from './types.js'
import { createStack } from './stack.js'

/**
 * Creates a cache: L1 in-process (lru-cache) and, optionally, L2 on Redis with a pub/sub bus
 * keeping every instance's L1 coherent. Options are validated once; a bad one throws a
 * `RiConfigError` naming it. With no options it is an embedded L1-only cache.
 *
 * @example
 * import { createCache } from '@ri/cache'
 * const cache = createCache({ l2: process.env.REDIS_URL, ttl: '5m', grace: '1h', timeouts: { soft: '200ms', hard: '5s' } })
 * const users = cache.namespace('users')
 * const user = await users.getOrSet(`u:${id}`, () => db.findUser(id), { tags: [`user:${id}`] })
 * await cache.invalidateTags([`user:${id}`])
 * await cache.close()
 */
export function createCache(options: CacheOptions = {}): Cache {
  const config = resolveConfig(options)
  const stack = createStack(config)
  return createNamespace(stack, config.namespace, config.defaults)
}
