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

  const onReady = () => {
    if (closed) return
    sub.subscribe(channel).then(
      () => {
        if (closed) return
        // Whatever happened while we were not listening is unknown: start from a clean L1.
        options.onDistrust('connected')
        seqs.clear()
        connected = true
        episodes.end('cache.bus', 'cache bus subscribed again; L1 trusted again')
        state('connected')
      },
      (error: unknown) => {
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
      try {
        await sub.quit()
      } catch {
        sub.disconnect()
      }
    },
  }
}
