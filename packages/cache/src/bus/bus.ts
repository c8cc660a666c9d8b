import type { Episodes, Logger, RiEvents } from '@ri/core'
import type { Redis } from 'ioredis'
import type { RedisLike } from '../options.js'

/**
 * A bus message. It carries keys and tags, never values.
 *
 * @example
 * // {"o":"6f1c…","s":42,"t":1732500000000,"y":"i","n":"users","g":["user:1"],"v":[7,0]}
 * `o` is the origin instance, `s` its
 * sequence number (a gap means a message was lost: the receiver distrusts its L1).
 */
export interface BusMessage {
  /** origin */
  readonly o: string
  /** per-origin sequence */
  readonly s: number
  /** type: 's' set, 'd' delete, 'i' tag invalidation, 'c' namespace clear */
  readonly y: 's' | 'd' | 'i' | 'c'
  /** namespace */
  readonly n: string
  readonly k?: readonly string[]
  /** tags (escaped) and their versions after the bump: [v1, d1, v2, d2...] */
  readonly g?: readonly string[]
  readonly v?: readonly number[]
  /** sender's clock, for the lag metric only */
  readonly t: number
}

export type BusPayload = Pick<BusMessage, 'y' | 'n' | 'k' | 'g' | 'v'>

export interface Bus {
  readonly origin: string
  readonly channel: string
  /** True while subscribed; L1 is trusted only then. */
  connected(): boolean
  /**
   * The next message of this origin, as JSON. The L2 scripts publish it in the same round trip
   * as the write it describes; a write that fails leaves a sequence gap, which receivers treat
   * as "distrust L1".
   */
  message(payload: BusPayload): string
  /** A tag-invalidation message without its versions: the script appends `v1,d1,...]}`. */
  invalidationHead(payload: Omit<BusPayload, 'v'>): string
  /** Messages received / sent, gaps and disconnects seen. */
  stats(): { received: number; sent: number; gaps: number; disconnects: number }
  close(): Promise<void>
}

const MAX_ORIGINS = 10_000

export function createBus(options: {
  client: RedisLike
  channel: string
  origin: string
  events: RiEvents
  logger: Logger
  episodes: Episodes
  onMessage(message: BusMessage): void
  /** L1 can no longer be trusted (disconnect, reconnect, gap): drop or revalidate it. */
  onDistrust(reason: 'connected' | 'disconnected' | 'gap'): void
}): Bus {
  const { channel, origin, events, episodes } = options
  const sub = (options.client as Redis).duplicate() as Redis
  sub.on('error', () => {})
  const seqs = new Map<string, number>()
  let connected = false
  let closed = false
  let seq = 0
  let received = 0
  let sent = 0
  let gaps = 0
  let disconnects = 0

  const state = (s: 'connected' | 'disconnected' | 'gap') => {
    if (events.has('cache.bus.state')) events.emit('cache.bus.state', { state: s })
  }

  let clusterWatch: (() => void) | undefined
  /** Cluster: a (re)subscribe failed; the watcher retries it. */
  let retrySubscribe = false
  const onReady = () => {
    if (closed) return
    sub.subscribe(channel).then(
      () => {
        if (closed) return
        // Whatever happened while we were not listening is unknown: start from a clean L1.
        options.onDistrust('connected')
        seqs.clear()
        connected = true
        // Cluster: start watching the connection that now holds the subscription.
        clusterWatch?.()
        episodes.end('cache.bus', 'cache bus subscribed again; L1 trusted again')
        state('connected')
      },
      (error: unknown) => {
        if (clusterWatch !== undefined) retrySubscribe = true
        episodes.begin('cache.bus', 'cache bus could not subscribe; L1 is bypassed until it does', { err: error })
      },
    )
  }
  const onDown = () => {
    if (!connected) return
    connected = false
    disconnects++
    options.onDistrust('disconnected')
    episodes.begin('cache.bus', 'cache bus disconnected; L1 is bypassed until it reconnects')
    state('disconnected')
  }

  sub.on('ready', onReady)
  sub.on('close', onDown)
  sub.on('end', onDown)
  sub.on('reconnecting', onDown)
  if (sub.status === 'ready') onReady()

  // On an ioredis Cluster the subscription lives on ONE node's connection, owned by the
  // Cluster's internal subscriber. When that node goes away ioredis silently re-subscribes on
  // another node; the Cluster itself emits nothing, and messages published meanwhile are lost.
  // So watch that connection: its 'close' distrusts L1 at once, and a new, ready connection
  // counts as a reconnect (L1 dropped, then trusted again). The internal shape is checked
  // defensively: if it ever changes, the watcher simply finds nothing to watch.
  let watcher: NodeJS.Timeout | undefined
  if ((sub as unknown as { isCluster?: boolean }).isCluster === true) {
    let watched: Redis | undefined
    let recovering = false
    const instance = (): Redis | undefined => {
      const s = (sub as unknown as { subscriber?: { getInstance?: () => Redis | null } }).subscriber
      return typeof s?.getInstance === 'function' ? (s.getInstance() ?? undefined) : undefined
    }
    const watch = () => {
      if (closed) return
      const inst = instance()
      if (inst !== watched) {
        if (watched !== undefined) {
          // Replaced: whatever the old connection missed is unknown.
          onDown()
          recovering = true
        }
        watched = inst
        inst?.once('close', () => {
          if (watched === inst) {
            onDown()
            recovering = true
          }
        })
      }
      if ((recovering || retrySubscribe) && inst !== undefined && inst.status === 'ready' && sub.status === 'ready') {
        recovering = false
        retrySubscribe = false
        onReady()
      }
    }
    clusterWatch = watch
    watcher = setInterval(watch, 100)
    watcher.unref()
  }

  sub.on('message', (ch: string, text: string) => {
    if (ch !== channel || !connected) return
    let msg: BusMessage
    try {
      msg = JSON.parse(text) as BusMessage
    } catch {
      return
    }
    if (msg === null || typeof msg !== 'object' || typeof msg.o !== 'string' || typeof msg.s !== 'number' || typeof msg.n !== 'string') return
    if (msg.o === origin) return
    received++
    const last = seqs.get(msg.o)
    if (last !== undefined && msg.s !== last + 1) {
      gaps++
      options.onDistrust('gap')
      state('gap')
    }
    if (last === undefined && seqs.size >= MAX_ORIGINS) seqs.delete(seqs.keys().next().value as string)
    seqs.set(msg.o, msg.s)
    if (events.has('cache.bus.message')) events.emit('cache.bus.message', { direction: 'in', type: msg.y, lagMs: Date.now() - msg.t })
    try {
      options.onMessage(msg)
    } catch (error) {
      options.logger.error({ err: error }, 'cache bus message handler failed')
    }
  })

  const out = (type: string) => {
    sent++
    if (events.has('cache.bus.message')) events.emit('cache.bus.message', { direction: 'out', type })
  }
  return {
    origin,
    channel,
    connected: () => connected,
    message(payload) {
      out(payload.y)
      return JSON.stringify({ o: origin, s: ++seq, t: Date.now(), ...payload })
    },
    invalidationHead(payload) {
      out(payload.y)
      const json = JSON.stringify({ o: origin, s: ++seq, t: Date.now(), ...payload })
      return `${json.slice(0, -1)},"v":[`
    },
    stats: () => ({ received, sent, gaps, disconnects }),
    async close() {
      closed = true
      connected = false
      if (watcher !== undefined) clearInterval(watcher)
      try {
        await sub.quit()
      } catch {
        sub.disconnect()
      }
    },
  }
}
