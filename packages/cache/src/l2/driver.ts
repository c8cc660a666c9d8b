import { createDeadlineList, type DeadlineEntry, type Episodes, type Logger, promiseInto, RiConfigError, RiTimeoutError, type RiEvents } from '@ri/core'
import { ProxyTracerProvider, type Span, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api'
import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'
import type { RedisLike } from '../options.js'
import type { StoredEntry } from '../serializer.js'
import { createCircuitBreaker, type CircuitBreaker } from './circuit.js'
import { ACQUIRE, ACQUIRE_LOCAL, BUMP, DELETE, ENSURE, INVALIDATE, READ, RELEASE, SET_LOCAL, WRITE } from './scripts.js'
import { keySlot } from './slot.js'

/** Returned instead of throwing when Redis failed, timed out or the circuit is open. */
export const FAIL: unique symbol = Symbol('ri.cache.l2.fail')
export type Fail = typeof FAIL

/**
 * A raw read: the stored bytes and the current {v, d} of each of its tags (flat). A tag whose
 * record is missing in Redis reads as v = 0 (see scripts.ts): the entry is then deleted.
 */
export interface RawRead {
  readonly raw: Buffer | string
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
  /** The client is an ioredis `Cluster`: multi-key work is split per hash slot. */
  readonly cluster: boolean
  /** Requests sent to Redis (one per command, script or pipeline): round trips. */
  readonly requests: () => number
  readonly errors: () => number
  /** Value and its tags' current versions, in one script (atomic). */
  read(key: string): Promise<RawRead | null | Fail>
  /** Plain GET of the stored bytes (tags are then checked against known versions). */
  get(key: string): Promise<Buffer | null | Fail>
  /**
   * GET whose reply (or FAIL) is handed to `then`, with `ctx`, inside the request's own promise:
   * the L2 hit path's caller needs no promise and no closure of its own. A throw from `then`
   * rejects the returned promise. With `text`, the reply is read as a UTF-8 string (for payloads
   * known to be text: no Buffer, whose resolution costs a thenable lookup down its prototype chain).
   */
  getThen<C, T>(key: string, then: (raw: Buffer | string | null | Fail, ctx: C) => T | PromiseLike<T>, ctx: C, text?: boolean): Promise<T>
  /** Current {v, d} of each tag (flat; 0, 0 for a missing record), one pipelined round trip. */
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
  riCacheBump(tagKey: string, mode: string): Promise<[number, number]>
  riCacheEnsure(tagKey: string): Promise<[number, number]>
  riCacheSetLocal(key: string, lockKey: string, px: number, body: string | Buffer, token: string, channel: string, message: string): Promise<number>
  riCacheAcquireLocalBuffer(lockKey: string, valueKey: string, token: string, lease: number): Promise<[number, (Buffer | number)?]>
}

const SCRIPTED = new WeakSet<object>()
/** Pending's `onFail` that means "call `map` with FAIL" (no closure per request for it). */
const MAP_FAIL: unique symbol = Symbol('ri.cache.l2.mapFail')
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate()

/**
 * True when a tracer provider other than the API's no-op default is registered (a provider
 * from another copy of the API counts as real: spans are then kept).
 */
function tracingOn(): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_TRACER_PROVIDER
}
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
  client.defineCommand('riCacheBump', { numberOfKeys: 1, lua: BUMP })
  client.defineCommand('riCacheEnsure', { numberOfKeys: 1, lua: ENSURE })
  client.defineCommand('riCacheSetLocal', { numberOfKeys: 2, lua: SET_LOCAL })
  client.defineCommand('riCacheAcquireLocal', { numberOfKeys: 2, lua: ACQUIRE_LOCAL })
}

/** Tags named on the first line of stored bytes (what the READ script parses in Lua). */
export function tagsOf(raw: Buffer): string[] {
  const nl = raw.indexOf(0x0a)
  if (nl <= 0) return []
  return raw.toString('utf8', 0, nl).split('\x1f').filter((t) => t.length > 0)
}

/** Stored versions: the observed one unless an invalidation is newer (then the current one). */
function storedVersions(observed: string, current: readonly number[], n: number): string {
  const obs = observed.split(',')
  let out = ''
  for (let i = 0; i < n; i++) {
    const o = obs[i] === undefined || obs[i] === '' ? -1 : Number(obs[i])
    const v = current[2 * i] ?? 0
    out += (i === 0 ? '' : ',') + String(o >= 0 && o < v ? o : v)
  }
  return out
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

  // Spans only while an OpenTelemetry SDK is registered: with the API's no-op default every
  // request would still build a span object and look up the active context. Re-checked when the
  // sweeper starts and on each of its ticks, so a provider registered later is seen within one
  // tick of traffic.
  let tracing = tracingOn()

  // Deadlines of in-flight requests, checked by one unref'd timer instead of a setTimeout per
  // command (a Timeout per Redis call showed up in profiles of the L2 hit path): @ri/core's
  // deadline list, which also re-checks `tracing` on each tick. One object per request holds
  // everything the outcome needs: its methods live on the prototype, so a request allocates this
  // record, its promise and the two reply callbacks, nothing else.
  const inflight = createDeadlineList(timeout, () => {
    tracing = tracingOn()
  })
  class Pending<R, T> implements DeadlineEntry {
    deadline = 0
    prev: DeadlineEntry | undefined = undefined
    next: DeadlineEntry | undefined = undefined
    out!: Promise<T | Fail>
    resolve: ((value: T | Fail | PromiseLike<T | Fail>) => void) | undefined = undefined
    reject: ((error: unknown) => void) | undefined = undefined
    constructor(
      readonly operation: string,
      readonly span: Span | undefined,
      readonly map: ((reply: R, ctx: unknown) => T) | undefined,
      /** What a failure resolves to: FAIL, `onFail()`, or (MAP_FAIL) `map(FAIL, ctx)`. */
      readonly onFail: (() => T) | typeof MAP_FAIL | undefined,
      /** Passed to `map`: the caller's per-request state, so `map` can be shared. */
      readonly ctx: unknown,
    ) {}
    /** Already out of the list (it expired, or the reply failed). */
    fail(error: unknown, message: string): void {
      failed(this.operation, error)
      if (this.span !== undefined) {
        this.span.setStatus({ code: SpanStatusCode.ERROR, message })
        this.span.end()
      }
      this.settleFail()
    }
    /** FAIL, or what `onFail` makes of it (an exception there, e.g. from a listener, rejects). */
    settleFail(): void {
      const onFail = this.onFail
      if (onFail === undefined) this.resolve!(FAIL)
      else
        try {
          this.resolve!(onFail === MAP_FAIL ? (this.map as unknown as (reply: Fail, ctx: unknown) => T)(FAIL, this.ctx) : onFail())
        } catch (error) {
          this.reject!(error)
        }
    }
    expire(): void {
      this.fail(new RiTimeoutError(`Redis ${this.operation}`, timeout), 'timeout')
    }
    ok(value: R): void {
      if (!inflight.remove(this)) return
      breaker.success()
      if (this.span !== undefined) this.span.end()
      let out: T
      try {
        out = this.map === undefined ? (value as unknown as T) : this.map(value, this.ctx)
      } catch (error) {
        // With `onFail` the caller's own continuation threw (not Redis): its promise rejects,
        // as an async function's would, and the breaker does not count it.
        if (this.onFail !== undefined) this.reject!(error)
        else {
          failed(this.operation, error)
          this.resolve!(FAIL)
        }
        return
      }
      this.resolve!(out)
    }
    err(error: unknown): void {
      if (!inflight.remove(this)) return
      this.fail(error, String((error as Error)?.message ?? error))
    }
  }

  /**
   * Starts tracking one request (its deadline, span, promise `out`); undefined when the circuit
   * is open. The caller sends the command and hands its promise to `settleWith`.
   */
  const begin = <R, T>(operation: string, map: ((reply: R, ctx: unknown) => T) | undefined, onFail: (() => T) | typeof MAP_FAIL | undefined, ctx?: unknown): Pending<R, T> | undefined => {
    if (!breaker.allow()) return undefined
    requests++
    // The first request after a quiet spell sees a tracer provider registered meanwhile.
    if (inflight.idle) tracing = tracingOn()
    const rec = new Pending<R, T>(operation, tracing ? tracer.startSpan((SPAN_NAMES[operation] ??= `cache.l2.${operation}`)) : undefined, map, onFail, ctx)
    rec.out = promiseInto<T | Fail>(rec)
    inflight.add(rec)
    return rec
  }
  const settleWith = <R, T>(rec: Pending<R, T>, p: Promise<R>): void => {
    p.then(
      (value) => rec.ok(value),
      (error: unknown) => rec.err(error),
    )
  }
  /** What a request refused by the open circuit resolves to, as a promise. */
  const refused = <T>(onFail: (() => T) | undefined): Promise<T | Fail> => {
    if (onFail === undefined) return Promise.resolve(FAIL)
    try {
      return Promise.resolve(onFail())
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * One Redis request with a timeout; never rejects. `map` shapes the reply and `onFail` the
   * failure (FAIL when absent), both inside the request's own promise: no extra promise hop.
   */
  const run = <R, T = R>(operation: string, fn: () => Promise<R>, map?: (reply: R) => T, onFail?: () => T): Promise<T | Fail> => {
    const rec = begin<R, T>(operation, map, onFail)
    if (rec === undefined) return refused(onFail)
    if (!ready && firstReady !== undefined) {
      const waitFor = firstReady
      const inner = fn
      fn = () => waitFor.then(inner)
    }
    let p: Promise<R>
    try {
      p = fn()
    } catch (error) {
      p = Promise.reject(error)
    }
    settleWith(rec, p)
    return rec.out
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

  // ---- Cluster -------------------------------------------------------------------------------
  // A Lua script may only touch keys of one slot, and a pipeline only slots served by one node.
  // So on a Cluster every command names keys of a single slot, commands are grouped into one
  // pipeline per node (all sent at once: one round trip of latency), and a bus message is
  // published only after every group has answered (a receiver must not re-read old bytes that a
  // slower node has not deleted/overwritten yet).
  const cluster = (client as { isCluster?: boolean }).isCluster === true
  const slotsOf = client as unknown as { slots?: ReadonlyArray<readonly string[] | undefined> }
  type Step = { readonly key: string; readonly add: (p: ReturnType<RedisLike['pipeline']>) => void }
  /** Runs each step (one command) grouped per node; replies in step order; throws on any error. */
  const perSlot = async (steps: readonly Step[], after?: (p: ReturnType<RedisLike['pipeline']>) => void): Promise<unknown[]> => {
    const groups = new Map<string, number[]>()
    for (let i = 0; i < steps.length; i++) {
      const slot = keySlot(steps[i]!.key)
      const id = slotsOf.slots?.[slot]?.join(';') ?? `s${slot}`
      let g = groups.get(id)
      if (g === undefined) groups.set(id, (g = []))
      g.push(i)
    }
    const out: unknown[] = new Array(steps.length)
    const single = groups.size === 1
    await Promise.all(
      [...groups.values()].map(async (idx) => {
        const results = await execPipeline((p) => {
          for (const i of idx) steps[i]!.add(p)
          // One node: a trailing PUBLISH in the same pipeline runs after the writes, in order.
          if (single && after !== undefined) after(p)
        })
        for (let j = 0; j < idx.length; j++) {
          const [err, r] = results[j] ?? [new Error('missing pipeline reply'), null]
          if (err) throw err
          out[idx[j]!] = r
        }
      }),
    )
    // run() counted one request; each further pipeline is another (sent at the same time).
    requests += Math.max(0, groups.size - 1)
    if (!single && after !== undefined) {
      requests++
      await execPipeline(after)
    }
    return out
  }
  const tagKey = (t: string) => `${tagPrefix}${t}}`
  /**
   * Current {v, d} of each tag (flat), per slot: read only (HMGET, a missing record reads as 0, 0
   * as in READ), or for a write (`create`: ENSURE creates missing records, as WRITE does).
   */
  const clusterVersions = async (tags: readonly string[], create = false): Promise<number[]> => {
    if (tags.length === 0) return []
    const replies = await perSlot(
      tags.map((t) => {
        const key = tagKey(t)
        return { key, add: create ? (p) => void (p as unknown as ScriptClient).riCacheEnsure(key) : (p) => void p.hmget(key, 'v', 'd') }
      }),
    )
    return replies.flatMap((r) => (r as Array<string | number | null>).map((x) => Number(x ?? 0) || 0))
  }
  /** Value bytes + versions of their tags: two round trips (value, then its tags' slots). */
  const clusterWithVersions = async (raw: Buffer | null): Promise<RawRead | null> => {
    if (raw === null) return null
    const tags = tagsOf(raw)
    if (tags.length > 0) requests++
    return { raw, current: await clusterVersions(tags) }
  }
  const fullBody = (c: WriteCommand, current: readonly number[], n: number): string | Buffer => {
    const head = `${c.tagLine}\n${storedVersions(c.observed, current, n)}\n`
    return typeof c.body === 'string' ? head + c.body : Buffer.concat([Buffer.from(head, 'utf8'), c.body])
  }
  const clusterWriteMany = async (cmds: readonly WriteCommand[]): Promise<number[][]> => {
    const split = cmds.map((c) => (c.tagLine === '' ? [] : c.tagLine.split('\x1f')))
    const unique = [...new Set(split.flat())]
    const versions = await clusterVersions(unique, true)
    if (unique.length > 0) requests++
    const at = new Map(unique.map((t, i) => [t, i]))
    const currents = split.map((tags) => tags.flatMap((t) => [versions[2 * at.get(t)!]!, versions[2 * at.get(t)! + 1]!]))
    const messages = cmds.map((c) => c.message ?? '').filter((m) => m !== '')
    await perSlot(
      cmds.map((c, i) => ({
        key: c.key,
        add: (p) => void (p as unknown as ScriptClient).riCacheSetLocal(c.key, c.lockKey ?? c.key, c.px, fullBody(c, currents[i]!, split[i]!.length), c.token ?? '', channel, ''),
      })),
      messages.length === 0 ? undefined : (p) => {
        for (const m of messages) p.publish(channel, m)
      },
    )
    return currents
  }

  return {
    client,
    breaker,
    requests: () => requests,
    errors: () => errors,
    cluster,
    read: cluster
      ? (key) => run('get', () => client.getBuffer(key).then(clusterWithVersions))
      : (key) => run('get', () => s.riCacheReadBuffer(key, tagPrefix), (r) => toRead(r, 0)),
    get: (key) => run('get', () => client.getBuffer(key)),
    // run() without its closures: the L2 hit path issues the GET itself.
    getThen: <C, T>(key: string, then: (raw: Buffer | string | null | Fail, ctx: C) => T | PromiseLike<T>, ctx: C, text?: boolean): Promise<T> => {
      const rec = begin<Buffer | string | null, T | PromiseLike<T>>('get', then as (raw: Buffer | string | null, ctx: unknown) => T | PromiseLike<T>, MAP_FAIL, ctx)
      if (rec === undefined) return refused(() => then(FAIL, ctx)) as Promise<T>
      let p: Promise<Buffer | string | null>
      try {
        if (ready || firstReady === undefined) p = text === true ? client.get(key) : client.getBuffer(key)
        else p = firstReady.then((): Promise<Buffer | string | null> => (text === true ? client.get(key) : client.getBuffer(key)))
      } catch (error) {
        p = Promise.reject(error)
      }
      settleWith(rec, p)
      return rec.out as Promise<T>
    },
    versions: cluster
      ? (tags) => run('tags', () => clusterVersions(tags))
      : (tags) =>
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
    readMany: cluster
      ? (keys) =>
          run('getMany', async () => {
            const raws = (await perSlot(keys.map((k) => ({ key: k, add: (p) => void p.getBuffer(k) })))) as Array<Buffer | null>
            const split = raws.map((r) => (r === null ? [] : tagsOf(r)))
            const unique = [...new Set(split.flat())]
            if (unique.length > 0) requests++
            const versions = await clusterVersions(unique)
            const at = new Map(unique.map((t, i) => [t, i]))
            return raws.map((raw, i) => (raw === null ? null : { raw, current: split[i]!.flatMap((t) => [versions[2 * at.get(t)!]!, versions[2 * at.get(t)! + 1]!]) }))
          })
      : (keys) =>
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
    write: cluster
      ? (c) => run('set', () => clusterWriteMany([c]).then((r) => r[0]!))
      : (c) => run('set', () => s.riCacheWrite(c.key, c.lockKey ?? c.key, tagPrefix, c.px, c.tagLine, c.observed, c.body, c.token ?? '', channel, c.message ?? '')),
    writeMany: cluster
      ? (cmds) => run('setMany', () => clusterWriteMany(cmds))
      : (cmds) =>
          run('setMany', () =>
            execPipeline((p) => {
              for (const c of cmds) (p as unknown as ScriptClient).riCacheWrite(c.key, c.lockKey ?? c.key, tagPrefix, c.px, c.tagLine, c.observed, c.body, c.token ?? '', channel, c.message ?? '')
            }).then((results) => results.map(([err, r]) => (err ? null : (r as number[])))),
          ),
    // ioredis' numberOfKeys-less command takes the key count first.
    del: cluster
      ? (keys, message) =>
          run('delete', async () => {
            if (keys.length === 0) return 0
            // One DEL per slot (a multi-key DEL must stay within one slot).
            const bySlot = new Map<number, string[]>()
            for (const k of keys) {
              const slot = keySlot(k)
              const list = bySlot.get(slot)
              if (list === undefined) bySlot.set(slot, [k])
              else list.push(k)
            }
            const replies = await perSlot(
              [...bySlot.values()].map((list) => ({ key: list[0]!, add: (p) => void p.del(...list) })),
              message ? (p) => void p.publish(channel, message) : undefined,
            )
            return replies.reduce<number>((n, r) => n + Number(r), 0)
          })
      : (keys, message) =>
          run('delete', () => (keys.length === 0 ? Promise.resolve(0) : s.riCacheDelete(String(keys.length), ...keys, channel, message ?? ''))),
    invalidate: cluster
      ? (tags, mode, head) =>
          run('invalidate', async () => {
            const replies = await perSlot(tags.map((t) => ({ key: tagKey(t), add: (p) => void (p as unknown as ScriptClient).riCacheBump(tagKey(t), mode) })))
            const out = replies.flatMap((r) => (r as number[]).map(Number))
            if (head) {
              requests++
              await client.publish(channel, `${head}${out.join(',')}]}`)
            }
            return out
          })
      : (tags, mode, head) => run('invalidate', () => s.riCacheInvalidate(tagPrefix, mode, channel, head ?? '', ...tags)),
    acquire: cluster
      ? (lockKey, valueKey, token, lease) =>
          run('lock', async () => {
            const r = await s.riCacheAcquireLocalBuffer(lockKey, valueKey, token, lease)
            if (Number(r[0]) !== 1) return { acquired: false as const }
            const raw = r[1]
            return { acquired: true as const, read: Buffer.isBuffer(raw) ? await clusterWithVersions(raw) : null }
          })
      : (lockKey, valueKey, token, lease) =>
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
