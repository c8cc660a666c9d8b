import { randomUUID } from 'node:crypto'
import { CacheLoaderTimeoutError, type Duration, listening, parseDuration, RiClosedError, type RiEvents } from '@ri/core'
import { SpanStatusCode, trace } from '@opentelemetry/api'
import { now as clockNow } from '../clock.js'
import { FAIL, type RawRead, type WriteCommand } from '../l2/driver.js'
import { keySlot } from '../l2/slot.js'
import { checkNamespaceOptions, type GetOrSetOptions, type NamespaceDefaults, type SetOptions } from '../options.js'
import { decodeEntry, encodeBody, escapeTag, estimateSize, jsonCodec, knownTagLine, NEEDS_BYTES, type StoredEntry } from '../serializer.js'
import { L1Store } from './l1.js'
import { namespaceTag, type NamespaceHandle, type Stack } from './stack.js'
import { TAGS_DELETED, TAGS_FRESH, TAGS_UNKNOWN } from './tags.js'
import { type BatchLoader, type Cache, type CacheEntryInfo, kPeekFresh, type Loader, type LoaderContext, type PeekFresh } from './types.js'


interface L1Entry {
  readonly value: unknown
  fresh: number
  readonly hard: number
  readonly created: number
  readonly refreshAt: number
  readonly tags: string[] | undefined
  readonly versions: number[] | undefined
  readonly size: number
  /**
   * The resolved promise L1 hits return, made on the first hit and shared by the next ones: an
   * L1 hit then allocates nothing (a promise per hit was most of its cost over lru-cache.get).
   */
  hit: Promise<unknown> | undefined
  /** The L1 store's move count when this entry last went to the front (see L1Store). */
  used: number
}

interface Flight {
  promise: Promise<unknown>
  stale: L1Entry | undefined
  serveStale: boolean
  cancelled: boolean
}

interface CallOptions {
  readonly ttl: number
  readonly grace: number
  readonly tags: string[] | undefined
  readonly swr: boolean
  readonly soft: number | undefined
  readonly hard: number | undefined
  readonly lock: boolean
}

const FRESH = 0
const STALE = 1
const NONE = 2

const toMs = (v: Duration | undefined, fallback: number, option: string): number =>
  v === undefined ? fallback : typeof v === 'number' && v >= 0 && Number.isFinite(v) ? v : parseDuration(v, option)

const escapeTags = (tags: readonly string[] | undefined): string[] | undefined => {
  if (tags === undefined || tags.length === 0) return undefined
  const out: string[] = []
  for (const t of tags) {
    if (typeof t !== 'string' || t.length === 0) throw new TypeError(`cache tags must be non-empty strings; received ${JSON.stringify(t)}`)
    const e = escapeTag(t)
    if (!out.includes(e)) out.push(e)
  }
  return out
}

const noop = () => {}

export function createNamespace(stack: Stack, name: string, defaults: NamespaceDefaults): Cache {
  const { config, tags: tagVersions, driver } = stack
  const events = config.events
  const hasGet = listening(events, 'cache.get')
  const codec = config.codec
  const logger = config.logger
  const lockConfig = config.lock
  const tracer = trace.getTracer('@ri/cache')
  // Keys: <prefix><codec id>:<namespace>:{<key>}. The braces make the key its own hash slot
  // (and the lock key `...}:lock` the same slot) so a Cluster can route both together while
  // different keys spread over every slot. Tag keys (`<prefix>t:{<tag>}`) are each their own
  // slot too; the driver reads/bumps them per slot on a Cluster.
  const keyPrefix = `${config.prefix}${codec.id}:${name}:{`
  const fullKey = (key: string) => `${keyPrefix}${key}}`
  const lockKey = (key: string) => `${keyPrefix}${key}}:lock`
  const nsTag = namespaceTag(name)
  const nsTagOnly = [nsTag]
  // Untagged entries carry only the namespace tag: their tag line decodes to this shared array.
  const nsTagLine = knownTagLine([nsTag])
  // The JSON codec without compression writes only text: get() reads the reply as a string.
  const textReads = codec === jsonCodec && config.compressionThreshold === Number.POSITIVE_INFINITY

  const l1Config = config.l1
  const l1: L1Store<L1Entry> | undefined = l1Config
    ? new L1Store<L1Entry>({
        max: l1Config.max,
        maxSize: l1Config.maxSize,
        sizeCalculation: l1Config.sizeCalculation
          ? (e, k) => Math.max(1, Math.ceil(l1Config.sizeCalculation!(e.value, k)) || 1)
          : (e) => Math.max(1, e.size),
      })
    : undefined
  const sized = l1Config !== false && l1Config.maxSize !== undefined && l1Config.sizeCalculation === undefined
  const flights = new Map<string, Flight>()
  // A read that started before a local write/delete (epoch) must not fill L1 with what it read;
  // one that started before an invalidation (tagEpoch) must not roll tag versions back.
  interface Snap {
    readonly e: number
    readonly t: number
  }
  let epoch = 0
  let floor = 0
  const touched = new Map<string, number>()
  const touch = (key: string) => {
    epoch++
    if (touched.size >= 10_000) {
      touched.clear()
      floor = epoch
    }
    touched.set(key, epoch)
  }
  const touchAll = () => {
    epoch++
    touched.clear()
    floor = epoch
  }
  const snapshot = (): Snap => ({ e: epoch, t: stack.tagEpoch })
  interface ReadRecord {
    p: Promise<RawRead | null | typeof FAIL>
    readonly s: Snap
  }
  const reads = new Map<string, ReadRecord>()
  const counters = { l1Hits: 0, l2Hits: 0, misses: 0, stale: 0, loads: 0, loaderErrors: 0, loaderTimeouts: 0, decodeErrors: 0 }

  // Frozen payloads: emitting a hit allocates nothing.
  const E_L1_HIT = Object.freeze({ namespace: name, tier: 'l1', result: 'hit' } as const)
  const E_L2_HIT = Object.freeze({ namespace: name, tier: 'l2', result: 'hit' } as const)
  const E_MISS = Object.freeze({ namespace: name, tier: 'none', result: 'miss' } as const)
  const E_L1_STALE = Object.freeze({ namespace: name, tier: 'l1', result: 'stale' } as const)
  const E_SET = Object.freeze({ namespace: name })
  const hit1 = () => {
    counters.l1Hits++
    if (hasGet()) events.emit('cache.get', E_L1_HIT)
  }
  const miss = () => {
    counters.misses++
    if (hasGet()) events.emit('cache.get', E_MISS)
  }
  const staleServed = () => {
    counters.stale++
    if (hasGet()) events.emit('cache.get', E_L1_STALE)
  }

  const defaultCall: CallOptions = Object.freeze({
    ttl: defaults.ttl,
    grace: defaults.grace,
    tags: undefined,
    swr: defaults.staleWhileRevalidate,
    soft: defaults.soft,
    hard: defaults.hard,
    lock: lockConfig !== false,
  })
  const resolveCall = (o: GetOrSetOptions | undefined): CallOptions => {
    if (o === undefined) return defaultCall
    return {
      ttl: toMs(o.ttl, defaults.ttl, 'ttl'),
      grace: toMs(o.grace, defaults.grace, 'grace'),
      tags: escapeTags(o.tags),
      swr: o.staleWhileRevalidate ?? defaults.staleWhileRevalidate,
      soft: o.timeouts?.soft === undefined ? defaults.soft : toMs(o.timeouts.soft, 0, 'timeouts.soft'),
      hard: o.timeouts?.hard === undefined ? defaults.hard : toMs(o.timeouts.hard, 0, 'timeouts.hard'),
      lock: lockConfig !== false && o.lock !== false,
    }
  }

  /** State of an L1 entry now: FRESH, STALE (usable as a fallback) or NONE. */
  const l1State = (e: L1Entry, now: number): number => {
    if (now >= e.hard) return NONE
    let t = TAGS_FRESH
    if (e.tags !== undefined) {
      t = tagVersions.check(e.tags, e.versions!)
      if (t === TAGS_DELETED) return NONE
      // Without L2 the in-memory versions are the truth: a forgotten tag is a miss.
      if (t === TAGS_UNKNOWN && driver === undefined) return NONE
    }
    return now < e.fresh && t === TAGS_FRESH ? FRESH : STALE
  }

  const refreshAtOf = (created: number, fresh: number) =>
    defaults.eagerRefresh > 0 ? created + (fresh - created) * defaults.eagerRefresh : Number.POSITIVE_INFINITY

  /** Decodes and checks an L2 read; refreshes the in-memory tag versions it carries. */
  const evaluate = (read: RawRead, key: string, since: Snap): { entry: L1Entry; state: number } | null => {
    let stored = read.entry
    if (stored === undefined) try {
      stored = decodeEntry(codec, read.raw, nsTagLine)
    } catch (error) {
      counters.decodeErrors++
      logger.warn({ err: error, namespace: name, key }, 'cache value in Redis did not decode; treated as a miss')
      return null
    }
    const t = stored.tags
    const n = t.length
    let tagState = TAGS_FRESH
    // Versions that came from the in-memory map need no second look; fetched ones are recorded.
    if (read.fromMap !== true) {
      if (since.t === stack.tagEpoch) for (let i = 0; i < n; i++) {
        const v = read.current[2 * i]
        const d = read.current[2 * i + 1]
        if (v !== undefined && d !== undefined) tagVersions.set(t[i]!, v, d)
      }
      for (let i = 0; i < n; i++) {
        const v = read.current[2 * i] ?? 0
        const d = read.current[2 * i + 1] ?? 0
        // v = 0: the tag's record is missing in Redis (lost: evicted, flushed, a failover). Its
        // invalidations may be lost with it, so the entry counts as deleted, not even stale.
        if (!(v > 0)) return null
        if (d > stored.versions[i]!) return null
        // A version below the stored one (a record recreated by a server whose clock is behind, or
        // one from before versions started at TIME): not fresh either.
        if (v !== stored.versions[i]!) tagState = TAGS_EXPIRED_LOCAL
      }
    }
    // A local invalidation not yet in Redis (it was unreachable) still applies.
    const local = n > 0 ? tagVersions.check(t, stored.versions) : TAGS_FRESH
    if (local === TAGS_DELETED) return null
    if (local !== TAGS_FRESH && local !== TAGS_UNKNOWN) tagState = TAGS_EXPIRED_LOCAL
    const now = Date.now()
    if (now >= stored.hard) return null
    let userTags: string[] | undefined
    let userVersions: number[] | undefined
    if (n > 1 || (n === 1 && t[0] !== nsTag)) {
      userTags = t[n - 1] === nsTag ? t.slice(0, n - 1) : t
      userVersions = userTags.length === n ? stored.versions : stored.versions.slice(0, userTags.length)
    }
    const entry: L1Entry = {
      value: stored.value,
      fresh: tagState === TAGS_FRESH ? stored.fresh : 0,
      hard: stored.hard,
      created: stored.created,
      refreshAt: refreshAtOf(stored.created, stored.fresh),
      tags: userTags,
      versions: userVersions,
      size: stored.bytes,
      hit: undefined,
      used: 0,
    }
    return { entry, state: now < entry.fresh ? FRESH : STALE }
  }

  /**
   * While the bus is connected the in-memory tag versions are current (the bus updates them),
   * so an L2 hit is a plain GET checked against them: one round trip, no script. A tag not
   * known here costs one more (pipelined HMGET) the first time it is seen. Without a trusted
   * bus the read script returns value and versions together.
   */
  const fastRead = async (key: string, rec: ReadRecord | undefined): Promise<RawRead | null | typeof FAIL> => {
    const raw = await driver!.get(fullKey(key))
    if (rec !== undefined && reads.get(key) === rec) reads.delete(key)
    if (raw === FAIL || raw === null) return raw
    let entry: StoredEntry
    try {
      entry = decodeEntry(codec, raw, nsTagLine)
    } catch {
      return { raw, current: [] } // evaluate() decodes again, logs and counts the miss
    }
    const tags = entry.tags
    for (let i = 0; i < tags.length; i++) {
      const st = tagVersions.get(tags[i]!)
      // Stored above the known version: this instance has not heard of a newer version yet (the
      // bus message is on its way, or the record was recreated): Redis decides, not the map.
      if (st === undefined || st.pending || entry.versions[i]! > st.v) {
        const fetched = await driver!.versions(tags)
        return fetched === FAIL ? FAIL : { raw, current: fetched, entry }
      }
    }
    return { raw, current: NO_VERSIONS, entry, fromMap: true }
  }

  // On a Cluster a bus message reaches other nodes' subscribers through the cluster bus, after
  // the publisher's invalidateTags() has resolved: trusting in-memory versions there would let
  // an L2 hit miss an invalidation that already completed elsewhere. So Cluster L2 reads always
  // fetch the tags' versions (GET, then one pipelined HMGET per node).
  const useFastRead = () => stack.bus !== undefined && stack.trusted && driver?.cluster !== true

  const scriptRead = async (key: string, rec: ReadRecord): Promise<RawRead | null | typeof FAIL> => {
    const r = await driver!.read(fullKey(key))
    if (reads.get(key) === rec) reads.delete(key)
    return r
  }

  const readL2 = (key: string): ReadRecord => {
    let r = reads.get(key)
    if (r === undefined) {
      const rec: ReadRecord = { p: undefined as unknown as ReadRecord['p'], s: snapshot() }
      reads.set(key, rec)
      rec.p = useFastRead() ? fastRead(key, rec) : scriptRead(key, rec)
      r = rec
    }
    return r
  }

  const fillL1 = (key: string, entry: L1Entry) => {
    if (l1 !== undefined) l1.set(key, entry)
  }
  const fillRead = (key: string, entry: L1Entry, since: Snap) => {
    if (l1 !== undefined && since.e >= floor && (touched.get(key) ?? 0) <= since.e) l1.set(key, entry)
  }

  // ---- writes -------------------------------------------------------------------------------

  interface Prepared {
    readonly key: string
    readonly entry: L1Entry
    readonly allTags: string[]
    readonly write: WriteCommand | undefined
    readonly observed: string
  }

  /** Builds the L1 entry and the Redis write for one value; undefined when it must not be cached. */
  const prepare = (
    key: string,
    value: unknown,
    ttl: number,
    grace: number,
    tags: string[] | undefined,
    observed: string | undefined,
    token?: string,
    publish = true,
  ): Prepared | undefined => {
    if (ttl <= 0) return undefined
    if (defaults.jitter > 0) ttl = Math.max(1, Math.round(ttl * (1 - Math.random() * defaults.jitter)))
    const now = Date.now()
    const fresh = now + ttl
    const hard = fresh + grace
    const allTags = tags === undefined ? nsTagOnly : [...tags, nsTag]
    const obs = observed ?? tagVersions.observe(allTags)
    let write: WriteCommand | undefined
    let bytes = 0
    if (driver !== undefined) {
      try {
        const body = encodeBody(codec, value, fresh, hard, now, config.compressionThreshold)
        bytes = typeof body === 'string' ? body.length : body.byteLength
        write = {
          key: fullKey(key),
          tagLine: allTags.join('\x1f'),
          observed: obs,
          body,
          px: Math.max(1, hard - now),
          lockKey: token ? lockKey(key) : undefined,
          token,
          message: publish ? stack.message('s', name, [key]) : '',
        }
      } catch (error) {
        stack.episodes.begin(`cache.encode.${name}`, 'a cache value could not be encoded; it is kept in L1 only', { err: error, key })
      }
    }
    const entry: L1Entry = {
      value,
      fresh,
      hard,
      created: now,
      refreshAt: refreshAtOf(now, fresh),
      tags,
      versions: undefined,
      size: l1 !== undefined && sized ? bytes || estimateSize(value) : 1,
      hit: undefined,
      used: 0,
    }
    return { key, entry, allTags, write, observed: obs }
  }

  /** The versions an entry is stored under, from Redis' reply (or local versions when none). */
  const settleVersions = (p: Prepared, current: number[] | undefined): L1Entry => {
    const tags = p.entry.tags
    if (current !== undefined) {
      const obs = p.observed.split(',')
      for (let i = 0; i < p.allTags.length; i++) tagVersions.set(p.allTags[i]!, current[2 * i] ?? 0, current[2 * i + 1] ?? 0)
      if (tags === undefined) return p.entry
      const versions: number[] = []
      for (let i = 0; i < tags.length; i++) {
        const o = Number(obs[i])
        const v = current[2 * i] ?? 0
        versions.push(o >= 0 && o < v ? o : v)
      }
      return { ...p.entry, versions }
    }
    if (tags === undefined) return p.entry
    const obs = p.observed.split(',')
    return {
      ...p.entry,
      versions: tags.map((t, i) => {
        const v = tagVersions.ensure(t)
        const o = Number(obs[i])
        return o >= 0 && o < v ? o : v
      }),
    }
  }

  const store = async (p: Prepared | undefined, key: string, token: string | undefined): Promise<void> => {
    if (p === undefined) {
      if (token !== undefined) void driver!.release(lockKey(key), token)
      return
    }
    let current: number[] | undefined
    touch(key)
    if (p.write !== undefined) {
      const r = await driver!.write(p.write)
      if (r !== FAIL) current = r
      else if (token !== undefined) void driver!.release(lockKey(key), token)
    }
    fillL1(key, settleVersions(p, current))
    if (events.has('cache.set')) events.emit('cache.set', E_SET)
  }

  const cancelFlight = (key: string) => {
    const f = flights.get(key)
    if (f !== undefined) {
      f.cancelled = true
      flights.delete(key)
    }
  }

  // ---- loading ------------------------------------------------------------------------------

  /** Serves `stale` after a failed/timed-out refresh and backs off before the loader is retried. */
  const failSafe = (key: string, stale: L1Entry): unknown => {
    const backoff = Math.min(Date.now() + defaults.graceBackoff, stale.hard)
    if (l1 !== undefined && backoff > Date.now()) l1.set(key, { ...stale, fresh: backoff, refreshAt: Number.POSITIVE_INFINITY })
    staleServed()
    return stale.value
  }

  // Lock waiters sleep until their backoff ends or a bus message says the key was written.
  const waiters = new Map<string, Set<() => void>>()
  const waitFor = (key: string, ms: number) =>
    new Promise<void>((resolve) => {
      let set = waiters.get(key)
      if (set === undefined) waiters.set(key, (set = new Set()))
      const wake = () => {
        clearTimeout(timer)
        set!.delete(wake)
        if (set!.size === 0 && waiters.get(key) === set) waiters.delete(key)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      timer.unref()
      set.add(wake)
    })
  const wake = (key: string) => {
    const set = waiters.get(key)
    if (set !== undefined) for (const w of [...set]) w()
  }

  /**
   * Distributed single-flight: take the lease, or wait (short-poll with backoff) for the holder
   * to write the value. Gives up after `lock.wait` (or the soft timeout when a stale value
   * exists) and loads anyway: a dead holder never blocks anyone beyond that.
   */
  const acquireOrWait = async (key: string, o: CallOptions, stale: L1Entry | undefined): Promise<{ value: unknown } | { token: string | undefined } | 'stale'> => {
    if (!lockConfig || !o.lock || driver === undefined) return { token: undefined }
    // A key that is empty or starts with '}' has an empty hash tag: its lock key would hash to
    // another slot, which a Cluster script cannot touch. Such keys load without the lock there.
    if (driver.cluster && keySlot(fullKey(key)) !== keySlot(lockKey(key))) return { token: undefined }
    const token = randomUUID()
    const budget = stale !== undefined && o.soft !== undefined ? Math.min(o.soft, lockConfig.wait) : lockConfig.wait
    const deadline = Date.now() + budget
    let delay = 5
    for (;;) {
      const s0 = snapshot()
      const r = await driver.acquire(lockKey(key), fullKey(key), token, lockConfig.lease)
      if (r === FAIL) return { token: undefined }
      if (r.acquired) {
        if (r.read !== null) {
          const ev = evaluate(r.read, key, s0)
          if (ev !== null && ev.state === FRESH) {
            void driver.release(lockKey(key), token)
            fillRead(key, ev.entry, s0)
            return { value: ev.entry.value }
          }
        }
        return { token }
      }
      const left = deadline - Date.now()
      if (left <= 0) return stale !== undefined ? 'stale' : { token: undefined }
      await waitFor(key, Math.min(delay, left))
      delay = Math.min(delay * 2, 100)
      const s1 = snapshot()
      const rr = await driver.read(fullKey(key))
      if (rr === FAIL) return stale !== undefined ? 'stale' : { token: undefined }
      if (rr !== null) {
        const ev = evaluate(rr, key, s1)
        if (ev !== null && ev.state === FRESH) {
          fillRead(key, ev.entry, s1)
          return { value: ev.entry.value }
        }
      }
    }
  }

  const load = async <T>(key: string, loader: Loader<T>, o: CallOptions, flight: Flight, stale: L1Entry | undefined): Promise<T> => {
    const cleanup = () => {
      if (flights.get(key) === flight) flights.delete(key)
    }
    let lease: Awaited<ReturnType<typeof acquireOrWait>>
    try {
      lease = await acquireOrWait(key, o, stale)
    } catch (error) {
      cleanup()
      throw error
    }
    if (lease === 'stale') {
      cleanup()
      return failSafe(key, stale!) as T
    }
    if ('value' in lease) {
      cleanup()
      return lease.value as T
    }
    const token = lease.token
    let ttl = o.ttl
    let tags = o.tags
    let skipped = false
    const controller = new AbortController()
    const observed = tagVersions.observe(tags === undefined ? nsTagOnly : [...tags, nsTag], driver === undefined)
    const ctx: LoaderContext<T> = {
      key,
      stale: stale?.value as T | undefined,
      signal: controller.signal,
      setTtl: (v) => {
        ttl = toMs(v, ttl, 'ctx.setTtl')
      },
      setTags: (t) => {
        tags = escapeTags(t)
      },
      skip: () => {
        skipped = true
      },
    }
    counters.loads++
    const started = performance.now()
    const span = tracer.startSpan('cache.load', { attributes: { 'cache.namespace': name } })
    const report = (outcome: 'ok' | 'error' | 'timeout' | 'soft-timeout') => {
      if (events.has('cache.loader')) events.emit('cache.loader', { namespace: name, durationMs: performance.now() - started, outcome })
    }
    let loaded: Promise<T>
    try {
      loaded = Promise.resolve(loader(ctx))
    } catch (error) {
      loaded = Promise.reject(error)
    }
    let timedOut = false
    const completion = loaded.then(
      async (value) => {
        span.end()
        if (!timedOut) report('ok')
        const negative = value === null || value === undefined
        const effectiveTtl = negative && ttl === o.ttl ? defaults.negativeTtl : ttl
        if (skipped || flight.cancelled) {
          await store(undefined, key, token)
        } else {
          const sameTags = tags === o.tags
          await store(prepare(key, value, effectiveTtl, o.grace, tags, sameTags ? observed : undefined, token), key, token)
        }
        return value
      },
      (error: unknown) => {
        span.setStatus({ code: SpanStatusCode.ERROR, message: String((error as Error)?.message ?? error) })
        span.end()
        counters.loaderErrors++
        if (!timedOut) report('error')
        if (token !== undefined) void driver!.release(lockKey(key), token)
        throw error
      },
    )
    completion.then(cleanup, cleanup)

    const soft = stale !== undefined ? o.soft : undefined
    const hard = o.hard
    if (soft === undefined && hard === undefined) {
      try {
        return await completion
      } catch (error) {
        if (stale !== undefined) return failSafe(key, stale) as T
        throw error
      }
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false
      let softTimer: NodeJS.Timeout | undefined
      let hardTimer: NodeJS.Timeout | undefined
      const stop = () => {
        settled = true
        if (softTimer) clearTimeout(softTimer)
        if (hardTimer) clearTimeout(hardTimer)
      }
      if (soft !== undefined) {
        softTimer = setTimeout(() => {
          if (settled) return
          stop()
          report('soft-timeout')
          // Later callers get the stale value too while the load goes on in the background.
          flight.stale = stale
          flight.serveStale = true
          staleServed()
          resolve(stale!.value as T)
        }, soft)
        softTimer.unref()
      }
      if (hard !== undefined) {
        hardTimer = setTimeout(() => {
          if (settled) return
          stop()
          timedOut = true
          counters.loaderTimeouts++
          report('timeout')
          controller.abort(new CacheLoaderTimeoutError(key, hard))
          cleanup()
          if (stale !== undefined) resolve(failSafe(key, stale) as T)
          else reject(new CacheLoaderTimeoutError(key, hard))
        }, hard)
        hardTimer.unref()
      }
      completion.then(
        (value) => {
          if (settled) return
          stop()
          resolve(value)
        },
        (error: unknown) => {
          if (settled) return
          stop()
          if (stale !== undefined) resolve(failSafe(key, stale) as T)
          else reject(error)
        },
      )
    })
  }

  /** The slow path of getOrSet: one flight per key covers the L2 read and the load. */
  const resolveFlight = async <T>(key: string, loader: Loader<T>, o: CallOptions, flight: Flight): Promise<T> => {
    let handedOff = false
    try {
      let stale: L1Entry | undefined
      const e = l1?.get(key)
      if (e !== undefined) {
        const s = l1State(e, clockNow())
        if (s === FRESH && stack.trusted) {
          hit1()
          return e.value as T
        }
        if (s !== NONE) stale = e
      }
      if (driver !== undefined) {
        const rd = readL2(key)
        const r = await rd.p
        if (r === FAIL) {
          // Redis unreachable: an L1 value fresh by its own clock is the best answer we have.
          if (stale !== undefined && Date.now() < stale.fresh && (stale.tags === undefined || tagVersions.check(stale.tags, stale.versions!) !== TAGS_DELETED)) {
            staleServed()
            return stale.value as T
          }
        } else if (r !== null) {
          const ev = evaluate(r, key, rd.s)
          if (ev !== null) {
            if (ev.state === FRESH) {
              counters.l2Hits++
              if (hasGet()) events.emit('cache.get', E_L2_HIT)
              fillRead(key, ev.entry, rd.s)
              return ev.entry.value as T
            }
            stale = ev.entry
          } else if (stale?.tags !== undefined && tagVersions.check(stale.tags, stale.versions!) === TAGS_DELETED) {
            // The read just taught us a tag was deleted (or its record lost): the L1 copy is
            // no fallback either.
            stale = undefined
          }
        }
      }
      if (stale !== undefined && o.swr) {
        flight.stale = stale
        flight.serveStale = true
        handedOff = true
        staleServed()
        load(key, loader, o, flight, stale).catch(noop)
        return stale.value as T
      }
      miss()
      handedOff = true
      return await load(key, loader, o, flight, stale)
    } finally {
      if (!handedOff && flights.get(key) === flight) flights.delete(key)
    }
  }

  const slowGetOrSet = <T>(key: string, loader: Loader<T>, options: GetOrSetOptions | undefined): Promise<T> => {
    if (stack.closed) return Promise.reject(new RiClosedError('cache'))
    const existing = flights.get(key)
    if (existing !== undefined) {
      if (existing.serveStale && existing.stale !== undefined) {
        staleServed()
        return Promise.resolve(existing.stale.value as T)
      }
      return existing.promise as Promise<T>
    }
    let o: CallOptions
    try {
      if (typeof loader !== 'function') throw new TypeError('cache.getOrSet(key, loader): loader must be a function')
      o = resolveCall(options)
    } catch (error) {
      return Promise.reject(error)
    }
    const flight: Flight = { promise: undefined as unknown as Promise<unknown>, stale: undefined, serveStale: false, cancelled: false }
    flights.set(key, flight)
    const p = resolveFlight(key, loader, o, flight)
    flight.promise = p
    return p
  }

  const refreshInBackground = <T>(key: string, loader: Loader<T>, options: GetOrSetOptions | undefined, e: L1Entry) => {
    if (flights.has(key) || stack.closed) return
    let o: CallOptions
    try {
      o = resolveCall(options)
    } catch {
      return
    }
    const flight: Flight = { promise: undefined as unknown as Promise<unknown>, stale: e, serveStale: true, cancelled: false }
    flights.set(key, flight)
    flight.promise = load(key, loader, o, flight, e)
    flight.promise.catch(noop)
  }

  // ---- public surface -----------------------------------------------------------------------

  /** get() after L2 answered (or failed): the hit, the miss, or L1 as the fail-safe fallback. */
  const afterL2 = <T>(key: string, r: RawRead | null | typeof FAIL, since: Snap, e: L1Entry | undefined, s: number): T | undefined => {
    if (r !== FAIL) {
      if (r !== null) {
        const ev = evaluate(r, key, since)
        if (ev !== null && ev.state === FRESH) {
          counters.l2Hits++
          if (hasGet()) events.emit('cache.get', E_L2_HIT)
          fillRead(key, ev.entry, since)
          return ev.entry.value as T
        }
      }
      miss()
      return undefined
    }
    // Redis unreachable: L1 within grace is the fail-safe answer.
    if (e !== undefined && s !== NONE) {
      if (s === FRESH) hit1()
      else staleServed()
      return e.value as T
    }
    miss()
    return undefined
  }

  /** get()'s L2 read: its start (a Snap) and what afterL2 needs; the only object a hit adds. */
  interface GetRead extends Snap {
    readonly key: string
    readonly entry: L1Entry | undefined
    readonly state: number
  }

  /**
   * get()'s L2 hit with a trusted bus: the GET's reply is decoded and checked inside the driver's
   * own promise (no async function, no await hop, no closure, no RawRead or L1 entry when there
   * is no L1).
   */
  const afterGet = (raw: Buffer | string | null | typeof FAIL, r: GetRead): unknown => {
    if (raw === FAIL || raw === null) return afterL2(r.key, raw, r, r.entry, r.state)
    let entry: StoredEntry
    try {
      entry = decodeEntry(codec, raw, nsTagLine)
    } catch (error) {
      // Compressed (written by an instance that compresses) while this one reads text: read the bytes.
      if (error === NEEDS_BYTES) return driver!.getThen(fullKey(r.key), afterGet, r)
      return afterL2(r.key, { raw, current: [] }, r, r.entry, r.state) // evaluate() decodes again, logs and counts the miss
    }
    const tags = entry.tags
    // Tag check in the same pass as the lookup (what tagVersions.check() would say once every
    // tag is known): any newer version, expired or deleted, makes it a miss for get().
    let current = true
    for (let i = 0; i < tags.length; i++) {
      const st = tagVersions.get(tags[i]!)
      const stored = entry.versions[i]!
      // Unknown, pending, or stored above the known version (see fastRead): ask Redis.
      if (st === undefined || st.pending || stored > st.v) {
        return driver!.versions(tags).then((fetched) => afterL2(r.key, fetched === FAIL ? FAIL : { raw, current: fetched, entry }, r, r.entry, r.state))
      }
      if (st.v !== stored || st.d > stored) current = false
    }
    if (l1 !== undefined) return afterL2(r.key, { raw, current: NO_VERSIONS, entry, fromMap: true }, r, r.entry, r.state)
    // No L1 to fill: evaluate()'s verdict without building an L1 entry.
    const now = Date.now()
    if (current && now < entry.fresh && now < entry.hard) {
      counters.l2Hits++
      if (hasGet()) events.emit('cache.get', E_L2_HIT)
      return entry.value
    }
    miss()
    return undefined
  }
  const fastGet = <T>(key: string, e: L1Entry | undefined, s: number): Promise<T | undefined> =>
    driver!.getThen(fullKey(key), afterGet as (raw: Buffer | string | null | typeof FAIL, r: GetRead) => T | undefined, { e: epoch, t: stack.tagEpoch, key, entry: e, state: s }, textReads)

  // Not an async function: the L2 hit's promise is the driver's own, returned as is (an async
  // wrapper resolving with it cost one more promise, a thenable job and two microtask hops per
  // hit). A synchronous throw still becomes a rejection, as from an async function.
  const slowGet = <T>(key: string): Promise<T | undefined> => {
    try {
      if (stack.closed) throw new RiClosedError('cache')
      const e = l1?.get(key)
      const s = e === undefined ? NONE : l1State(e, clockNow())
      if (s === FRESH && stack.trusted) {
        hit1()
        return Promise.resolve(e!.value as T)
      }
      if (driver !== undefined) {
        // get() reads without the per-key dedupe: a burst of misses for one key is rare for plain
        // gets (getOrSet has its own single-flight), and the bookkeeping costs every L2 hit.
        if (useFastRead()) return fastGet<T>(key, e, s)
        const since = snapshot()
        return driver.read(fullKey(key)).then((r) => afterL2<T>(key, r, since, e, s))
      }
      // No L2: L1 within grace is not enough, only a fresh entry answers.
      if (e !== undefined && s === FRESH) {
        hit1()
        return Promise.resolve(e.value as T)
      }
      miss()
      return Promise.resolve(undefined)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  const children = new Map<string, Cache>()

  // Fresh and trusted L1 entry, counted as an L1 hit; else undefined and nothing counted.
  const peekFresh: PeekFresh = <T>(key: string) => {
    if (l1 === undefined || stack.closed || !stack.trusted) return undefined
    const e = l1.get(key)
    if (e === undefined || l1State(e, clockNow()) !== FRESH) return undefined
    hit1()
    return { value: e.value as T, state: 'fresh', tier: 'l1', createdAt: e.created, freshUntil: e.fresh }
  }
  const cache: Cache = {
    name,
    events,
    ttl: defaults.ttl,
    get<T>(key: string): Promise<T | undefined> {
      if (l1 !== undefined && stack.trusted) {
        const e = l1.get(key)
        if (e !== undefined && clockNow() < e.fresh && (e.tags === undefined || tagVersions.check(e.tags, e.versions!) === TAGS_FRESH)) {
          counters.l1Hits++
          if (hasGet()) events.emit('cache.get', E_L1_HIT)
          return (e.hit ??= Promise.resolve(e.value)) as Promise<T>
        }
      }
      return slowGet<T>(key)
    },
    getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T> {
      if (l1 !== undefined && stack.trusted) {
        const e = l1.get(key)
        if (e !== undefined) {
          const t = clockNow()
          if (t < e.fresh && (e.tags === undefined || tagVersions.check(e.tags, e.versions!) === TAGS_FRESH)) {
            if (t >= e.refreshAt) refreshInBackground(key, loader, options, e)
            counters.l1Hits++
            if (hasGet()) events.emit('cache.get', E_L1_HIT)
            return (e.hit ??= Promise.resolve(e.value)) as Promise<T>
          }
        }
      }
      return slowGetOrSet(key, loader, options)
    },
    async set(key, value, options) {
      if (stack.closed) throw new RiClosedError('cache')
      const o = resolveCall(options)
      cancelFlight(key)
      await store(prepare(key, value, o.ttl, o.grace, o.tags, undefined), key, undefined)
    },
    async has(key) {
      return (await cache.get(key)) !== undefined
    },
    async delete(key) {
      if (stack.closed) throw new RiClosedError('cache')
      const inL1 = l1?.delete(key) ?? false
      touch(key)
      cancelFlight(key)
      if (events.has('cache.delete')) events.emit('cache.delete', { namespace: name, count: 1 })
      if (driver === undefined) return inL1
      const r = await driver.del([fullKey(key)], stack.message('d', name, [key]))
      return inL1 || (r !== FAIL && r > 0)
    },
    async getMany<T>(keys: readonly string[]): Promise<Array<T | undefined>> {
      if (stack.closed) throw new RiClosedError('cache')
      const out: Array<T | undefined> = new Array(keys.length)
      const missing: number[] = []
      const fallbacks: Array<L1Entry | undefined> = []
      const t = clockNow()
      for (let i = 0; i < keys.length; i++) {
        const e = l1?.get(keys[i]!)
        const s = e === undefined ? NONE : l1State(e, t)
        if (s === FRESH && stack.trusted) {
          hit1()
          out[i] = e!.value as T
        } else {
          missing.push(i)
          fallbacks.push(s === NONE ? undefined : e)
        }
      }
      if (missing.length === 0) return out
      const s0 = snapshot()
      const r = driver === undefined ? FAIL : await driver.readMany(missing.map((i) => fullKey(keys[i]!)))
      for (let j = 0; j < missing.length; j++) {
        const i = missing[j]!
        const key = keys[i]!
        if (r !== FAIL) {
          const read = r[j]
          const ev = read ? evaluate(read, key, s0) : null
          if (ev !== null && ev.state === FRESH) {
            counters.l2Hits++
            if (hasGet()) events.emit('cache.get', E_L2_HIT)
            fillRead(key, ev.entry, s0)
            out[i] = ev.entry.value as T
          } else miss()
          continue
        }
        const fb = fallbacks[j]
        if (fb !== undefined && (driver !== undefined || l1State(fb, t) === FRESH)) {
          staleServed()
          out[i] = fb.value as T
        } else miss()
      }
      return out
    },
    async setMany(entries) {
      if (stack.closed) throw new RiClosedError('cache')
      const prepared: Array<Prepared | undefined> = []
      for (const en of entries) {
        const o = resolveCall(en)
        cancelFlight(en.key)
        prepared.push(prepare(en.key, en.value, o.ttl, o.grace, o.tags, undefined, undefined, false))
      }
      await storeMany(prepared)
    },
    async deleteMany(keys) {
      if (stack.closed) throw new RiClosedError('cache')
      let count = 0
      for (const k of keys) {
        touch(k)
        if (l1?.delete(k)) count++
        cancelFlight(k)
      }
      if (events.has('cache.delete')) events.emit('cache.delete', { namespace: name, count: keys.length })
      if (driver === undefined || keys.length === 0) return count
      const r = await driver.del(keys.map(fullKey), stack.message('d', name, keys))
      return r === FAIL ? count : Math.max(count, r)
    },
    async getOrSetMany<T>(keys: readonly string[], loader: BatchLoader<T>, options?: SetOptions): Promise<Array<T | undefined>> {
      const out = await cache.getMany<T>(keys)
      const o = resolveCall(options)
      if (stack.closed) throw new RiClosedError('cache')
      // Per-key single-flight shared with getOrSet and other getOrSetMany calls: a missing key
      // already being loaded is awaited; the others get a flight of their own, settled by this
      // batch, and only they go to the loader.
      const mine: string[] = []
      const settle = new Map<string, { resolve: (v: unknown) => void; reject: (e: unknown) => void; flight: Flight }>()
      const waits: Array<Promise<void>> = []
      // Awaited together at the end (or not at all when our own loader throws first): a shared
      // load failing meanwhile must not surface as an unhandled rejection.
      const track = (p: Promise<void>) => {
        p.catch(noop)
        return p
      }
      for (let i = 0; i < keys.length; i++) {
        if (out[i] !== undefined) continue
        const key = keys[i]!
        const existing = flights.get(key)
        if (existing !== undefined) {
          if (existing.serveStale && existing.stale !== undefined) {
            staleServed()
            out[i] = existing.stale.value as T
          } else waits.push(track((existing.promise as Promise<T>).then((v) => void (out[i] = v))))
          continue
        }
        const flight: Flight = { promise: undefined as unknown as Promise<unknown>, stale: undefined, serveStale: false, cancelled: false }
        flight.promise = new Promise<unknown>((resolve, reject) => settle.set(key, { resolve, reject, flight }))
        // Nobody may await it but this batch: a rejection must not be reported as unhandled.
        flight.promise.catch(noop)
        flights.set(key, flight)
        mine.push(key)
        waits.push(track((flight.promise as Promise<T>).then((v) => void (out[i] = v))))
      }
      if (mine.length > 0) {
        const finish = () => {
          for (const [key, s] of settle) if (flights.get(key) === s.flight) flights.delete(key)
        }
        const observed = tagVersions.observe(o.tags === undefined ? nsTagOnly : [...o.tags, nsTag])
        counters.loads++
        const started = performance.now()
        let result: ReadonlyArray<T> | ReadonlyMap<string, T>
        try {
          result = await loader(mine)
        } catch (error) {
          counters.loaderErrors++
          if (events.has('cache.loader')) events.emit('cache.loader', { namespace: name, durationMs: performance.now() - started, outcome: 'error' })
          finish()
          for (const s of settle.values()) s.reject(error)
          throw error
        }
        if (events.has('cache.loader')) events.emit('cache.loader', { namespace: name, durationMs: performance.now() - started, outcome: 'ok' })
        const isMap = result instanceof Map
        const values: unknown[] = mine.map((key, j) => (isMap ? (result as ReadonlyMap<string, T>).get(key) : (result as ReadonlyArray<T> | null | undefined)?.[j]))
        try {
          const prepared: Array<Prepared | undefined> = []
          for (let j = 0; j < mine.length; j++) {
            // Deleted/cleared while loading: hand the value to the callers, but do not cache it.
            if (settle.get(mine[j]!)!.flight.cancelled) continue
            const value = values[j]
            const ttl = value === null || value === undefined ? (options?.ttl === undefined ? defaults.negativeTtl : o.ttl) : o.ttl
            prepared.push(prepare(mine[j]!, value, ttl, o.grace, o.tags, observed, undefined, false))
          }
          await storeMany(prepared)
        } finally {
          // Whatever happened to the write, every caller sharing these keys gets the values.
          finish()
          for (let j = 0; j < mine.length; j++) settle.get(mine[j]!)!.resolve(values[j])
        }
      }
      await Promise.all(waits)
      return out
    },
    async invalidateTags(list, options) {
      if (stack.closed) throw new RiClosedError('cache')
      const escaped = escapeTags(list)
      if (escaped === undefined) return
      const mode = options?.mode === 'delete' ? 'd' : 'e'
      if (events.has('cache.invalidate')) events.emit('cache.invalidate', { namespace: name, tags: list })
      await stack.invalidate(escaped, mode, name)
    },
    async clear() {
      if (stack.closed) throw new RiClosedError('cache')
      l1?.clear()
      touchAll()
      dropFlights()
      if (events.has('cache.clear')) events.emit('cache.clear', { namespace: name })
      await stack.invalidate(nsTagOnly, 'd', name, 'c')
    },
    namespace(child, options) {
      let c = children.get(child)
      if (c === undefined) {
        const d = checkNamespaceOptions(child, options, defaults)
        c = createNamespace(stack, name === '' ? child : `${name}:${child}`, d)
        children.set(child, c)
      }
      return c
    },
    async getEntry<T>(key: string): Promise<CacheEntryInfo<T> | undefined> {
      if (stack.closed) throw new RiClosedError('cache')
      const fresh = peekFresh<T>(key)
      if (fresh !== undefined) return fresh
      const e = l1?.get(key)
      const s = e === undefined ? NONE : l1State(e, clockNow())
      if (driver !== undefined) {
        const rd = readL2(key)
        const r = await rd.p
        if (r !== FAIL) {
          const ev = r === null ? null : evaluate(r, key, rd.s)
          if (ev !== null) {
            if (ev.state === FRESH) {
              counters.l2Hits++
              if (hasGet()) events.emit('cache.get', E_L2_HIT)
              fillRead(key, ev.entry, rd.s)
            } else staleServed()
            return { value: ev.entry.value as T, state: ev.state === FRESH ? 'fresh' : 'stale', tier: 'l2', createdAt: ev.entry.created, freshUntil: ev.entry.fresh }
          }
          miss()
          return undefined
        }
      }
      if (e !== undefined && s !== NONE) {
        staleServed()
        return { value: e.value as T, state: s === FRESH ? 'fresh' : 'stale', tier: 'l1', createdAt: e.created, freshUntil: e.fresh }
      }
      miss()
      return undefined
    },
    stats() {
      const bus = stack.bus
      return {
        namespace: name,
        l1: { entries: l1?.size ?? 0, size: l1?.calculatedSize ?? 0, hits: counters.l1Hits },
        l2: {
          hits: counters.l2Hits,
          requests: driver?.requests() ?? 0,
          errors: driver?.errors() ?? 0,
          circuit: driver?.breaker.state ?? 'none',
          decodeErrors: counters.decodeErrors,
        },
        misses: counters.misses,
        stale: counters.stale,
        loads: counters.loads,
        loaderErrors: counters.loaderErrors,
        loaderTimeouts: counters.loaderTimeouts,
        inflight: flights.size,
        tags: tagVersions.size,
        bus: bus === undefined ? undefined : { connected: bus.connected(), ...bus.stats() },
        invalidations: stack.counters.invalidations,
        pendingInvalidations: stack.counters.pendingInvalidations,
      }
    },
    async close() {
      if (stack.closed) return
      for (const ns of stack.namespaces.values()) {
        ns.dropAll()
        ns.dropFlights()
      }
      await stack.close()
    },
  }

  const storeMany = async (prepared: Array<Prepared | undefined>) => {
    const list = prepared.filter((p): p is Prepared => p !== undefined)
    if (list.length === 0) return
    for (const p of list) touch(p.key)
    const writes = list.filter((p) => p.write !== undefined)
    const commands = writes.map((p) => p.write!)
    // One bus message for the whole batch, published by the last write of the pipeline.
    if (commands.length > 0) commands[commands.length - 1] = { ...commands[commands.length - 1]!, message: stack.message('s', name, writes.map((p) => p.key)) }
    const r = commands.length === 0 || driver === undefined ? FAIL : await driver.writeMany(commands)
    const byKey = new Map<Prepared, number[] | undefined>()
    if (r !== FAIL) writes.forEach((p, i) => byKey.set(p, r[i] ?? undefined))
    for (const p of list) fillL1(p.key, settleVersions(p, byKey.get(p)))
    if (events.has('cache.set')) events.emit('cache.set', E_SET)
  }

  function dropFlights(keys?: readonly string[]) {
    if (keys === undefined) {
      for (const f of flights.values()) f.cancelled = true
      flights.clear()
    } else for (const k of keys) cancelFlight(k)
  }

  const handle: NamespaceHandle = {
    name,
    dropKeys: (keys) => {
      for (const k of keys) {
        touch(k)
        l1?.delete(k)
        if (waiters.size > 0) wake(k)
      }
    },
    dropAll: () => {
      touchAll()
      l1?.clear()
    },
    dropFlights,
  }
  Object.defineProperty(cache, kPeekFresh, { value: peekFresh })
  stack.register(handle)
  return cache
}

const TAGS_EXPIRED_LOCAL = 1
const NO_VERSIONS: number[] = []
