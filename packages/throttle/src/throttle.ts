import {
  type Answer,
  createDeadlineList,
  createEpisodes,
  createEvents,
  createIpResolver,
  createOptionsChecker,
  type Exchange,
  type Feature,
  type FinishInfo,
  formatDuration,
  isPlainObject,
  listening,
  type Logger,
  noopLogger,
  type OptionsChecker,
  type RiEvents,
  ThrottleLimitError,
} from '@ri/core'
import { RateLimiterQueue } from 'rate-limiter-flexible'
import { type Done, type LimitEngine, memoryEngine, type RedisHealth, redisEngine, type StoreKind } from './engine.js'
import { ceilSeconds, HEADER_MODES, type HeadersMode, policyItem, QUOTA_EXCEEDED_TYPE, serviceLimitItem, sfString } from './headers.js'
import { compileIpList, compileKey, type IpMatcher, type KeyContext, type KeyFn, type KeySpec, keySegment, safeKey } from './keys.js'
import {
  DEFAULTS,
  LIMIT_OPTIONS,
  type LimitOptions,
  type RedisClientLike,
  RULE_OPTIONS,
  type RuleOptions,
  THROTTLE_OPTIONS,
  type ThrottleOptions,
} from './options.js'
import { createRouteTable, parseRoutePattern, type RoutePattern } from './routes.js'

/**
 * State of one limit after a decision.
 *
 * @example
 * for (const l of result.limits) console.log(l.policy, l.remaining, l.resetMs)
 */
export interface LimitResult {
  readonly policy: string
  readonly limit: number
  readonly windowMs: number
  readonly remaining: number
  readonly resetMs: number
  readonly allowed: boolean
}

/**
 * What `check()` decided. `limit`, `remaining`, `resetMs` and `policy` describe the deciding
 * limit: the one that refused (longest wait first), or the one with the least quota left.
 *
 * @example
 * const { allowed, remaining, retryAfterMs } = await throttle.check(exchange)
 */
export interface ThrottleResult {
  readonly allowed: boolean
  readonly limit: number
  readonly remaining: number
  /** Milliseconds until the deciding limit's window resets. */
  readonly resetMs: number
  /** Milliseconds to wait before retrying; 0 when allowed. */
  readonly retryAfterMs: number
  readonly policy: string
  /** Name of the rule that applied (`'default'`, a route pattern, a `route()` name); `''` when none. */
  readonly rule: string
  readonly reason: 'allowed' | 'limited' | 'denied' | 'skipped'
  readonly store: StoreKind
  /** Every limit of the rule (one entry per limit). */
  readonly limits: readonly LimitResult[]
}

interface CompiledLimit {
  readonly policy: string
  readonly sfPolicy: string
  readonly points: number
  readonly windowMs: number
  readonly engine: LimitEngine
}

interface CompiledRule {
  readonly name: string
  readonly limits: readonly CompiledLimit[]
  readonly key: KeyFn
  readonly cost: number | ((exchange: Exchange) => number)
  readonly skip: ((exchange: Exchange) => boolean) | undefined
  readonly allow: IpMatcher | undefined
  readonly deny: IpMatcher | undefined
  readonly refundSuccess: boolean
  readonly refundFailure: boolean
  /** Precomputed `RateLimit-Policy` value. */
  readonly policyHeader: string
  readonly legacyLimit: string
}

interface Outcome {
  readonly allowed: boolean
  readonly remaining: number
  readonly resetMs: number
  readonly store: StoreKind
  readonly inMemoryBlocked: boolean
}

const EMPTY: readonly LimitResult[] = Object.freeze([])

class Decision implements ThrottleResult {
  constructor(
    readonly allowed: boolean,
    readonly limit: number,
    readonly remaining: number,
    readonly resetMs: number,
    readonly retryAfterMs: number,
    readonly policy: string,
    readonly reason: ThrottleResult['reason'],
    readonly store: StoreKind,
    /** @internal */ readonly compiled: CompiledRule | undefined,
    /** @internal */ readonly key: string,
    /** @internal */ readonly cost: number,
    /** @internal one per limit when the rule has several */ readonly outcomes: readonly Outcome[] | undefined,
  ) {}

  get rule(): string {
    return this.compiled?.name ?? ''
  }

  get limits(): readonly LimitResult[] {
    const c = this.compiled
    if (!c || this.reason === 'skipped' || this.reason === 'denied') return EMPTY
    if (!this.outcomes) {
      const l = c.limits[0]!
      return [{ policy: l.policy, limit: l.points, windowMs: l.windowMs, remaining: this.remaining, resetMs: this.resetMs, allowed: this.allowed }]
    }
    return c.limits.map((l, i) => {
      const o = this.outcomes![i]!
      return { policy: l.policy, limit: l.points, windowMs: l.windowMs, remaining: o.remaining, resetMs: o.resetMs, allowed: o.allowed }
    })
  }

  toJSON() {
    const { allowed, limit, remaining, resetMs, retryAfterMs, policy, rule, reason, store, limits } = this
    return { allowed, limit, remaining, resetMs, retryAfterMs, policy, rule, reason, store, limits }
  }
}

const SKIPPED = new Decision(true, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, 0, 0, '', 'skipped', 'none', undefined, '', 0, undefined)
const SKIPPED_PROMISE = Promise.resolve<ThrottleResult>(SKIPPED)

const SKIP_MARK = 'ri.throttle.skip'

/**
 * Marks an exchange so no throttle counts it (what a `@SkipThrottle()` decorator does).
 *
 * @example
 * const feature: Feature = { name: 'internal', onRequest: (ex) => { if (ex.header('x-internal') === secret) skipThrottle(ex) } }
 */
export function skipThrottle(exchange: Exchange): void {
  exchange.state[SKIP_MARK] = true
}

/**
 * Waits in line for quota instead of being refused (`RateLimiterQueue`), for internal callers.
 *
 * @example
 * const q = throttle.queue({ limit: 50, window: '1s', name: 'partner-api' })
 * await q.take() // resolves when a slot in the window is free
 */
export interface ThrottleQueue {
  /**
   * Resolves with the quota left once `cost` units are available for `key`; rejects with
   * `ThrottleLimitError` when the queue is full or `maxWait` passes first.
   */
  take(cost?: number, key?: string): Promise<number>
}

/**
 * Options of `throttle.queue()`.
 *
 * @example
 * throttle.queue({ limit: 10, window: '1s', maxQueueSize: 100, maxWait: '5s' })
 */
export interface QueueOptions {
  readonly limit: number
  readonly window: LimitOptions['window']
  /** Name in storage keys. Default `'queue'`. */
  readonly name?: string
  /** Requests waiting per key before new ones are refused. Default 1000. */
  readonly maxQueueSize?: number
  /** Give up after this long (whole seconds, checked when the queue moves). Default: wait as long as it takes. */
  readonly maxWait?: LimitOptions['window']
}

/**
 * A configured throttle: per-route rules on rate-limiter-flexible.
 *
 * @example
 * const throttle = createThrottle({ store: redis, rules: { 'POST /login': { limit: 5, window: '1m' } } })
 * const result = await throttle.check(exchange)
 * if (!result.allowed) return { status: 429, headers: throttle.headersFor(result) }
 */
export interface Throttle {
  readonly events: RiEvents
  /** The `trustProxy` given at creation (adapters may pass it on to the pipeline), or undefined. */
  readonly trustProxy: ThrottleOptions['trustProxy']
  /** Counts the request against its route's rule. Never throws; a store outage degrades to the insurance limiter. */
  check(exchange: Exchange): Promise<ThrottleResult>
  /** Response headers for a result, per the `headers` option (`RateLimit`, `Retry-After` ...). */
  headersFor(result: ThrottleResult): Record<string, string>
  /**
   * The core `Feature` for the whole app: answers 429 (or 403 for deny lists) with headers,
   * sets the RateLimit headers on allowed requests, and applies refunds in `onResponse`.
   */
  feature(): Feature
  /**
   * A `Feature` with its own rule, for one route (adapters attach it per route). It adds to
   * the app-wide rules: both count and the strictest decides. Defaults to `per: 'route'`.
   */
  route(rule: RuleOptions & { readonly name?: string }): Feature
  /** A FIFO queue on this throttle's store for internal callers that should wait, not fail. */
  queue(options: QueueOptions): ThrottleQueue
}

/**
 * Creates a throttle. Options are validated once; every invalid one is named in one
 * `RiConfigError`.
 *
 * @example
 * import Redis from 'ioredis'
 * const throttle = createThrottle({
 *   store: { redis: new Redis(process.env.REDIS_URL), prefix: 'shop:rl' },
 *   default: { limit: 300, window: '1m' },
 *   rules: {
 *     'GET /products/:id': { limits: [{ limit: 10, window: '1s' }, { limit: 1000, window: '1h' }] },
 *     'POST /products/sync': { limit: 2, window: '1m', key: (ex) => ex.header('x-api-key') },
 *     'GET /health': false,
 *   },
 * })
 * const pipeline = createPipeline([throttle.feature()])
 */
export function createThrottle(options: ThrottleOptions = {}): Throttle {
  const check = createOptionsChecker('createThrottle')
  if (!isPlainObject(options)) check.problem('(options)', options, 'an options object')
  check.known(options, THROTTLE_OPTIONS)
  const o = options as ThrottleOptions

  const ipv6Prefix = check.integer('ipv6Prefix', o.ipv6Prefix, DEFAULTS.ipv6Prefix, { min: 1, max: 128 })
  const hashKeys = check.boolean('hashKeys', o.hashKeys, DEFAULTS.hashKeys)
  let headers: HeadersMode = DEFAULTS.headers
  if (o.headers === false) headers = false
  else headers = check.oneOf('headers', o.headers, HEADER_MODES, DEFAULTS.headers as (typeof HEADER_MODES)[number])
  const onLimited = check.fn<NonNullable<ThrottleOptions['onLimited']>>('onLimited', o.onLimited)
  const logger: Logger = o.logger ?? noopLogger
  const events: RiEvents = o.events ?? createEvents()
  const hasDecision = listening(events, 'throttle.decision')
  if (o.events !== undefined && (typeof o.events !== 'object' || typeof o.events.emit !== 'function')) check.problem('events', o.events, 'an RiEvents bus from createEvents()')

  // Store
  let redis: RedisClientLike | undefined
  let prefix: string = DEFAULTS.prefix
  const store = o.store ?? 'memory'
  if (store === 'memory') {
    // nothing to resolve
  } else if (isRedisClient(store)) {
    redis = store
  } else if (isPlainObject(store) && isRedisClient(store.redis)) {
    check.known(store, ['redis', 'prefix'], 'store')
    redis = store.redis as RedisClientLike
    prefix = check.string('store.prefix', store.prefix, DEFAULTS.prefix, /^[^\s*?[\]]{1,100}$/, 'a key prefix of 1 to 100 characters without spaces or *?[]')
  } else {
    check.problem('store', store, "'memory', an ioredis Redis or Cluster instance, or { redis, prefix }")
  }

  let timeoutMs: number = DEFAULTS.insuranceTimeoutMs
  let processes: number = DEFAULTS.insuranceProcesses
  if (o.insurance === false) processes = 0
  else if (o.insurance !== undefined) {
    if (!isPlainObject(o.insurance)) check.problem('insurance', o.insurance, 'false or { timeout, processes }')
    else {
      check.known(o.insurance, ['timeout', 'processes'], 'insurance')
      timeoutMs = check.duration('insurance.timeout', o.insurance.timeout, DEFAULTS.insuranceTimeoutMs)
      if (timeoutMs <= 0) check.problem('insurance.timeout', o.insurance.timeout, 'a positive duration')
      processes = check.integer('insurance.processes', o.insurance.processes, DEFAULTS.insuranceProcesses, { min: 1 })
    }
  }

  const episodes = createEpisodes(logger)
  const EPISODE = 'throttle.redis'
  const health: RedisHealth | undefined = redis && {
    client: redis,
    timeoutMs,
    insuranceProcesses: processes,
    generation: 0,
    engaged: false,
    skipUntil: 0,
    watch: createDeadlineList(timeoutMs),
    engage(gen, error) {
      if (this.engaged || gen !== this.generation) return
      this.engaged = true
      this.generation++
      episodes.begin(
        EPISODE,
        processes > 0
          ? 'ri throttle: Redis unavailable; the in-memory insurance limiter decides until it is back'
          : 'ri throttle: Redis unavailable and insurance is off; requests are allowed until it is back',
        { err: error, redisStatus: redis?.status },
      )
      if (events.has('throttle.insurance')) events.emit('throttle.insurance', error === undefined ? { state: 'engaged' } : { state: 'engaged', error })
    },
    release(gen) {
      if (!this.engaged || gen !== this.generation) return
      this.engaged = false
      this.generation++
      this.skipUntil = 0
      episodes.end(EPISODE, 'ri throttle: Redis is back; limits are shared again')
      if (events.has('throttle.insurance')) events.emit('throttle.insurance', { state: 'released' })
    },
  }
  // A lazyConnect client never connects by itself, and rate-limiter-flexible refuses to queue on it.
  if (redis && redis.status === 'wait' && typeof redis.connect === 'function') redis.connect().catch(() => {})

  const trustProxy = o.trustProxy
  let clientIp: (ex: Exchange) => string = (ex) => ex.ip
  if (trustProxy !== undefined) {
    try {
      const resolve = createIpResolver({ trustProxy })
      clientIp = (ex) => resolve(ex.ip, ex.headers)
    } catch (error) {
      check.problem('trustProxy', trustProxy, 'true, false, a hop count, or a list of CIDRs / loopback | linklocal | uniquelocal')
    }
  }
  const keyErrors = (error: unknown) => {
    episodes.begin('throttle.key', 'ri throttle: a key function threw; those requests are keyed by client ip', { err: error })
  }
  const costErrors = (error: unknown) => {
    episodes.begin('throttle.cost', 'ri throttle: a cost function threw; those requests cost 1', { err: error })
  }
  const keyCtx: KeyContext = { ipv6Prefix, hashKeys, clientIp, onKeyError: keyErrors }
  const defaultKey: KeySpec = o.key === undefined ? DEFAULTS.key : o.key
  validateKeySpec(check, 'key', defaultKey)

  const usedSegments = new Set<string>()
  const compileRule = (check: OptionsChecker, name: string, rawInput: RuleOptions, scope: string, perDefault: 'rule' | 'route'): CompiledRule | undefined => {
    const before = check.problems.length
    const input = rawInput
    if (!isPlainObject(rawInput)) {
      check.problem(scope, rawInput, 'a rule object such as { limit: 100, window: "1m" }, or false')
      return undefined
    }
    check.known(input, RULE_OPTIONS, scope)
    const limitInputs: LimitOptions[] = []
    if (input.limits !== undefined) {
      if (input.limit !== undefined || input.window !== undefined) check.problem(`${scope}.limits`, input.limits, 'either limits or limit + window, not both')
      if (!Array.isArray(input.limits) || input.limits.length === 0) check.problem(`${scope}.limits`, input.limits, 'a non-empty array of { limit, window, name?, burst? }')
      else limitInputs.push(...input.limits)
    } else {
      limitInputs.push({ limit: input.limit as number, window: input.window as LimitOptions['window'], name: input.name, burst: input.burst })
    }
    const blockMs = check.duration(`${scope}.block`, input.block, 0)
    if (blockMs % 1000 !== 0) check.problem(`${scope}.block`, input.block, 'whole seconds')
    const per = check.oneOf(`${scope}.per`, input.per, ['rule', 'route'], perDefault)
    const keySpec = input.key === undefined ? defaultKey : input.key
    validateKeySpec(check, `${scope}.key`, keySpec)
    let cost: CompiledRule['cost'] = 1
    if (typeof input.cost === 'function') {
      const fn = input.cost
      cost = (ex) => {
        try {
          const n = fn(ex)
          return typeof n === 'number' && n > 0 ? (Number.isSafeInteger(n) ? n : Math.min(Math.ceil(n), Number.MAX_SAFE_INTEGER)) : 0
        } catch (error) {
          costErrors(error)
          return 1
        }
      }
    } else cost = check.integer(`${scope}.cost`, input.cost, 1, { min: 0 })
    const skip = check.fn<(ex: Exchange) => boolean>(`${scope}.skip`, input.skip)
    const lists = { allow: undefined as IpMatcher | undefined, deny: undefined as IpMatcher | undefined }
    for (const which of ['allow', 'deny'] as const) {
      const list = input[which]
      if (list === undefined) continue
      if (!Array.isArray(list)) {
        check.problem(`${scope}.${which}`, list, 'an array of IP addresses or CIDRs')
        continue
      }
      const { match, invalid } = compileIpList(list)
      for (const bad of invalid) check.problem(`${scope}.${which}[]`, bad, 'an IP address or CIDR such as 10.0.0.0/8 or 2001:db8::/32')
      lists[which] = match
    }
    const refundSuccess = check.boolean(`${scope}.skipSuccessfulRequests`, input.skipSuccessfulRequests, false)
    const refundFailure = check.boolean(`${scope}.skipFailedRequests`, input.skipFailedRequests, false)

    const ruleSegment = keySegment(name)
    if (usedSegments.has(ruleSegment)) check.problem(scope, name, 'a rule name used only once')
    usedSegments.add(ruleSegment)
    const policies = new Set<string>()
    const limits: CompiledLimit[] = []
    limitInputs.forEach((l, i) => {
      const ls = input.limits !== undefined ? `${scope}.limits[${i}]` : scope
      if (input.limits !== undefined) {
        if (!isPlainObject(l)) {
          check.problem(ls, l, 'a limit such as { limit: 100, window: "1m" }')
          return
        }
        check.known(l, LIMIT_OPTIONS, ls)
      }
      const points = check.integer(`${ls}.limit`, l.limit, Number.NaN, { min: 1 })
      if (l.limit === undefined) check.problem(`${ls}.limit`, undefined, 'a positive integer (requests or cost units per window)')
      const windowMs = wholeSeconds(check, `${ls}.window`, l.window, true)
      let burst: { points: number; windowSec: number } | undefined
      if (l.burst !== undefined) {
        if (!isPlainObject(l.burst)) check.problem(`${ls}.burst`, l.burst, '{ limit, window }')
        else {
          check.known(l.burst, ['limit', 'window'], `${ls}.burst`)
          const bp = check.integer(`${ls}.burst.limit`, l.burst.limit, Number.NaN, { min: 1 })
          if (l.burst.limit === undefined) check.problem(`${ls}.burst.limit`, undefined, 'a positive integer')
          const bw = wholeSeconds(check, `${ls}.burst.window`, l.burst.window, true)
          burst = { points: bp, windowSec: bw / 1000 }
        }
      }
      const policy = check.string(`${ls}.name`, l.name, `${Number.isFinite(points) ? points : 'n'}-per-${formatDuration(windowMs)}`, /^[\x21-\x7e]{1,64}$/, 'a policy name of 1 to 64 visible ASCII characters')
      if (policies.has(policy)) check.problem(`${ls}.name`, policy, 'a policy name unique within the rule')
      policies.add(policy)
      if (check.problems.length > before) return
      const spec = { points, windowSec: windowMs / 1000, keyPrefix: `${prefix}:${ruleSegment}:${keySegment(policy)}`, blockSec: blockMs / 1000, burst }
      limits.push({ policy, sfPolicy: sfString(policy), points, windowMs, engine: health ? redisEngine(spec, health) : memoryEngine(spec) })
    })
    if (check.problems.length > before) return undefined
    return {
      name,
      limits,
      key: compileKey(keySpec as KeySpec, per === 'route', keyCtx),
      cost,
      skip,
      allow: lists.allow,
      deny: lists.deny,
      refundSuccess,
      refundFailure,
      policyHeader: limits.map((l) => policyItem(l.sfPolicy, l.points, l.windowMs / 1000)).join(', '),
      legacyLimit: String(limits[0]!.points),
    }
  }

  // Rules
  const entries: Array<{ pattern: RoutePattern; value: CompiledRule | null }> = []
  if (o.rules !== undefined && !isPlainObject(o.rules)) check.problem('rules', o.rules, "an object of route pattern -> rule, e.g. { 'GET /products/:id': { limit: 10, window: '1s' } }")
  else if (o.rules) {
    for (const pattern of Object.keys(o.rules)) {
      const parsed = parseRoutePattern(pattern)
      if (typeof parsed === 'string') {
        check.problem(`rules['${pattern}']`, pattern, parsed)
        continue
      }
      const rule = o.rules[pattern]
      if (rule === false) {
        entries.push({ pattern: parsed, value: null })
        continue
      }
      const compiled = compileRule(check, pattern, rule as RuleOptions, `rules['${pattern}']`, 'rule')
      if (compiled) entries.push({ pattern: parsed, value: compiled })
    }
  }
  let defaultRule: CompiledRule | null = null
  if (o.default !== false) defaultRule = compileRule(check, 'default', o.default === undefined ? DEFAULTS.default : o.default, 'default', 'rule') ?? null
  check.done()

  const ruleFor = createRouteTable(entries, defaultRule)
  const mode = headers

  const emit = (rule: CompiledRule, policy: string, result: 'allowed' | 'limited' | 'blocked-in-memory' | 'denied' | 'skipped', store: StoreKind) => {
    events.emit('throttle.decision', { rule: rule.name, policy, result, store })
  }

  /**
   * Decides for one exchange and hands the decision to `finish` inside the store's own promise
   * callback (no extra promise hop). Returns `skipped` synchronously when nothing is counted.
   */
  const decide = <T>(ex: Exchange, rule: CompiledRule, finish: (ex: Exchange, d: Decision) => T, skipped: T): T | Promise<T> => {
    if (rule.skip !== undefined) {
      let skipIt = false
      try {
        skipIt = rule.skip(ex) === true
      } catch (error) {
        episodes.begin('throttle.skip', 'ri throttle: a skip predicate threw; those requests are counted', { err: error })
      }
      if (skipIt) {
        if (hasDecision()) emit(rule, '', 'skipped', 'none')
        return skipped
      }
    }
    if (rule.deny !== undefined || rule.allow !== undefined) {
      const ip = clientIp(ex)
      if (rule.deny?.(ip)) {
        if (hasDecision()) emit(rule, '', 'denied', 'none')
        return finish(ex, new Decision(false, 0, 0, 0, 0, '', 'denied', 'none', rule, '', 0, undefined))
      }
      if (rule.allow?.(ip)) {
        if (hasDecision()) emit(rule, '', 'skipped', 'none')
        return skipped
      }
    }
    const key = rule.key(ex)
    const cost = typeof rule.cost === 'number' ? rule.cost : rule.cost(ex)
    const limits = rule.limits
    if (limits.length === 1) {
      const l = limits[0]!
      const done: Done<T> = (allowed, res, store, blocked) => {
        const remaining = res === null ? l.points : res.remainingPoints
        const resetMs = res === null ? l.windowMs : res.msBeforeNext > 0 ? res.msBeforeNext : 0
        if (hasDecision()) emit(rule, l.policy, allowed ? 'allowed' : blocked ? 'blocked-in-memory' : 'limited', store)
        return finish(ex, new Decision(allowed, l.points, remaining, resetMs, allowed ? 0 : resetMs, l.policy, allowed ? 'allowed' : 'limited', store, rule, key, cost, undefined))
      }
      return l.engine.run(key, cost, done)
    }
    const runs = new Array<Outcome | Promise<Outcome>>(limits.length)
    let pending = false
    for (let i = 0; i < limits.length; i++) {
      const r = limits[i]!.engine.run(key, cost, toOutcome(limits[i]!))
      runs[i] = r
      if (typeof (r as Promise<Outcome>).then === 'function') pending = true
    }
    const combine = (outs: Outcome[]): T => {
      // Refused: the limit that makes the client wait longest decides. Allowed: the one with least left.
      let at = -1
      for (let i = 0; i < outs.length; i++) {
        const x = outs[i]!
        if (!x.allowed && (at === -1 || outs[at]!.allowed || x.resetMs > outs[at]!.resetMs)) at = i
      }
      const allowed = at === -1
      if (allowed) {
        at = 0
        for (let i = 1; i < outs.length; i++) {
          const x = outs[i]!
          const best = outs[at]!
          if (x.remaining < best.remaining || (x.remaining === best.remaining && x.resetMs > best.resetMs)) at = i
        }
      }
      if (!allowed) {
        // A refused request uses no quota of the limits that would have let it through.
        for (let i = 0; i < outs.length; i++) {
          const x = outs[i]!
          if (x.allowed && x.store !== 'none' && cost > 0) {
            limits[i]!.engine.refund(key, cost, x.store)
            outs[i] = { ...x, remaining: Math.min(limits[i]!.points, x.remaining + cost) }
          }
        }
      }
      const d = outs[at]!
      const l = limits[at]!
      const store = outs.some((x) => x.store === 'insurance') ? 'insurance' : d.store
      if (hasDecision()) emit(rule, l.policy, allowed ? 'allowed' : d.inMemoryBlocked ? 'blocked-in-memory' : 'limited', store)
      return finish(ex, new Decision(allowed, l.points, d.remaining, d.resetMs, allowed ? 0 : d.resetMs, l.policy, allowed ? 'allowed' : 'limited', store, rule, key, cost, outs))
    }
    // Every limit decided in memory: the combined decision stays synchronous too.
    return pending ? Promise.all(runs).then(combine) : combine(runs as Outcome[])
  }

  const asResult = (_ex: Exchange, d: Decision): ThrottleResult => d
  const checkWith = (ex: Exchange, rule: CompiledRule | null): Promise<ThrottleResult> => {
    if (rule === null || ex.state[SKIP_MARK] === true) return SKIPPED_PROMISE
    const r = decide<ThrottleResult>(ex, rule, asResult, SKIPPED)
    return r === SKIPPED ? SKIPPED_PROMISE : typeof (r as Promise<ThrottleResult>).then === 'function' ? (r as Promise<ThrottleResult>) : Promise.resolve(r as ThrottleResult)
  }

  const headersFor = (result: ThrottleResult): Record<string, string> => {
    const out: Record<string, string> = {}
    const d = result as Decision
    const rule = d.compiled
    if (rule && mode !== false && (d.reason === 'allowed' || d.reason === 'limited')) {
      if (mode === 'ietf' || mode === 'both') {
        out['ratelimit-policy'] = rule.policyHeader
        out.ratelimit = serviceLimitValue(d, rule)
      }
      if (mode === 'legacy' || mode === 'both') {
        out['x-ratelimit-limit'] = String(d.limit)
        out['x-ratelimit-remaining'] = String(d.remaining > 0 ? d.remaining : 0)
        out['x-ratelimit-reset'] = String(ceilSeconds(d.resetMs))
      }
    }
    if (!result.allowed && result.reason === 'limited') out['retry-after'] = String(Math.max(1, ceilSeconds(result.retryAfterMs)))
    return out
  }

  const refusal = (ex: Exchange, d: Decision): Answer => {
    const h = headersFor(d)
    if (d.reason === 'denied') {
      return { status: 403, headers: { 'content-type': 'application/problem+json', ...h }, body: FORBIDDEN_BODY }
    }
    if (onLimited) {
      try {
        const custom = onLimited(ex, d)
        return { ...custom, headers: { ...h, ...custom.headers } }
      } catch (error) {
        episodes.begin('throttle.onLimited', 'ri throttle: onLimited threw; the default 429 was sent', { err: error })
      }
    }
    return { status: 429, headers: { 'content-type': 'application/problem+json', ...h }, body: limitedBody(d) }
  }

  /** Sets headers on the exchange (appending to a RateLimit list another throttle feature started). */
  const applyHeaders = (ex: Exchange, d: Decision) => {
    const rule = d.compiled
    if (mode === false || !rule || d.reason !== 'allowed') return
    const rh = ex.responseHeaders
    if (mode === 'ietf' || mode === 'both') {
      const value = serviceLimitValue(d, rule)
      const prevPolicy = rh['ratelimit-policy']
      if (prevPolicy === undefined) {
        rh['ratelimit-policy'] = rule.policyHeader
        rh.ratelimit = value
      } else {
        rh['ratelimit-policy'] = `${prevPolicy}, ${rule.policyHeader}`
        rh.ratelimit = `${rh.ratelimit}, ${value}`
      }
    }
    if (mode === 'legacy' || mode === 'both') {
      // Legacy headers have room for one limit: keep the one with the least left.
      const prev = rh['x-ratelimit-remaining']
      if (prev === undefined || Number(prev) > d.remaining) {
        rh['x-ratelimit-limit'] = String(d.limit)
        rh['x-ratelimit-remaining'] = String(d.remaining > 0 ? d.remaining : 0)
        rh['x-ratelimit-reset'] = String(ceilSeconds(d.resetMs))
      }
    }
  }

  const refund = (d: Decision, info: FinishInfo) => {
    const rule = d.compiled
    if (!rule || d.reason !== 'allowed' || d.cost === 0) return
    const failed = info.aborted || info.status >= 400
    if (failed ? !rule.refundFailure : !rule.refundSuccess) return
    if (d.outcomes === undefined) rule.limits[0]!.engine.refund(d.key, d.cost, d.store)
    else rule.limits.forEach((l, i) => l.engine.refund(d.key, d.cost, d.outcomes![i]!.store))
  }

  const makeFeature = (name: string, stateKey: string, pick: (ex: Exchange) => CompiledRule | null, hasRefunds: () => boolean): Feature => {
    const onDecision = (ex: Exchange, d: Decision): Answer | undefined => {
      ex.state[stateKey] = d
      if (!d.allowed) return refusal(ex, d)
      applyHeaders(ex, d)
      return undefined
    }
    const feature: Feature = {
      name,
      onRequest(ex) {
        const rule = pick(ex)
        // Nothing counted: answer synchronously so the pipeline stays on its sync path.
        if (rule === null || ex.state[SKIP_MARK] === true) return undefined
        return decide<Answer | undefined>(ex, rule, onDecision, undefined)
      },
    }
    if (hasRefunds()) {
      ;(feature as { onResponse?: Feature['onResponse'] }).onResponse = (ex, info) => {
        const d = ex.state[stateKey] as Decision | undefined
        if (d !== undefined) refund(d, info)
      }
    }
    return Object.freeze(feature)
  }

  const anyRefunds = () => {
    if (defaultRule && (defaultRule.refundSuccess || defaultRule.refundFailure)) return true
    return entries.some((e) => e.value !== null && (e.value.refundSuccess || e.value.refundFailure))
  }
  const appFeature = makeFeature('throttle', 'throttle', (ex) => ruleFor(ex.method, ex.route), anyRefunds)
  let routeCount = 0

  const throttle: Throttle = {
    events,
    trustProxy,
    check: (ex) => checkWith(ex, ruleFor(ex.method, ex.route)),
    headersFor,
    feature: () => appFeature,
    route(input) {
      const c = createOptionsChecker('throttle.route')
      const name = c.string('name', input?.name, `route-${++routeCount}`, /^[\x21-\x7e][\x20-\x7e]{0,99}$/, 'a rule name of 1 to 100 visible ASCII characters')
      const compiled = compileRule(c, name, input, `route('${name}')`, 'route')
      c.done()
      return makeFeature(`throttle:${name}`, `throttle:${name}`, () => compiled!, () => compiled!.refundSuccess || compiled!.refundFailure)
    },
    queue(input) {
      const c = createOptionsChecker('throttle.queue')
      c.known(input, ['limit', 'window', 'name', 'maxQueueSize', 'maxWait'])
      const points = c.integer('limit', input?.limit, 1, { min: 1 })
      if (input?.limit === undefined) c.problem('limit', undefined, 'a positive integer')
      const windowMs = wholeSeconds(c, 'window', input?.window, true)
      const name = c.string('name', input?.name, 'queue', /^[\x21-\x7e]{1,64}$/, 'a name of 1 to 64 visible ASCII characters')
      const maxQueueSize = c.integer('maxQueueSize', input?.maxQueueSize, 1000, { min: 1 })
      const maxWaitMs = input?.maxWait === undefined ? 0 : wholeSeconds(c, 'maxWait', input.maxWait, true)
      c.done()
      const spec = { points, windowSec: windowMs / 1000, keyPrefix: `${prefix}:queue:${keySegment(name)}`, blockSec: 0, burst: undefined }
      const engine = health ? redisEngine(spec, health) : memoryEngine(spec)
      const q = new RateLimiterQueue(engine.limiter as ConstructorParameters<typeof RateLimiterQueue>[0], { maxQueueSize })
      return {
        take(cost = 1, key = 'default') {
          const expires = maxWaitMs > 0 ? Math.ceil((Date.now() + maxWaitMs) / 1000) : 0
          return q.removeTokens(cost, safeKey(String(key), hashKeys), expires).catch(() => {
            throw new ThrottleLimitError(`queue:${name}`, windowMs)
          })
        },
      }
    },
  }
  return Object.freeze(throttle)
}

const FORBIDDEN_BODY = JSON.stringify({ type: 'about:blank', title: 'Forbidden', status: 403 })

function limitedBody(d: Decision): string {
  const violated = d.outcomes ? d.compiled!.limits.filter((_, i) => !d.outcomes![i]!.allowed).map((l) => l.policy) : [d.policy]
  return JSON.stringify({
    type: QUOTA_EXCEEDED_TYPE,
    title: 'Too Many Requests',
    status: 429,
    detail: `Rate limit exceeded; retry in ${Math.max(1, ceilSeconds(d.retryAfterMs))} s.`,
    'violated-policies': violated,
  })
}

function serviceLimitValue(d: Decision, rule: CompiledRule): string {
  if (d.outcomes === undefined) return serviceLimitItem(rule.limits[0]!.sfPolicy, d.remaining, d.resetMs)
  let out = ''
  for (let i = 0; i < rule.limits.length; i++) {
    const o = d.outcomes[i]!
    out += `${i === 0 ? '' : ', '}${serviceLimitItem(rule.limits[i]!.sfPolicy, o.remaining, o.resetMs)}`
  }
  return out
}

function toOutcome(l: CompiledLimit): Done<Outcome> {
  return (allowed, res, store, inMemoryBlocked) => ({
    allowed,
    remaining: res === null ? l.points : res.remainingPoints,
    resetMs: res === null ? l.windowMs : res.msBeforeNext > 0 ? res.msBeforeNext : 0,
    store,
    inMemoryBlocked,
  })
}

function isRedisClient(value: unknown): value is RedisClientLike {
  return value !== null && typeof value === 'object' && typeof (value as RedisClientLike).defineCommand === 'function' && typeof (value as RedisClientLike).multi === 'function'
}

function wholeSeconds(check: OptionsChecker, option: string, value: unknown, required: boolean): number {
  if (value === undefined) {
    if (required) check.problem(option, value, "a window in whole seconds: '1s', '1m', '1h', or milliseconds that are a multiple of 1000")
    return 1000
  }
  const ms = check.duration(option, value, 1000)
  if (ms < 1000 || ms % 1000 !== 0) {
    check.problem(option, value, "whole seconds, at least '1s' (rate-limiter-flexible counts windows in seconds)")
    return 1000
  }
  return ms
}

function validateKeySpec(check: OptionsChecker, option: string, spec: unknown): void {
  const parts = Array.isArray(spec) ? spec : [spec]
  if (parts.length === 0) check.problem(option, spec, "'ip', 'route', a function of the exchange, or a non-empty list of these")
  for (const p of parts) {
    if (p !== 'ip' && p !== 'route' && typeof p !== 'function') check.problem(option, p, "'ip', 'route', a function of the exchange, or a list of these")
  }
}
