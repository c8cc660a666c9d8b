/**
 * @ri/throttle decisions per second against rate-limiter-flexible used by hand, memory and
 * Redis, 100 concurrent callers, in one run. "By hand" is what a hand-written middleware does:
 * `limiter.consume(ip)` then set the RateLimit headers or build a 429, the same work our
 * feature does (rules, keys, headers), so the ratio is the price of @ri/throttle.
 */
import { createPipeline, type Exchange } from '@ri/core'
import { startRedis } from '@ri/testing'
import { createThrottle, type Throttle } from '@ri/throttle'
import { Redis } from 'ioredis'
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible'
import { median, pairedRatio, pairedRatioInterval, timesRange } from './http.js'
import type { BenchComparison, BenchContext, BenchFile, BenchSubject } from './types.js'

const CONCURRENCY = 100
const CLIENTS = 1000

type Op = (i: number) => Promise<unknown>

async function measure(ops: number, op: Op): Promise<number> {
  let next = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < ops) await op(next++ % CLIENTS)
    }),
  )
  return (ops / (performance.now() - start)) * 1000
}

/**
 * Interleaves subjects round by round (order rotated each round) and keeps every round, so the
 * targets can use per-round ratios (`pairedRatio`): a shared machine that drifts between rounds
 * cancels out of each ratio. Each subject's figure in the table is its median round.
 */
async function compare(ctx: BenchContext, label: string, ops: number, rounds: number, subjects: Record<string, Op>) {
  const names = Object.keys(subjects)
  const samples: Record<string, number[]> = {}
  for (const name of names) {
    await measure(Math.min(ops, 20_000), subjects[name]!) // warm-up
    samples[name] = []
  }
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < names.length; j++) {
      const name = names[(r + j) % names.length]!
      samples[name]!.push(await measure(ops, subjects[name]!))
    }
    ctx.progress(`throttle ${label}: round ${r + 1}/${rounds}`)
  }
  const of = (name: string) => ({ rounds: samples[name]! })
  return {
    medians: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])),
    ratio: (a: string, b: string) => pairedRatio(of(a), of(b)),
    /** The 95 % interval of `ratio(a, b)` (distribution-free, over this run's rounds). */
    range: (a: string, b: string) => timesRange(pairedRatioInterval(of(a), of(b))),
    rounds,
  }
}

function exchanges(): Exchange[] {
  const pipeline = createPipeline([])
  return Array.from({ length: CLIENTS }, (_, i) =>
    pipeline.exchange({ method: 'GET', url: `/products/${i}`, route: '/products/:id', headers: {}, remoteAddress: `10.1.${i >> 8}.${i & 255}` }),
  )
}

/** rate-limiter-flexible by hand: consume, then headers (allowed) or a 429 answer (refused). */
function byHand(limiter: { consume(key: string, points?: number): Promise<RateLimiterRes> }, points: number, windowSec: number, exs: Exchange[]): Op {
  const policy = `"${points}-per-${windowSec}s";q=${points};w=${windowSec}`
  return (i) => {
    const ex = exs[i]!
    ex.responseHeaders['ratelimit-policy'] = undefined as unknown as string
    return limiter.consume(ex.ip).then(
      (r) => {
        ex.setHeader('ratelimit-policy', policy)
        ex.setHeader('ratelimit', `"${points}-per-${windowSec}s";r=${r.remainingPoints};t=${Math.ceil(r.msBeforeNext / 1000)}`)
      },
      (r: unknown) => (r instanceof RateLimiterRes ? { status: 429, headers: { 'retry-after': String(Math.ceil(r.msBeforeNext / 1000)) } } : undefined),
    )
  }
}

function ours(throttle: Throttle, exs: Exchange[]): { check: Op; feature: Op } {
  const feature = throttle.feature()
  return {
    check: (i) => throttle.check(exs[i]!),
    feature: (i) => {
      const ex = exs[i]!
      // Same reset as by hand: the feature appends to a RateLimit list another feature started.
      ex.responseHeaders['ratelimit-policy'] = undefined as unknown as string
      return feature.onRequest!(ex) as Promise<unknown>
    },
  }
}

function rows(results: Record<string, number>, extra: Record<string, Record<string, number | string>> = {}): BenchSubject[] {
  return Object.entries(results).map(([name, opsPerSec]) => ({ name, opsPerSec: Math.round(opsPerSec), ...(extra[name] ? { extra: extra[name] } : {}) }))
}

const BASE = 'rate-limiter-flexible by hand (consume + headers)'
const FEATURE = 'ri throttle.feature().onRequest (rules, keys, headers)'
const roundsNote = (rounds: number) =>
  `ratio: median of per-round ratios over ${rounds} interleaved rounds (order rotated; \`pnpm bench --rounds=N\` sets the count), with its distribution-free 95 % interval; table: each subject's median round`

const run: BenchFile = async (ctx) => {
  const out: BenchComparison[] = []
  const points = 1_000_000_000
  const windowSec = 3600

  // Memory
  {
    const exs = exchanges()
    const raw = new RateLimiterMemory({ points, duration: windowSec })
    const hand = new RateLimiterMemory({ points, duration: windowSec, keyPrefix: 'hand' })
    const throttle = createThrottle({ default: { limit: points, window: `${windowSec}s` } })
    const o = ours(throttle, exs)
    const r = await compare(ctx, 'memory', ctx.quick ? 100_000 : 400_000, ctx.rounds ?? (ctx.quick ? 3 : 7), {
      [BASE]: byHand(hand, points, windowSec, exs),
      [FEATURE]: o.feature,
      'ri throttle.check()': o.check,
      'rate-limiter-flexible consume() alone (no middleware work)': (i) => raw.consume(exs[i]!.ip),
    })
    const ratio = r.ratio(FEATURE, BASE)
    out.push({
      id: 'throttle.memory',
      title: 'Throttle decisions per second, memory store, 100 concurrent callers',
      baseline: BASE,
      subjects: rows(r.medians),
      target: { text: `ri feature >= 0.9x rate-limiter-flexible by hand (measured ${ratio.toFixed(2)}x, 95 % interval ${r.range(FEATURE, BASE)})`, met: ratio >= 0.9 },
      notes: roundsNote(r.rounds),
    })
  }

  // Redis
  const server = await startRedis()
  const redis = new Redis(server.url)
  try {
    await new Promise<void>((resolve) => redis.once('ready', () => resolve()))
    const exs = exchanges()
    const hand = new RateLimiterRedis({ storeClient: redis, points, duration: windowSec, keyPrefix: 'hand', insuranceLimiter: new RateLimiterMemory({ points, duration: windowSec }) })
    const throttle = createThrottle({ store: { redis, prefix: 'bench' }, default: { limit: points, window: `${windowSec}s` } })
    const o = ours(throttle, exs)
    const r = await compare(ctx, 'redis', ctx.quick ? 20_000 : 60_000, ctx.rounds ?? (ctx.quick ? 3 : 9), {
      [BASE]: byHand(hand, points, windowSec, exs),
      [FEATURE]: o.feature,
      'ri throttle.check()': o.check,
    })

    // Round trips per decision: client commands Redis counted, per decision.
    const calls = async () => {
      const info = await redis.info('commandstats')
      let total = 0
      for (const m of info.matchAll(/^cmdstat_(evalsha|eval|multi|get|incrby|set):calls=(\d+)/gm)) if (m[1] === 'evalsha' || m[1] === 'eval' || m[1] === 'multi') total += Number(m[2])
      return total
    }
    const n = 1000
    const c0 = await calls()
    for (let i = 0; i < n; i++) await throttle.check(exs[i % CLIENTS]!)
    const perDecision = ((await calls()) - c0) / n
    const blocked = createThrottle({ store: { redis, prefix: 'bench-blocked' }, default: { limit: 1, window: '1h' } })
    const one = exs[0]!
    await blocked.check(one)
    await blocked.check(one) // refusal: the key is now blocked in memory
    const c1 = await calls()
    for (let i = 0; i < n; i++) await blocked.check(one)
    const perBlocked = ((await calls()) - c1) / n

    const ratio = r.ratio(FEATURE, BASE)
    out.push({
      id: 'throttle.redis',
      title: 'Throttle decisions per second, Redis store, 100 concurrent callers',
      baseline: BASE,
      subjects: rows(r.medians, { 'ri throttle.check()': { 'round trips / decision': perDecision, 'round trips / in-memory-blocked decision': perBlocked } }),
      target: {
        text: `ri feature >= 0.9x by hand (measured ${ratio.toFixed(2)}x, 95 % interval ${r.range(FEATURE, BASE)}); 1 round trip per decision, 0 when blocked in memory (measured ${perDecision} and ${perBlocked})`,
        met: ratio >= 0.9 && perDecision === 1 && perBlocked === 0,
      },
      notes: roundsNote(r.rounds),
    })
  } finally {
    redis.disconnect()
    await server.stop()
  }
  return out
}

export default run
