import type { RiEvents } from './events.js'
import { createEvents, listening } from './events.js'
import { type Answer, Exchange, type ExchangeInit, type ExchangeResolver, type FinishInfo } from './exchange.js'
import { createIpResolver, type IpResolverOptions } from './ip.js'
import { createEpisodes, type Logger, noopLogger } from './logger.js'
import { createOptionsChecker } from './options.js'
import { generateRequestId, isSafeRequestId, resolveRequestId } from './request-id.js'

export type MaybePromise<T> = T | Promise<T>

/**
 * A feature's hooks. Every hook is optional; all run in registration order.
 *
 * @example
 * const poweredBy: Feature = { name: 'powered-by', onRequest: (ex) => { ex.setHeader('x-powered-by', 'ri') } }
 */
export interface Feature {
  readonly name: string
  /** Before the handler. Return an `Answer` to respond at once (429, cached 304 ...). */
  onRequest?(exchange: Exchange): MaybePromise<Answer | undefined | void>
  /** Right before response headers are written: last chance to set headers. Synchronous. */
  onHeaders?(exchange: Exchange): void
  /** With the full response body, for features that store or transform it (response cache). */
  onSend?(exchange: Exchange, body: Uint8Array | string): MaybePromise<Uint8Array | string | undefined | void>
  /** After the response finished (or the client aborted). Observes only. */
  onResponse?(exchange: Exchange, info: FinishInfo): void
}

export interface PipelineOptions extends IpResolverOptions {
  /** Request header carrying an inbound request id. Default `x-request-id`. */
  requestIdHeader?: string
  /**
   * Echo the request id on the response (under `requestIdHeader`). Default false: the header costs
   * about 3 % of a minimal handler's throughput (Node validates and writes it on every response),
   * and the id is still in every log line and event ri writes.
   */
  echoRequestId?: boolean
  /**
   * Makes the id of a request that brought no safe one. Default `generateRequestId` (a random
   * per-process prefix and a counter); `() => crypto.randomUUID()` for opaque ids. A value that
   * is not a safe id (letters, digits, `._:~-`, at most 64) is replaced by a default one.
   */
  generateRequestId?: () => string
  events?: RiEvents
  logger?: Logger
}

/**
 * Runs features in order around a request. Adapters create the exchange, call `request`
 * before the handler, `headers` before writing, `send` with a buffered body, `finish` at the end.
 * A feature that throws is logged (once per episode) and skipped: the request goes on.
 *
 * @example
 * const pipeline = createPipeline([throttleFeature, cacheFeature], { trustProxy: 'loopback' })
 * const ex = pipeline.exchange({ method: req.method, url: req.url, headers: req.headers, remoteAddress })
 * const answer = await pipeline.request(ex)
 */
export interface Pipeline {
  readonly features: readonly Feature[]
  readonly events: RiEvents
  readonly logger: Logger
  exchange(init: ExchangeInit): Exchange
  request(exchange: Exchange): MaybePromise<Answer | undefined>
  headers(exchange: Exchange): void
  send(exchange: Exchange, body: Uint8Array | string): MaybePromise<Uint8Array | string>
  finish(exchange: Exchange, result: { status: number; aborted?: boolean; requestBytes?: number; responseBytes?: number }): void
}

const PIPELINE_OPTIONS = ['trustProxy', 'header', 'requestIdHeader', 'echoRequestId', 'generateRequestId', 'events', 'logger'] as const

export function createPipeline(features: readonly Feature[], options: PipelineOptions = {}): Pipeline {
  const check = createOptionsChecker('createPipeline')
  check.known(options, PIPELINE_OPTIONS)
  const requestIdHeader = check.string('requestIdHeader', options.requestIdHeader, 'x-request-id', /^[a-z0-9-]{1,64}$/, 'a lower-case header name').toLowerCase()
  const echo = check.boolean('echoRequestId', options.echoRequestId, false)
  const custom = options.generateRequestId
  if (custom !== undefined && typeof custom !== 'function') check.problem('generateRequestId', custom, 'a function returning a request id')
  features.forEach((f, i) => {
    if (!f || typeof f.name !== 'string') check.problem(`features[${i}]`, f, 'a feature object with a name and hooks')
  })
  check.done()
  const resolveIp = createIpResolver({ trustProxy: options.trustProxy, header: options.header })
  const events = options.events ?? createEvents()
  const hasActive = listening(events, 'http.active')
  const hasRequest = listening(events, 'http.request')
  const logger = options.logger ?? noopLogger
  const episodes = createEpisodes(logger)
  const newRequestId =
    custom === undefined
      ? generateRequestId
      : () => {
          const id = custom()
          if (isSafeRequestId(id)) return id
          episodes.begin('generateRequestId', 'generateRequestId returned an unsafe id; using a default one', { id: String(id).slice(0, 80) })
          return generateRequestId()
        }
  // Worked out when something first reads them (a log line, the echo, a throttle key, a handler):
  // most requests read neither.
  const ipOf: ExchangeResolver = (ex) => resolveIp(ex.remoteAddress, ex.headers)
  const idOf: ExchangeResolver = (ex) => resolveRequestId(ex.headers[requestIdHeader], newRequestId)
  const list = Object.freeze([...features])
  // Hook lists are computed once so the request path never checks features without a hook.
  const onRequest = list.filter((f) => f.onRequest)
  const onHeaders = list.filter((f) => f.onHeaders)
  const onSend = list.filter((f) => f.onSend)
  const onResponse = list.filter((f) => f.onResponse)

  const failed = (feature: Feature, hook: string, error: unknown) => {
    episodes.begin(`${feature.name}.${hook}`, `ri feature "${feature.name}" failed in ${hook}; request continues without it`, {
      err: error,
    })
  }

  const runRequest = async (ex: Exchange, from: number, pending: Promise<Answer | undefined | void>): Promise<Answer | undefined> => {
    let i = from
    try {
      const answer = await pending
      if (answer) return answer
    } catch (error) {
      failed(onRequest[i]!, 'onRequest', error)
    }
    for (i = from + 1; i < onRequest.length; i++) {
      try {
        const answer = await onRequest[i]!.onRequest!(ex)
        if (answer) return answer
      } catch (error) {
        failed(onRequest[i]!, 'onRequest', error)
      }
    }
    return undefined
  }

  const runSend = async (ex: Exchange, body: Uint8Array | string): Promise<Uint8Array | string> => {
    let current = body
    for (const f of onSend) {
      try {
        const next = await f.onSend!(ex, current)
        if (next !== undefined) current = next
      } catch (error) {
        failed(f, 'onSend', error)
      }
    }
    return current
  }

  return {
    features: list,
    events,
    logger,
    exchange(init) {
      const ex = new Exchange(init, ipOf, idOf)
      if (echo) ex.responseHeaders[requestIdHeader] = ex.requestId
      if (hasActive()) events.emit('http.active', { delta: 1 })
      return ex
    },
    request(ex) {
      // Stays synchronous until a hook returns a promise: no microtask per feature on the fast path.
      for (let i = 0; i < onRequest.length; i++) {
        let result: MaybePromise<Answer | undefined | void>
        try {
          result = onRequest[i]!.onRequest!(ex)
        } catch (error) {
          failed(onRequest[i]!, 'onRequest', error)
          continue
        }
        if (result && typeof (result as Promise<unknown>).then === 'function') return runRequest(ex, i, result as Promise<Answer | undefined>)
        if (result) return result as Answer
      }
      return undefined
    },
    headers(ex) {
      for (const f of onHeaders) {
        try {
          f.onHeaders!(ex)
        } catch (error) {
          failed(f, 'onHeaders', error)
        }
      }
    },
    send(ex, body) {
      return onSend.length === 0 ? body : runSend(ex, body)
    },
    finish(ex, result) {
      if (ex.finished) return
      ex.finished = true
      ex.status = result.status
      const info: FinishInfo = {
        status: result.status,
        durationMs: ex.elapsed(),
        aborted: result.aborted ?? false,
        requestBytes: result.requestBytes,
        responseBytes: result.responseBytes,
      }
      for (const f of onResponse) {
        try {
          f.onResponse!(ex, info)
        } catch (error) {
          failed(f, 'onResponse', error)
        }
      }
      ex.runFinishListeners(info, (error) => logger.error({ err: error }, 'ri onFinish listener failed'))
      if (hasActive()) events.emit('http.active', { delta: -1 })
      if (hasRequest()) {
        events.emit('http.request', {
          method: ex.method,
          route: ex.route,
          status: info.status,
          durationMs: info.durationMs,
          aborted: info.aborted,
          requestBytes: info.requestBytes,
          responseBytes: info.responseBytes,
          requestId: ex.requestId,
        })
      }
    },
  }
}

/** A JSON `Answer` with the right content type. */
export function jsonAnswer(status: number, body: unknown, headers: Record<string, string> = {}): Answer {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(body) }
}
