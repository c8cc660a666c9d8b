import {
  createEvents,
  createOptionsChecker,
  type Duration,
  type Logger,
  noopLogger,
  type RiEvents,
  type OptionsChecker,
} from '@ri/core'
import type { Cluster, Redis } from 'ioredis'
import { type Codec, jsonCodec } from './serializer.js'

/**
 * An ioredis client users bring: a `Redis` or `Cluster` instance.
 *
 * @example
 * const redis: RedisLike = new Redis(process.env.REDIS_URL)
 * createCache({ l2: redis })
 */
export type RedisLike = Redis | Cluster

/**
 * L1 (in-process, lru-cache) options. Bounds apply per namespace.
 *
 * @example
 * createCache({ l1: { max: 50_000, maxSize: 64 * 1024 * 1024, sizeCalculation: (v) => JSON.stringify(v).length } })
 */
export interface L1Options {
  /** Maximum number of entries per namespace. Default 10 000. */
  max?: number
  /** Optional byte budget per namespace (with `sizeCalculation`, or an estimate of the value). */
  maxSize?: number
  /** Size of one value, in the unit of `maxSize`. Default: an estimate of its JSON size. */
  sizeCalculation?: (value: unknown, key: string) => number
  /** Tag versions kept in memory (shared by every namespace). Default 100 000. */
  maxTags?: number
}

/**
 * L2 (Redis) options.
 *
 * @example
 * createCache({ l2: { client: 'redis://127.0.0.1:6379', circuitBreaker: { failures: 3, cooldown: '10s' } } })
 */
export interface L2Options {
  /** An ioredis `Redis`/`Cluster` instance, or a `redis://` URL (the cache then owns the client). */
  client: RedisLike | string
  /** Consecutive failures that open the circuit (L2 is skipped). Default 5; `false` disables. */
  circuitBreaker?: false | { failures?: number; cooldown?: Duration }
}

/**
 * Loader and Redis time budgets.
 *
 * @example
 * createCache({ grace: '1h', timeouts: { soft: '100ms', hard: '5s', l2: '250ms' } })
 */
export interface TimeoutOptions {
  /** After this, serve the stale value (if any) and let the loader finish in the background. */
  soft?: Duration
  /** After this, give up: stale value if any, else `CacheLoaderTimeoutError`. */
  hard?: Duration
  /** Budget of every Redis command. Default 500 ms. */
  l2?: Duration
}

/**
 * Options of `createCache`. Every duration accepts milliseconds or strings such as `'5m'`.
 *
 * @example
 * const options: CacheOptions = { l2: process.env.REDIS_URL, ttl: '5m', grace: '1h', lock: true }
 */
export interface CacheOptions {
  /** Name of the root namespace. Default `''`. */
  namespace?: string
  /** Prefix of every Redis key and of the bus channel. Default `'ri:'`. */
  prefix?: string
  /** L1 options, or `false` to turn L1 off. Default on (10 000 entries). */
  l1?: false | L1Options
  /** L2: an ioredis instance, a URL, `{ client, circuitBreaker }`, or `false` (default). */
  l2?: false | RedisLike | string | L2Options
  /** Cross-instance L1 invalidation over Redis pub/sub. Default on when L2 is set. */
  bus?: boolean | { channel?: string }
  /** Time an entry is fresh. Default `'5m'`. */
  ttl?: Duration
  /** Time an expired entry is kept as a fallback (fail-safe, stale-while-revalidate). Default 0 (off). */
  grace?: Duration
  /** After a failed refresh, how long a stale value is served before the loader is retried. Default `'5s'`. */
  graceBackoff?: Duration
  /** TTL of cached `null`/`undefined` loader results; 0 does not cache them. Default `'30s'`. */
  negativeTtl?: Duration
  /** Random fraction (0..1) taken off each TTL so keys written together do not expire together. Default 0. */
  jitter?: number
  /** Refresh in the background once this fraction (0..1) of the TTL has elapsed. Default off. */
  eagerRefresh?: number | false
  /** Serve a stale value at once and refresh in the background. Default false. */
  staleWhileRevalidate?: boolean
  timeouts?: TimeoutOptions
  /** Codec for values stored in Redis. Default JSON (prototype-safe). */
  serializer?: Codec
  /** Compress encoded values larger than `threshold` bytes (gzip). Default off. */
  compression?: false | { threshold?: number }
  /** Distributed single-flight over a Redis lease lock. Default off. */
  lock?: boolean | { lease?: Duration; wait?: Duration }
  logger?: Logger
  events?: RiEvents
}

/**
 * Options of one `set` call; they override the namespace's.
 *
 * @example
 * await cache.set('user:1', user, { ttl: '10m', tags: ['user:1'] })
 */
export interface SetOptions {
  ttl?: Duration
  tags?: readonly string[]
  grace?: Duration
}

/**
 * Options of one `getOrSet` call; they override the namespace's.
 *
 * @example
 * await cache.getOrSet('k', load, { ttl: '1m', grace: '1h', staleWhileRevalidate: true, timeouts: { hard: '2s' }, lock: false })
 */
export interface GetOrSetOptions extends SetOptions {
  staleWhileRevalidate?: boolean
  timeouts?: { soft?: Duration; hard?: Duration }
  /** Per-call override of the distributed lock. */
  lock?: boolean
}

/**
 * The defaults, in one place (durations in ms).
 *
 * @example
 * DEFAULTS.ttl // 300000
 */
export const DEFAULTS = Object.freeze({
  namespace: '',
  prefix: 'ri:',
  l1Max: 10_000,
  maxTags: 100_000,
  ttl: 5 * 60_000,
  grace: 0,
  graceBackoff: 5_000,
  negativeTtl: 30_000,
  jitter: 0,
  eagerRefresh: 0,
  staleWhileRevalidate: false,
  l2Timeout: 500,
  circuitFailures: 5,
  circuitCooldown: 5_000,
  lockLease: 10_000,
  lockWait: 5_000,
  compressionThreshold: 4096,
})

/** Normalised, validated configuration shared by the stack. */
export interface ResolvedConfig {
  readonly namespace: string
  readonly prefix: string
  readonly l1: false | { max: number; maxSize: number | undefined; sizeCalculation: ((value: unknown, key: string) => number) | undefined }
  readonly maxTags: number
  readonly l2: undefined | { client: RedisLike | string; circuitFailures: number; circuitCooldown: number }
  readonly bus: false | { channel: string }
  readonly defaults: NamespaceDefaults
  readonly l2Timeout: number
  readonly codec: Codec
  readonly compressionThreshold: number
  readonly lock: false | { lease: number; wait: number }
  readonly logger: Logger
  readonly events: RiEvents
}

/** Per-namespace defaults of the call options (ms). */
export interface NamespaceDefaults {
  readonly ttl: number
  readonly grace: number
  readonly graceBackoff: number
  readonly negativeTtl: number
  readonly jitter: number
  readonly eagerRefresh: number
  readonly staleWhileRevalidate: boolean
  readonly soft: number | undefined
  readonly hard: number | undefined
}

const TOP = [
  'namespace', 'prefix', 'l1', 'l2', 'bus', 'ttl', 'grace', 'graceBackoff', 'negativeTtl', 'jitter', 'eagerRefresh',
  'staleWhileRevalidate', 'timeouts', 'serializer', 'compression', 'lock', 'logger', 'events',
] as const
const NAMESPACE_KEYS = ['ttl', 'grace', 'graceBackoff', 'negativeTtl', 'jitter', 'eagerRefresh', 'staleWhileRevalidate', 'timeouts'] as const
/**
 * Options a child namespace may override.
 *
 * @example
 * cache.namespace('sessions', { ttl: '30m', staleWhileRevalidate: false })
 */
export type NamespaceOptions = Pick<CacheOptions, (typeof NAMESPACE_KEYS)[number]>

const NAME = /^[A-Za-z0-9_.:-]{0,64}$/

export function isRedisLike(value: unknown): value is RedisLike {
  return (
    typeof value === 'object' && value !== null && typeof (value as { defineCommand?: unknown }).defineCommand === 'function' &&
    typeof (value as { duplicate?: unknown }).duplicate === 'function'
  )
}

export function resolveConfig(input: CacheOptions = {}): ResolvedConfig {
  const check = createOptionsChecker('createCache')
  check.known(input, TOP)
  const namespace = check.string('namespace', input.namespace, DEFAULTS.namespace, NAME, 'up to 64 letters, digits, _ . : -')
  const prefix = check.string('prefix', input.prefix, DEFAULTS.prefix, /^[^\s{}]{0,64}$/, 'up to 64 characters without spaces or braces')

  let l1: ResolvedConfig['l1'] = { max: DEFAULTS.l1Max, maxSize: undefined, sizeCalculation: undefined }
  let maxTags: number = DEFAULTS.maxTags
  if (input.l1 === false) l1 = false
  else if (input.l1 !== undefined) {
    check.known(input.l1, ['max', 'maxSize', 'sizeCalculation', 'maxTags'], 'l1')
    l1 = {
      max: check.integer('l1.max', input.l1.max, DEFAULTS.l1Max, { min: 1 }),
      maxSize: input.l1.maxSize === undefined ? undefined : check.integer('l1.maxSize', input.l1.maxSize, 1, { min: 1 }),
      sizeCalculation: check.fn('l1.sizeCalculation', input.l1.sizeCalculation),
    }
    maxTags = check.integer('l1.maxTags', input.l1.maxTags, DEFAULTS.maxTags, { min: 1 })
  }

  let l2: ResolvedConfig['l2']
  const rawL2 = input.l2
  if (rawL2 === undefined || rawL2 === false) l2 = undefined
  else if (typeof rawL2 === 'string') l2 = { client: checkUrl(check, 'l2', rawL2), circuitFailures: DEFAULTS.circuitFailures, circuitCooldown: DEFAULTS.circuitCooldown }
  else if (isRedisLike(rawL2)) l2 = { client: rawL2, circuitFailures: DEFAULTS.circuitFailures, circuitCooldown: DEFAULTS.circuitCooldown }
  else if (typeof rawL2 === 'object' && rawL2 !== null) {
    check.known(rawL2, ['client', 'circuitBreaker'], 'l2')
    const o = rawL2 as L2Options
    let client: RedisLike | string = ''
    if (typeof o.client === 'string') client = checkUrl(check, 'l2.client', o.client)
    else if (isRedisLike(o.client)) client = o.client
    else check.problem('l2.client', o.client, 'an ioredis Redis/Cluster instance or a redis:// URL')
    let circuitFailures: number = DEFAULTS.circuitFailures
    let circuitCooldown: number = DEFAULTS.circuitCooldown
    if (o.circuitBreaker === false) circuitFailures = Number.POSITIVE_INFINITY
    else if (o.circuitBreaker !== undefined) {
      check.known(o.circuitBreaker, ['failures', 'cooldown'], 'l2.circuitBreaker')
      circuitFailures = check.integer('l2.circuitBreaker.failures', o.circuitBreaker.failures, DEFAULTS.circuitFailures, { min: 1 })
      circuitCooldown = check.duration('l2.circuitBreaker.cooldown', o.circuitBreaker.cooldown, DEFAULTS.circuitCooldown)
    }
    l2 = { client, circuitFailures, circuitCooldown }
  } else check.problem('l2', rawL2, 'false, an ioredis Redis/Cluster instance, a redis:// URL, or { client, circuitBreaker }')

  let bus: ResolvedConfig['bus'] = false
  if (input.bus === undefined || input.bus === true) bus = l2 ? { channel: `${prefix}bus` } : false
  else if (input.bus === false) bus = false
  else if (typeof input.bus === 'object' && input.bus !== null) {
    check.known(input.bus, ['channel'], 'bus')
    bus = l2 ? { channel: check.string('bus.channel', input.bus.channel, `${prefix}bus`, /^\S{1,128}$/, 'a channel name') } : false
  } else check.problem('bus', input.bus, 'true, false or { channel }')
  if (input.bus && !l2 && input.bus !== undefined) check.problem('bus', input.bus, 'false when no l2 is configured (the bus runs over Redis pub/sub)')

  const defaults = resolveNamespaceDefaults(check, input, undefined)
  let l2Timeout: number = DEFAULTS.l2Timeout
  if (input.timeouts && typeof input.timeouts === 'object') l2Timeout = check.duration('timeouts.l2', input.timeouts.l2, DEFAULTS.l2Timeout)
  if (l2Timeout <= 0) check.problem('timeouts.l2', input.timeouts?.l2, 'a duration above 0')

  let codec: Codec = jsonCodec
  if (input.serializer !== undefined) {
    const s = input.serializer as Partial<Codec>
    if (typeof s !== 'object' || s === null || typeof s.encode !== 'function' || typeof s.decode !== 'function' || typeof s.id !== 'string' || !/^[a-z0-9-]{1,16}$/.test(s.id)) {
      check.problem('serializer', input.serializer, "a codec { id: 'a-z0-9-' (1-16 chars, goes into the key prefix), encode(value), decode(bytes) }")
    } else codec = s as Codec
  }

  let compressionThreshold = Number.POSITIVE_INFINITY
  if (input.compression !== undefined && input.compression !== false) {
    check.known(input.compression, ['threshold'], 'compression')
    compressionThreshold = check.integer('compression.threshold', (input.compression as { threshold?: number }).threshold, DEFAULTS.compressionThreshold, { min: 0 })
  }

  let lock: ResolvedConfig['lock'] = false
  if (input.lock === true) lock = { lease: DEFAULTS.lockLease, wait: DEFAULTS.lockWait }
  else if (typeof input.lock === 'object' && input.lock !== null) {
    check.known(input.lock, ['lease', 'wait'], 'lock')
    lock = { lease: check.duration('lock.lease', input.lock.lease, DEFAULTS.lockLease), wait: check.duration('lock.wait', input.lock.wait, DEFAULTS.lockWait) }
  } else if (input.lock !== undefined && input.lock !== false) check.problem('lock', input.lock, 'true, false or { lease, wait }')
  if (lock && !l2) check.problem('lock', input.lock, 'false when no l2 is configured (the lock lives in Redis)')

  if (input.logger !== undefined && (typeof input.logger !== 'object' || typeof (input.logger as Logger).warn !== 'function')) {
    check.problem('logger', input.logger, 'a pino-compatible logger')
  }
  if (input.events !== undefined && (typeof input.events !== 'object' || typeof (input.events as RiEvents).emit !== 'function')) {
    check.problem('events', input.events, 'an RiEvents from createEvents()')
  }
  check.done()
  return Object.freeze({
    namespace,
    prefix,
    l1,
    maxTags,
    l2,
    bus,
    defaults,
    l2Timeout,
    codec,
    compressionThreshold,
    lock,
    logger: input.logger ?? noopLogger,
    events: input.events ?? createEvents(),
  })
}

/** Validates the per-namespace options, layered on `parent` (or the package DEFAULTS). */
export function resolveNamespaceDefaults(check: OptionsChecker, input: NamespaceOptions, parent: NamespaceDefaults | undefined): NamespaceDefaults {
  const base: NamespaceDefaults = parent ?? {
    ttl: DEFAULTS.ttl,
    grace: DEFAULTS.grace,
    graceBackoff: DEFAULTS.graceBackoff,
    negativeTtl: DEFAULTS.negativeTtl,
    jitter: DEFAULTS.jitter,
    eagerRefresh: DEFAULTS.eagerRefresh,
    staleWhileRevalidate: DEFAULTS.staleWhileRevalidate,
    soft: undefined,
    hard: undefined,
  }
  const ttl = check.duration('ttl', input.ttl, base.ttl)
  if (ttl <= 0) check.problem('ttl', input.ttl, 'a duration above 0')
  let soft = base.soft
  let hard = base.hard
  if (input.timeouts !== undefined) {
    if (typeof input.timeouts !== 'object' || input.timeouts === null) check.problem('timeouts', input.timeouts, 'an object { soft, hard, l2 }')
    else {
      check.known(input.timeouts, ['soft', 'hard', 'l2'], 'timeouts')
      soft = check.duration('timeouts.soft', input.timeouts.soft, soft as number)
      hard = check.duration('timeouts.hard', input.timeouts.hard, hard as number)
    }
  }
  const eager = input.eagerRefresh === false ? 0 : check.number('eagerRefresh', input.eagerRefresh, base.eagerRefresh, { min: 0, max: 1 })
  return Object.freeze({
    ttl,
    grace: check.duration('grace', input.grace, base.grace),
    graceBackoff: check.duration('graceBackoff', input.graceBackoff, base.graceBackoff),
    negativeTtl: check.duration('negativeTtl', input.negativeTtl, base.negativeTtl),
    jitter: check.number('jitter', input.jitter, base.jitter, { min: 0, max: 1 }),
    eagerRefresh: eager,
    staleWhileRevalidate: check.boolean('staleWhileRevalidate', input.staleWhileRevalidate, base.staleWhileRevalidate),
    soft,
    hard,
  })
}

export function checkNamespaceOptions(name: string, input: NamespaceOptions | undefined, parent: NamespaceDefaults): NamespaceDefaults {
  const check = createOptionsChecker('cache.namespace')
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) check.problem('name', name, 'up to 64 letters, digits, _ . -')
  check.known(input, NAMESPACE_KEYS)
  const out = resolveNamespaceDefaults(check, input ?? {}, parent)
  check.done()
  return out
}

function checkUrl(check: OptionsChecker, option: string, url: string): string {
  if (!/^rediss?:\/\//.test(url)) check.problem(option, url, 'a redis:// or rediss:// URL')
  return url
}
