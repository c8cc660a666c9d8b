import { type Episodes, type Logger, RiConfigError, RiTimeoutError, type RiEvents } from '@ri/core'
import { trace, SpanStatusCode, type Tracer } from '@opentelemetry/api'
import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'
import type { RedisLike } from '../options.js'
import type { StoredEntry } from '../serializer.js'
import { createCircuitBreaker, type CircuitBreaker } from './circuit.js'
import { ACQUIRE, DELETE, INVALIDATE, READ, RELEASE, WRITE } from './scripts.js'

/** Returned instead of throwing when Redis failed, timed out or the circuit is open. */
export const FAIL: unique symbol = Symbol('ri.cache.l2.fail')
export type Fail = typeof FAIL

/** A raw read: the stored bytes and the current {v, d} of each of its tags (flat). */
export interface RawRead {
  readonly raw: Buffer
  readonly current: number[]
  /** Already decoded by the reader (fast path), or decoded later. */
  readonly entry?: StoredEntry
  /** `current` is empty: every tag's version is in the in-memory map (bus trusted). */
  readonly fromMap?: boolean
}

export interface WriteCommand {
  readonly key: string
  readonly tagLine: string
  readonly observed: string
  readonly body: string | Buffer
  readonly px: number
  readonly lockKey?: string
  readonly token?: string
  /** Bus message published by the same script ('' or undefined: none). */
  readonly message?: string
}

/**
 * The Redis side of the cache: every call has its own timeout, goes through the circuit
 * breaker, and resolves to `FAIL` rather than throwing.
 */
export interface L2Driver {
  readonly client: RedisLike
  readonly breaker: CircuitBreaker
  /** Requests sent to Redis (one per command, script or pipeline): round trips. */
  readonly requests: () => number
  readonly errors: () => number
  /** Value and its tags' current versions, in one script (atomic). */
  read(key: string): Promise<RawRead | null | Fail>
  /** Plain GET of the stored bytes (tags are then checked against known versions). */
  get(key: string): Promise<Buffer | null | Fail>
  /** Current {v, d} of each tag (flat), one pipelined round trip. */
  versions(tags: readonly string[]): Promise<number[] | Fail>
  readMany(keys: readonly string[]): Promise<Array<RawRead | null> | Fail>
  write(cmd: WriteCommand): Promise<number[] | Fail>
  writeMany(cmds: readonly WriteCommand[]): Promise<Array<number[] | null> | Fail>
  /** Deletes keys and publishes `message` (if any) in the same round trip. */
  del(keys: readonly string[], message?: string): Promise<number | Fail>
  /** Bumps tag versions and publishes `messageHead` + versions (if any) in the same round trip. */
  invalidate(tags: readonly string[], mode: 'e' | 'd', messageHead?: string): Promise<number[] | Fail>
  acquire(lockKey: string, valueKey: string, token: string, lease: number): Promise<{ acquired: true; read: RawRead | null } | { acquired: false } | Fail>
  release(lockKey: string, token: string): Promise<unknown>
  /** Runs `fn` with the client when the circuit allows (health checks, tests). */
  close(): Promise<void>
}

interface ScriptClient {
  riCacheReadBuffer(key: string, tagPrefix: string): Promise<[Buffer, ...number[]] | null>
  riCacheWrite(key: string, lockKey: string, tagPrefix: string, px: number, tagLine: string, observed: string, body: string | Buffer, token: string, channel: string, message: string): Promise<number[]>
  riCacheInvalidate(tagPrefix: string, mode: string, channel: string, head: string, ...tags: string[]): Promise<number[]>
  riCacheDelete(...args: string[]): Promise<number>
  riCacheAcquireBuffer(lockKey: string, valueKey: string, token: string, lease: number, tagPrefix: string): Promise<[number, ...Array<Buffer | number>]>
  riCacheRelease(lockKey: string, token: string): Promise<number>
}

const SCRIPTED = new WeakSet<object>()
const SPAN_NAMES: Record<string, string> = Object.create(null)

function defineScripts(client: RedisLike): void {
  if (SCRIPTED.has(client)) return
  SCRIPTED.add(client)
  client.defineCommand('riCacheRead', { numberOfKeys: 1, lua: READ })
  client.defineCommand('riCacheWrite', { numberOfKeys: 2, lua: WRITE })
  client.defineCommand('riCacheInvalidate', { numberOfKeys: 0, lua: INVALIDATE })
  client.defineCommand('riCacheAcquire', { numberOfKeys: 2, lua: ACQUIRE })
  client.defineCommand('riCacheRelease', { numberOfKeys: 1, lua: RELEASE })
  client.defineCommand('riCacheDelete', { lua: DELETE })
}

/** Options for a client the cache creates from a URL (it then owns and closes it). */
export const OWNED_CLIENT_OPTIONS = Object.freeze({
  enableAutoPipelining: true,
  // Commands fail at once while disconnected instead of queueing: our own timeouts and the
  // circuit breaker decide, and no write is replayed late after a reconnect.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
})

/**
 * ioredis is an optional peer: an L1-only cache must load without it, so it is required only
 * when a URL asks the cache to create its own client.
 */
function loadIoredis(): typeof import('ioredis') {
  const load = createRequire(import.meta.url)
  try {
    return load('ioredis') as typeof import('ioredis')
  } catch {
    throw new RiConfigError({
      option: 'createCache.l2',
      received: 'a Redis URL',
      accepted: 'an ioredis client or URL with the ioredis package installed (npm install ioredis)',
    })
  }
}

export function createRedisClient(url: string): Redis {
  const { Redis: RedisClient } = loadIoredis()
  const client = new RedisClient(url, OWNED_CLIENT_OPTIONS)
  // Connection errors are reported through the circuit breaker; without a listener ioredis
  // would print each one.
  client.on('error', () => {})
  return client
}

export function createL2Driver(options: {
  client: RedisLike | string
  timeout: number
  circuitFailures: number
  circuitCooldown: number
  tagPrefix: string
  /** Bus channel ('' when there is no bus). */
  channel: string
  namespace: string
  events: RiEvents
  logger: Logger
  episodes: Episodes
  onRecover?: () => void
}): L2Driver {
  const owned = typeof options.client === 'string'
  const client: RedisLike = typeof options.client === 'string' ? createRedisClient(options.client) : options.client
  defineScripts(client)
  const s = client as unknown as ScriptClient
  const { timeout, tagPrefix, events, namespace, channel } = options
  const breaker = createCircuitBreaker({
    failures: options.circuitFailures,
    cooldown: options.circuitCooldown,
    events,
    episodes: options.episodes,
    onClose: options.onRecover,
  })
  const tracer: Tracer = trace.getTracer('@ri/cache')
  let requests = 0
  let errors = 0

  const failed = (operation: string, error: unknown) => {
    errors++
    breaker.failure(error, operation)
    if (events.has('cache.l2.error')) events.emit('cache.l2.error', { namespace, operation, error })
  }

  // Our own client fails commands at once while disconnected (no offline queue); until its
  // first connection is up, requests wait for it (within their timeout) instead of failing.
  let ready = !owned || client.status === 'ready'
  let firstReady: Promise<void> | undefined
  if (!ready) {
    firstReady = new Promise<void>((resolve) => {
      client.once('ready', () => {
        ready = true
        firstReady = undefined
        resolve()
      })
    })
  }

  // Deadlines of in-flight requests, checked by one unref'd timer instead of a setTimeout per
  // command (a Timeout per Redis call showed up in profiles of the L2 hit path).
  interface Pending {
    settled: boolean
    readonly deadline: number
    readonly expire: () => void
  }
  // A Set, not an array swept later: a settled request must be garbage at once, or every reply
  // it references survives young-generation GC (measured: a third of the L2 hit cost).
  const pending = new Set<Pending>()
  let sweeper: NodeJS.Timeout | undefined
  const tick = Math.max(5, Math.min(50, Math.floor(timeout / 4)))
  const sweep = () => {
    const now = performance.now()
    for (const p of pending) if (p.deadline <= now) p.expire()
    if (pending.size === 0 && sweeper !== undefined) {
      clearInterval(sweeper)
      sweeper = undefined
    }
  }

  /** One Redis request with a timeout; never rejects. `map` shapes the reply (no extra promise hop). */
  const run = <R, T = R>(operation: string, fn: () => Promise<R>, map?: (reply: R) => T): Promise<T | Fail> => {
    if (!breaker.allow()) return Promise.resolve(FAIL)
    if (!ready && firstReady !== undefined) {
      const waitFor = firstReady
      const inner = fn
      fn = () => waitFor.then(inner)
    }
    requests++
    const span = tracer.startSpan((SPAN_NAMES[operation] ??= `cache.l2.${operation}`))
    return new Promise<T | Fail>((resolve) => {
      const rec: Pending = {
        settled: false,
        // Checked at the sweeper's resolution: a request may live up to one tick past its budget.
        deadline: performance.now() + timeout,
        expire: () => {
          rec.settled = true
          pending.delete(rec)
          failed(operation, new RiTimeoutError(`Redis ${operation}`, timeout))
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'timeout' })
          span.end()
          resolve(FAIL)
        },
      }
      pending.add(rec)
      if (sweeper === undefined) {
        sweeper = setInterval(sweep, tick)
        sweeper.unref()
      }
      let p: Promise<R>
      try {
        p = fn()
      } catch (error) {
        p = Promise.reject(error)
      }
      p.then(
        (value) => {
          if (rec.settled) return
          rec.settled = true
          pending.delete(rec)
          breaker.success()
          span.end()
          let out: T
          try {
            out = map === undefined ? (value as unknown as T) : map(value)
          } catch (error) {
            failed(operation, error)
            resolve(FAIL)
            return
          }
          resolve(out)
        },
        (error: unknown) => {
          if (rec.settled) return
          rec.settled = true
          pending.delete(rec)
          failed(operation, error)
          span.setStatus({ code: SpanStatusCode.ERROR, message: String((error as Error)?.message ?? error) })
          span.end()
          resolve(FAIL)
        },
      )
    })
  }

  const toRead = (reply: ReadonlyArray<Buffer | number> | null, from: number): RawRead | null => {
    if (reply === null || reply.length <= from) return null
    const raw = reply[from]
    if (!Buffer.isBuffer(raw)) return null
    const current: number[] = []
    for (let i = from + 1; i < reply.length; i++) current.push(Number(reply[i]))
    return { raw, current }
  }

  const execPipeline = async (build: (p: ReturnType<RedisLike['pipeline']>) => void): Promise<Array<[Error | null, unknown]>> => {
    const p = client.pipeline()
    build(p)
    const results = await p.exec()
    return (results ?? []) as Array<[Error | null, unknown]>
  }

  return {
    client,
    breaker,
    requests: () => requests,
    errors: () => errors,
    read: (key) => run('get', () => s.riCacheReadBuffer(key, tagPrefix), (r) => toRead(r, 0)),
    get: (key) => run('get', () => client.getBuffer(key)),
    versions: (tags) =>
      run(
        'tags',
        () =>
          execPipeline((p) => {
            for (const t of tags) p.hmget(`${tagPrefix}${t}}`, 'v', 'd')
          }),
        (results) => {
          const out: number[] = []
          for (const [err, r] of results) {
            if (err) throw err
            const pair = r as Array<string | null>
            out.push(Number(pair[0] ?? 0) || 0, Number(pair[1] ?? 0) || 0)
          }
          return out
        },
      ),
    readMany: (keys) =>
      run('getMany', () =>
        execPipeline((p) => {
          for (const k of keys) (p as unknown as ScriptClient).riCacheReadBuffer(k, tagPrefix)
        }).then((results) =>
          results.map(([err, r]) => {
            if (err) throw err
            return toRead(r as Array<Buffer | number> | null, 0)
          }),
        ),
      ),
    write: (c) => run('set', () => s.riCacheWrite(c.key, c.lockKey ?? c.key, tagPrefix, c.px, c.tagLine, c.observed, c.body, c.token ?? '', channel, c.message ?? '')),
    writeMany: (cmds) =>
      run('setMany', () =>
        execPipeline((p) => {
          for (const c of cmds) (p as unknown as ScriptClient).riCacheWrite(c.key, c.lockKey ?? c.key, tagPrefix, c.px, c.tagLine, c.observed, c.body, c.token ?? '', channel, c.message ?? '')
        }).then((results) => results.map(([err, r]) => (err ? null : (r as number[])))),
      ),
    // ioredis' numberOfKeys-less command takes the key count first.
    del: (keys, message) =>
      run('delete', () => (keys.length === 0 ? Promise.resolve(0) : s.riCacheDelete(String(keys.length), ...keys, channel, message ?? ''))),
    invalidate: (tags, mode, head) => run('invalidate', () => s.riCacheInvalidate(tagPrefix, mode, channel, head ?? '', ...tags)),
    acquire: (lockKey, valueKey, token, lease) =>
      run('lock', () =>
        s.riCacheAcquireBuffer(lockKey, valueKey, token, lease, tagPrefix).then((r) =>
          Number(r[0]) === 1 ? { acquired: true as const, read: toRead(r as Array<Buffer | number>, 1) } : { acquired: false as const },
        ),
      ),
    release: (lockKey, token) => run('unlock', () => s.riCacheRelease(lockKey, token)),
    async close() {
      if (owned) {
        try {
          await client.quit()
        } catch {
          client.disconnect()
        }
      }
    },
  }
}
