import type { Duration, RiEvents } from '@ri/core'
import type { GetOrSetOptions, NamespaceOptions, SetOptions } from '../options.js'

/**
 * What a loader receives: adapt the TTL or tags to the loaded value, skip caching it, see the
 * stale value (if any) and stop work when the hard timeout aborts the load.
 *
 * @example
 * await cache.getOrSet('user:1', async (ctx) => {
 *   const user = await db.findUser(1)
 *   if (!user) ctx.skip()                 // do not cache a miss
 *   else ctx.setTags([`team:${user.teamId}`])
 *   return user
 * }, { ttl: '10m', tags: ['users'] })
 */
export interface LoaderContext<T = unknown> {
  readonly key: string
  /** The stale value being refreshed, if any. */
  readonly stale: T | undefined
  /** Aborted when the hard timeout fires. */
  readonly signal: AbortSignal
  setTtl(ttl: Duration): void
  setTags(tags: readonly string[]): void
  /** Return the value to the caller but do not cache it. */
  skip(): void
}

/**
 * Loads a value on a miss.
 *
 * @example
 * const load: Loader<User> = (ctx) => db.findUser(ctx.key.slice(5))
 */
export type Loader<T> = (ctx: LoaderContext<T>) => T | Promise<T>

/**
 * A batch loader: receives only the keys that missed; returns values in the same order, or a Map.
 *
 * @example
 * await cache.getOrSetMany(ids, (missing) => db.findUsers(missing))
 */
export type BatchLoader<T> = (keys: string[]) => Promise<ReadonlyArray<T> | ReadonlyMap<string, T>> | ReadonlyArray<T> | ReadonlyMap<string, T>

/**
 * An entry of `setMany`.
 *
 * @example
 * await cache.setMany([{ key: 'a', value: 1, ttl: '1m', tags: ['t'] }])
 */
export interface SetManyEntry<T = unknown> extends SetOptions {
  readonly key: string
  readonly value: T
}

/**
 * A low-level look at a cached entry (the response cache uses it for Age and STALE).
 *
 * @example
 * const info = await cache.getEntry('k') // { value, state: 'fresh', tier: 'l1', createdAt, freshUntil }
 */
export interface CacheEntryInfo<T = unknown> {
  readonly value: T
  readonly state: 'fresh' | 'stale'
  readonly tier: 'l1' | 'l2'
  /** Epoch ms when the value was stored. */
  readonly createdAt: number
  /** Epoch ms until which the value is fresh. */
  readonly freshUntil: number
}

/**
 * A snapshot of counters since creation (this namespace, plus shared L2/bus figures).
 *
 * @example
 * const { l1, l2, misses } = cache.stats()
 */
export interface CacheStats {
  readonly namespace: string
  readonly l1: { readonly entries: number; readonly size: number; readonly hits: number }
  readonly l2: { readonly hits: number; readonly requests: number; readonly errors: number; readonly circuit: string; readonly decodeErrors: number }
  readonly misses: number
  readonly stale: number
  readonly loads: number
  readonly loaderErrors: number
  readonly loaderTimeouts: number
  readonly inflight: number
  readonly tags: number
  readonly bus: { readonly connected: boolean; readonly received: number; readonly sent: number; readonly gaps: number; readonly disconnects: number } | undefined
  readonly invalidations: number
  readonly pendingInvalidations: number
}

/**
 * A cache namespace. `createCache` returns the root one; `namespace(name)` children share its
 * connections, bus and tag versions, and have their own L1 and defaults.
 *
 * @example
 * const cache = createCache({ l2: 'redis://127.0.0.1:6379', ttl: '5m', grace: '1h' })
 * const user = await cache.getOrSet(`user:${id}`, () => db.findUser(id), { tags: [`user:${id}`] })
 * await cache.invalidateTags([`user:${id}`])
 */
export interface Cache {
  /** Full namespace name (`''` for the root, `users`, `users:admins` ...). */
  readonly name: string
  readonly events: RiEvents
  /** Default TTL of this namespace, in ms. */
  readonly ttl: number
  /** The fresh value, or undefined. Falls back to L1 (even stale, within grace) when Redis is unreachable. */
  get<T = unknown>(key: string): Promise<T | undefined>
  /** Stores a value in L1 and L2 and tells other instances to drop their L1 copy. */
  set<T>(key: string, value: T, options?: SetOptions): Promise<void>
  /** The cached value, or the loader's (called once per key across concurrent callers). */
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T>
  has(key: string): Promise<boolean>
  delete(key: string): Promise<boolean>
  getMany<T = unknown>(keys: readonly string[]): Promise<Array<T | undefined>>
  setMany<T>(entries: ReadonlyArray<SetManyEntry<T>>): Promise<void>
  deleteMany(keys: readonly string[]): Promise<number>
  /** One batch-loader call with only the keys that missed; one Redis round trip to read, one to write. */
  getOrSetMany<T>(keys: readonly string[], loader: BatchLoader<T>, options?: SetOptions): Promise<Array<T | undefined>>
  /**
   * Invalidates every entry carrying one of `tags`, on every instance: O(number of tags).
   * `expire` (default) keeps the values as stale fallbacks (grace, fail-safe); `delete` drops them.
   */
  invalidateTags(tags: readonly string[], options?: { mode?: 'expire' | 'delete' }): Promise<void>
  /** Clears this namespace (L1 and L2) on every instance; other namespaces are untouched. */
  clear(): Promise<void>
  /** A child namespace sharing connections; options override this namespace's defaults. */
  namespace(name: string, options?: NamespaceOptions): Cache
  /** Fresh or (within grace) stale entry with its timestamps, without loading. */
  getEntry<T = unknown>(key: string): Promise<CacheEntryInfo<T> | undefined>
  stats(): CacheStats
  /** Closes the shared connections (call once, on the root); later calls reject with RiClosedError. */
  close(): Promise<void>
}

/**
 * @internal Synchronous look at L1 for the response cache: the entry when L1 holds it fresh and
 * trusted (counted as an L1 hit), else undefined and nothing counted (then use `getEntry`).
 * A symbol, not a method of `Cache`: no public API, and a cache without it still works.
 */
export const kPeekFresh: unique symbol = Symbol('@ri/cache.peekFresh')
export type PeekFresh = <T>(key: string) => CacheEntryInfo<T> | undefined
