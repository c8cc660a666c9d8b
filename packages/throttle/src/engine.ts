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
  run<T>(key: string, cost: number, done: Done<T>): Promise<T>
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
  /** Calls `onTimeout` unless `settle()` is called within `timeoutMs` (see createWatchdog). */
  watch(onTimeout: () => void): Pending
}

export interface Pending {
  /** Marks the call answered; false when the timeout already fired. */
  settle(): boolean
}

class PendingCall implements Pending {
  done = false
  constructor(
    readonly tick: number,
    readonly onTimeout: () => void,
  ) {}
  settle(): boolean {
    if (this.done) return false
    this.done = true
    return true
  }
}

/**
 * One coarse timer for every in-flight Redis call instead of a setTimeout per call: calls are
 * queued in start order (all share one timeout, so that is deadline order) and a tick every
 * quarter of the timeout fires the overdue ones. Timeouts fire between 1x and 1.25x the
 * configured value. The timer runs only while calls are in flight and never keeps the
 * process alive.
 */
export function createWatchdog(timeoutMs: number): (onTimeout: () => void) => Pending {
  const period = Math.max(5, Math.ceil(timeoutMs / 4))
  const ticksPerTimeout = Math.ceil(timeoutMs / period)
  let queue: PendingCall[] = []
  let head = 0
  let tick = 0
  let timer: ReturnType<typeof setInterval> | undefined
  const sweep = () => {
    tick++
    while (head < queue.length) {
      const p = queue[head]!
      if (!p.done) {
        if (tick - p.tick <= ticksPerTimeout) break
        p.done = true
        p.onTimeout()
      }
      head++
    }
    if (head === queue.length) {
      queue = []
      head = 0
      clearInterval(timer)
      timer = undefined
    } else if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head)
      head = 0
    }
  }
  return (onTimeout) => {
    if (timer === undefined) {
      timer = setInterval(sweep, period)
      timer.unref()
    }
    const p = new PendingCall(tick, onTimeout)
    queue.push(p)
    return p
  }
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

/** Builds a memory engine for one limit. */
export function memoryEngine(spec: LimitSpec): LimitEngine {
  // Every limiter has its own map, so no prefix is needed: the key is used as-is (no string
  // concatenation and shorter hashing per decision).
  const opts = (points: number, duration: number) => ({ points, duration, keyPrefix: '', blockDuration: spec.blockSec })
  const main = new RateLimiterMemory(opts(spec.points, spec.windowSec))
  const limiter = spec.burst ? new BurstyRateLimiter(main, new RateLimiterMemory(opts(spec.burst.points, spec.burst.windowSec))) : main
  return {
    limiter,
    run(key, cost, done) {
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
  const shielded = burst === undefined ? (main.limiter as unknown as ShieldedLimiter) : undefined
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

  return {
    limiter,
    run<T>(key: string, cost: number, done: Done<T>): Promise<T> {
      if (shielded !== undefined) {
        const blockedMs = shielded.getInMemoryBlockMsBeforeExpire(shielded.getKey(key))
        if (blockedMs > 0) return Promise.resolve(done(false, { remainingPoints: 0, msBeforeNext: blockedMs }, 'redis', true))
      }
      if (health.skipUntil !== 0) {
        if (Date.now() < health.skipUntil) return viaInsurance(key, cost, done)
        health.skipUntil = 0
      }
      const gen = health.generation
      return new Promise<T>((resolve) => {
        const pending = health.watch(() => {
          // Redis is slow or gone without closing the socket: decide in memory now and stop
          // asking it for a second, so the next requests do not each wait the timeout.
          health.skipUntil = Date.now() + 1000
          health.engage(gen, new Error(`Redis did not answer within ${health.timeoutMs} ms`))
          resolve(viaInsurance(key, cost, done))
        })
        limiter.consume(key, cost).then(
          (r) => {
            if (!pending.settle()) return
            const store = storeOf(r)
            if (store === 'redis') {
              if (health.engaged) health.release(gen)
            } else if (!health.engaged) health.engage(gen, undefined)
            resolve(done(true, r, store, false))
          },
          (e: unknown) => {
            if (!pending.settle()) return
            if (isRes(e)) {
              const store = storeOf(e)
              if (store === 'redis') {
                if (health.engaged) health.release(gen)
              } else if (!health.engaged) health.engage(gen, undefined)
              resolve(done(false, e, store, false))
              return
            }
            // Only reached without insurance: fail open, once-per-episode log.
            health.engage(gen, e)
            resolve(done(true, null, 'none', false))
          },
        )
      })
    },
    refund(key, cost, store) {
      const target = store === 'insurance' ? main.insurance : store === 'redis' ? main.limiter : undefined
      target?.reward(key, cost).catch(noop)
    },
  }
}

interface ShieldedLimiter {
  getKey(key: string): string
  getInMemoryBlockMsBeforeExpire(rlKey: string): number
}
