import { type DeadlineEntry, type DeadlineList, promiseInto } from '@ri/core'
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible'

/**
 * One limit's counting engine, built on rate-limiter-flexible:
 * - memory: `RateLimiterMemory` (fixed window per key, this process only);
 * - redis:  `RateLimiterRedis` (fixed window per key; one atomic Lua `INCRBY` + `PEXPIRE` per
 *   decision, exact across processes) with a tagged `RateLimiterMemory` as its `insuranceLimiter`
 *   and `inMemoryBlockOnConsumed` so clients already over the limit cost no round trip;
 * - burst:  `BurstyRateLimiter(main, burst)` when a limit has a burst allowance.
 */

/**
 * Who counted a decision.
 *
 * @example
 * if (result.store === 'insurance') degraded.inc()
 */
export type StoreKind = 'redis' | 'memory' | 'insurance' | 'none'

/** Continuation called once per decision; `res` is null when no store answered (fail open). */
export type Done<T> = (allowed: boolean, res: Pick<RateLimiterRes, 'remainingPoints' | 'msBeforeNext'> | null, store: StoreKind, inMemoryBlocked: boolean) => T

export interface LimitEngine {
  /** Decides; the memory engine answers synchronously (no promise) when it can. */
  run<T>(key: string, cost: number, done: Done<T>): T | Promise<T>
  /** Gives `cost` back (refunds); never throws, never waits. */
  refund(key: string, cost: number, store: StoreKind): void
  /** rate-limiter-flexible limiter, for `RateLimiterQueue`. */
  readonly limiter: RateLimiterMemory | RateLimiterRedis | BurstyRateLimiter
}

export interface LimitSpec {
  readonly points: number
  readonly windowSec: number
  readonly keyPrefix: string
  readonly blockSec: number
  readonly burst: { readonly points: number; readonly windowSec: number } | undefined
}

/** Shared failure state of one Redis store: insurance episodes and the short-circuit after timeouts. */
export interface RedisHealth {
  readonly client: RedisLike
  readonly timeoutMs: number
  /** 0 = insurance disabled (fail open). Otherwise the divisor applied to insurance limits. */
  readonly insuranceProcesses: number
  /** Read at the start of a call; an episode change only counts for calls started after it. */
  generation: number
  engaged: boolean
  /** While Date.now() < skipUntil, Redis is not asked (it just timed out); 0 = ask. */
  skipUntil: number
  engage(generation: number, error: unknown): void
  release(generation: number): void
  /** Times out in-flight Redis calls (one shared timer, see @ri/core's createDeadlineList). */
  watch: DeadlineList
}

export interface RedisLike {
  status?: string
  connect?: () => Promise<unknown>
  defineCommand?: unknown
}

const INSURED = Symbol.for('ri.throttle.insured')
const noop = () => {}

function tag<T>(r: T): T {
  if (r !== null && typeof r === 'object') (r as Record<symbol, boolean>)[INSURED] = true
  return r
}
function tagReject(r: unknown): never {
  throw tag(r)
}

/** rate-limiter-flexible's in-memory limiter, marking its answers so a decision reports who counted. */
class InsuranceLimiter extends RateLimiterMemory {
  override consume(key: string | number, points?: number, options?: Record<string, unknown>): Promise<RateLimiterRes> {
    return super.consume(key, points, options).then(tag, tagReject)
  }
}

function isRes(value: unknown): value is RateLimiterRes {
  return value instanceof RateLimiterRes
}

/** The part of rate-limiter-flexible's in-memory storage a synchronous decision uses. */
interface MemoryStorageLike {
  incrby(key: string, value: number, durationSec: number): RateLimiterRes
  set(key: string, value: number, durationSec: number): RateLimiterRes
}

/**
 * `RateLimiterMemory.consume()` without its promise: the same storage calls in the same order
 * (rate-limiter-flexible decides synchronously and only wraps the answer in a promise). Returns
 * undefined when the limiter does not look like the version this was written against, or uses a
 * mode it does not cover (`execEvenly`); `run` then goes through `consume()`. The request is
 * allowed when `consumedPoints <= points`, as in `consume()`.
 */
export function syncConsumer(limiter: RateLimiterMemory): ((key: string, points: number) => RateLimiterRes) | undefined {
  const l = limiter as unknown as { _memoryStorage?: Partial<MemoryStorageLike>; execEvenly?: boolean; points: number; duration: number; blockDuration: number }
  const storage = l._memoryStorage
  if (typeof storage?.incrby !== 'function' || typeof storage.set !== 'function' || l.execEvenly) return undefined
  if (typeof l.points !== 'number' || typeof l.duration !== 'number' || typeof l.blockDuration !== 'number') return undefined
  const store = storage as MemoryStorageLike
  return (key, points) => {
    const rlKey = limiter.getKey(key)
    let res = store.incrby(rlKey, points, l.duration)
    ;(res as { remainingPoints: number }).remainingPoints = Math.max(l.points - res.consumedPoints, 0)
    if (res.consumedPoints <= l.points) return res
    // Over the limit: block only the first time (rate-limiter-flexible's rule).
    if (l.blockDuration > 0 && res.consumedPoints <= l.points + points) res = store.set(rlKey, res.consumedPoints, l.blockDuration)
    return res
  }
}

/** Builds a memory engine for one limit. */
export function memoryEngine(spec: LimitSpec): LimitEngine {
  // Every limiter has its own map, so no prefix is needed: the key is used as-is (no string
  // concatenation and shorter hashing per decision).
  const opts = (points: number, duration: number) => ({ points, duration, keyPrefix: '', blockDuration: spec.blockSec })
  const main = new RateLimiterMemory(opts(spec.points, spec.windowSec))
  const limiter = spec.burst ? new BurstyRateLimiter(main, new RateLimiterMemory(opts(spec.burst.points, spec.burst.windowSec))) : main
  // A plain limit decides synchronously; a bursty one goes through BurstyRateLimiter's promises.
  const consumeNow = spec.burst ? undefined : syncConsumer(main)
  return {
    limiter,
    run(key, cost, done) {
      if (consumeNow !== undefined) {
        const r = consumeNow(key, cost)
        return done(r.consumedPoints <= spec.points, r, 'memory', false)
      }
      return limiter.consume(key, cost).then(
        (r) => done(true, r, 'memory', false),
        (e: unknown) => (isRes(e) ? done(false, e, 'memory', false) : done(true, null, 'none', false)),
      )
    },
    refund(key, cost) {
      main.reward(key, cost).catch(noop)
    },
  }
}

/** Builds a Redis engine for one limit; `health` is shared by every limit of one store. */
export function redisEngine(spec: LimitSpec, health: RedisHealth): LimitEngine {
  const insured = health.insuranceProcesses > 0
  const build = (points: number, windowSec: number, keyPrefix: string, shield: boolean) => {
    const insurance = insured
      ? new InsuranceLimiter({ points: Math.max(1, Math.ceil(points / health.insuranceProcesses)), duration: windowSec, keyPrefix: '', blockDuration: spec.blockSec })
      : undefined
    const limiter = new RateLimiterRedis({
      storeClient: health.client,
      points,
      duration: windowSec,
      keyPrefix,
      blockDuration: spec.blockSec,
      // A key over its limit stays over until its window ends: refuse it from memory, no round trip.
      // Without blockDuration, rate-limiter-flexible blocks it for exactly the rest of the window.
      inMemoryBlockOnConsumed: shield ? points + 1 : 0,
      inMemoryBlockDuration: shield && spec.blockSec > 0 ? spec.blockSec : 0,
      insuranceLimiter: insurance,
      // Fall back at once while ioredis reconnects instead of queueing behind a dead connection.
      rejectIfRedisNotReady: true,
    })
    return { limiter, insurance }
  }
  // The main limiter of a bursty limit is over its points by design; only the burst limiter shields.
  const main = build(spec.points, spec.windowSec, spec.keyPrefix, spec.burst === undefined)
  const burst = spec.burst ? build(spec.burst.points, spec.burst.windowSec, `${spec.keyPrefix}:burst`, true) : undefined
  const limiter = burst ? new BurstyRateLimiter(main.limiter, burst.limiter) : main.limiter
  const fallback = burst ? new BurstyRateLimiter(main.insurance ?? main.limiter, burst.insurance ?? burst.limiter) : main.insurance
  const client = health.client

  // BurstyRateLimiter rebuilds its answers (the insurance tag is lost): judge by the connection.
  const storeOf = burst ? () => (client.status === undefined || client.status === 'ready' ? 'redis' : 'insurance') : (r: object) => ((r as Record<symbol, boolean>)[INSURED] ? 'insurance' : 'redis')

  const viaInsurance = <T>(key: string, cost: number, done: Done<T>): Promise<T> => {
    if (!fallback) return Promise.resolve(done(true, null, 'none', false))
    return fallback.consume(key, cost).then(
      (r) => done(true, r, 'insurance', false),
      (e: unknown) => (isRes(e) ? done(false, e, 'insurance', false) : done(true, null, 'none', false)),
    )
  }

  const ctx: EngineContext = { health, storeOf, viaInsurance }

  return {
    limiter,
    run<T>(key: string, cost: number, done: Done<T>): Promise<T> {
      if (health.skipUntil !== 0) {
        if (Date.now() < health.skipUntil) return viaInsurance(key, cost, done)
        health.skipUntil = 0
      }
      const call = new RedisCall(ctx, key, cost, done)
      const promise = promiseInto(call)
      health.watch.add(call)
      limiter.consume(key, cost).then(call.answered, call.failed)
      return promise
    },
    refund(key, cost, store) {
      const target = store === 'insurance' ? main.insurance : store === 'redis' ? main.limiter : undefined
      target?.reward(key, cost).catch(noop)
    },
  }
}

interface EngineContext {
  readonly health: RedisHealth
  readonly storeOf: (r: object) => StoreKind
  readonly viaInsurance: <T>(key: string, cost: number, done: Done<T>) => Promise<T>
}

/**
 * One Redis decision in flight. A single object is the deadline list's entry and carries the
 * continuation, so a decision allocates one call, one promise and two small callbacks.
 */
class RedisCall<T> implements DeadlineEntry {
  deadline = 0
  prev: DeadlineEntry | undefined = undefined
  next: DeadlineEntry | undefined = undefined
  readonly gen: number
  /** Set by `promiseInto`. */
  resolve: ((value: T | PromiseLike<T>) => void) | undefined = undefined
  reject: ((error: unknown) => void) | undefined = undefined

  constructor(
    private readonly ctx: EngineContext,
    private readonly key: string,
    private readonly cost: number,
    private readonly done: Done<T>,
  ) {
    this.gen = ctx.health.generation
  }

  /** Redis (or, while it is down, rate-limiter-flexible's insurance limiter) counted the request. */
  readonly answered = (r: RateLimiterRes): void => {
    if (!this.ctx.health.watch.remove(this)) return
    this.resolve!(this.done(true, r, this.track(r), false))
  }

  readonly failed = (e: unknown): void => {
    if (!this.ctx.health.watch.remove(this)) return
    if (isRes(e)) {
      // A refusal from rate-limiter-flexible's in-memory block list consumed nothing: no round trip.
      const blocked = e.consumedPoints === 0
      this.resolve!(this.done(false, e, blocked ? 'redis' : this.track(e), blocked))
      return
    }
    // Only reached without insurance: fail open, once-per-episode log.
    this.ctx.health.engage(this.gen, e)
    this.resolve!(this.done(true, null, 'none', false))
  }

  expire(): void {
    // Redis is slow or gone without closing the socket: decide in memory now and stop asking it
    // for a second, so the next requests do not each wait the timeout.
    const health = this.ctx.health
    health.skipUntil = Date.now() + 1000
    health.engage(this.gen, new Error(`Redis did not answer within ${health.timeoutMs} ms`))
    this.resolve!(this.ctx.viaInsurance(this.key, this.cost, this.done))
  }

  private track(r: object): StoreKind {
    const health = this.ctx.health
    const store = this.ctx.storeOf(r)
    if (store === 'redis') {
      if (health.engaged) health.release(this.gen)
    } else if (!health.engaged) health.engage(this.gen, undefined)
    return store
  }
}
