import { randomUUID } from 'node:crypto'
import { createEpisodes, type Episodes } from '@ri/core'
import { type Bus, type BusMessage, createBus } from '../bus/bus.js'
import { createL2Driver, FAIL, type L2Driver } from '../l2/driver.js'
import type { ResolvedConfig } from '../options.js'
import { escapeTag } from '../serializer.js'
import { TagVersions } from './tags.js'

/** What a namespace registers so bus messages and distrust reach its L1. */
export interface NamespaceHandle {
  readonly name: string
  dropKeys(keys: readonly string[]): void
  dropAll(): void
  /** Drops in-flight loads so a clear/delete is not undone by a load that started before it. */
  dropFlights(keys?: readonly string[]): void
}

/**
 * Everything namespaces share: connections, the bus, tag versions, counters. One per
 * `createCache`; `cache.namespace()` children reuse it.
 */
export interface Stack {
  readonly config: ResolvedConfig
  readonly driver: L2Driver | undefined
  readonly bus: Bus | undefined
  readonly tags: TagVersions
  readonly episodes: Episodes
  readonly origin: string
  /** Prefix of tag keys in Redis; the tag (escaped) and `}` follow. */
  readonly tagPrefix: string
  /** False while the bus is down: L1 hits are then revalidated against L2. */
  trusted: boolean
  /** Bumped by every invalidation seen here (local or from the bus). */
  tagEpoch: number
  closed: boolean
  readonly namespaces: Map<string, NamespaceHandle>
  register(ns: NamespaceHandle): void
  /** Bumps tags in Redis (or locally when it is unreachable, replayed when it returns). */
  invalidate(tags: readonly string[], mode: 'e' | 'd', namespace: string, type?: 'i' | 'c'): Promise<void>
  /** Bus message for a write/delete ('' without a bus). */
  message(type: 's' | 'd', namespace: string, keys: readonly string[]): string
  close(): Promise<void>
  readonly counters: { invalidations: number; pendingInvalidations: number; distrusts: number }
}

/** Escaped name of the implicit tag every L2 entry of a namespace carries (bumped by clear()). */
export function namespaceTag(name: string): string {
  return escapeTag(`#ns:${name}`)
}

/** How often invalidations that could not reach Redis are tried again while any are pending. */
const PENDING_RETRY_MS = 250

export function createStack(config: ResolvedConfig): Stack {
  const episodes = createEpisodes(config.logger)
  const origin = randomUUID()
  const tagPrefix = `${config.prefix}t:{`
  const tags = new TagVersions(config.maxTags)
  const namespaces = new Map<string, NamespaceHandle>()
  const pending: Array<{ tags: readonly string[]; mode: 'e' | 'd'; namespace: string; type: 'i' | 'c' }> = []
  let flushing = false
  // Replays are also retried on a timer: a failed invalidation while the breaker stays closed (one
  // timed-out command) or a replay that failed once would otherwise wait for an event (breaker
  // closing, bus reconnecting) that may never come, and the write would never reach Redis.
  let retry: NodeJS.Timeout | undefined
  const scheduleFlush = () => {
    if (retry !== undefined || pending.length === 0 || stack.closed) return
    retry = setTimeout(() => {
      retry = undefined
      void flushPending()
    }, PENDING_RETRY_MS)
    retry.unref()
  }

  const stack: Stack = {
    config,
    driver: undefined,
    bus: undefined,
    tags,
    episodes,
    origin,
    tagPrefix,
    trusted: true,
    tagEpoch: 0,
    closed: false,
    namespaces,
    counters: { invalidations: 0, pendingInvalidations: 0, distrusts: 0 },
    register(ns) {
      namespaces.set(ns.name, ns)
    },
    message(type, namespace, keys) {
      return stack.bus === undefined ? '' : stack.bus.message({ y: type, n: namespace, k: keys })
    },
    async invalidate(list, mode, namespace, type = 'i') {
      stack.counters.invalidations++
      stack.tagEpoch++
      const driver = stack.driver
      if (driver === undefined) {
        for (const t of list) tags.bump(t, mode, false)
        return
      }
      const r = await driver.invalidate(list, mode, stack.bus?.invalidationHead({ y: type, n: namespace, g: list }))
      if (r === FAIL) {
        // Applied here at once; replayed into Redis (and the bus) when it answers again.
        for (const t of list) tags.bump(t, mode, true)
        pending.push({ tags: list, mode, namespace, type })
        stack.counters.pendingInvalidations = pending.length
        episodes.begin('cache.invalidate', 'tag invalidation could not reach Redis; applied on this instance, will be replayed when Redis answers')
        scheduleFlush()
        return
      }
      stack.tagEpoch++
      for (let i = 0; i < list.length; i++) tags.set(list[i]!, r[2 * i]!, r[2 * i + 1]!)
    },
    async close() {
      stack.closed = true
      if (retry !== undefined) clearTimeout(retry)
      retry = undefined
      await stack.bus?.close()
      await stack.driver?.close()
    },
  }

  /** Every L2 entry carries its namespace tag: know those versions before the first read. */
  const warmNamespaceTags = async () => {
    const driver = stack.driver
    if (driver === undefined || namespaces.size === 0) return
    const list = [...namespaces.keys()].map(namespaceTag)
    const epoch = stack.tagEpoch
    const r = await driver.versions(list)
    if (r === FAIL || epoch !== stack.tagEpoch) return
    for (let i = 0; i < list.length; i++) tags.set(list[i]!, r[2 * i]!, r[2 * i + 1]!)
  }

  const flushPending = async () => {
    if (flushing || pending.length === 0 || stack.driver === undefined) return
    flushing = true
    try {
      while (pending.length > 0) {
        const item = pending[0]!
        const r = await stack.driver.invalidate(item.tags, item.mode, stack.bus?.invalidationHead({ y: item.type, n: item.namespace, g: item.tags }))
        if (r === FAIL) return
        pending.shift()
        for (let i = 0; i < item.tags.length; i++) tags.settle(item.tags[i]!, r[2 * i]!, r[2 * i + 1]!)
      }
      episodes.end('cache.invalidate', 'pending tag invalidations replayed into Redis')
    } finally {
      stack.counters.pendingInvalidations = pending.length
      flushing = false
      scheduleFlush()
    }
  }

  if (config.l2) {
    const driver = createL2Driver({
      client: config.l2.client,
      timeout: config.l2Timeout,
      circuitFailures: config.l2.circuitFailures,
      circuitCooldown: config.l2.circuitCooldown,
      tagPrefix,
      channel: config.bus ? config.bus.channel : '',
      namespace: config.namespace,
      events: config.events,
      logger: config.logger,
      episodes,
      onRecover: () => void flushPending(),
    })
    ;(stack as { driver: L2Driver }).driver = driver
    if (config.bus) {
      stack.trusted = false
      const onMessage = (msg: BusMessage) => {
        if (msg.y === 'i' || msg.y === 'c') {
          stack.tagEpoch++
          const g = msg.g
          const v = msg.v
          if (!Array.isArray(g) || !Array.isArray(v)) return
          for (let i = 0; i < g.length; i++) {
            const tag = g[i]
            const ver = Number(v[2 * i])
            const del = Number(v[2 * i + 1])
            if (typeof tag !== 'string' || !Number.isSafeInteger(ver) || !Number.isSafeInteger(del)) continue
            // Messages may cross: never moves a version backwards (see TagVersions.advance).
            tags.advance(tag, ver, del)
          }
          if (msg.y === 'i') return
        }
        const ns = namespaces.get(msg.n)
        if (ns === undefined) return
        if (msg.y === 'c') {
          ns.dropAll()
          ns.dropFlights()
        } else if (Array.isArray(msg.k)) {
          const keys = msg.k.filter((k): k is string => typeof k === 'string')
          ns.dropKeys(keys)
          if (msg.y === 'd') ns.dropFlights(keys)
        }
      }
      const bus = createBus({
        client: driver.client,
        channel: config.bus.channel,
        origin,
        events: config.events,
        logger: config.logger,
        episodes,
        onMessage,
        onDistrust: (reason) => {
          stack.counters.distrusts++
          if (reason === 'disconnected') {
            // Keep L1 as the fail-safe fallback (Redis may be down), but stop trusting its hits:
            // reads go to L2 first until the bus is back.
            stack.trusted = false
            return
          }
          // Reconnected or a lost message: whatever L1 holds may be stale.
          stack.tagEpoch++
          for (const ns of namespaces.values()) ns.dropAll()
          tags.clear()
          if (reason === 'connected') {
            stack.trusted = true
            void flushPending()
            void warmNamespaceTags()
          }
        },
      })
      ;(stack as { bus: Bus }).bus = bus
    }
  }
  return stack
}
