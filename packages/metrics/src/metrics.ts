import { timingSafeEqual, createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { context as otelContext, type MeterProvider, trace, type Span } from '@opentelemetry/api'
import {
  type Answer,
  createEpisodes,
  createOptionsChecker,
  type Exchange,
  type Feature,
  type FinishInfo,
  isPlainObject,
  type Logger,
  noopLogger,
  normalizeMethod,
  type RiEvents,
} from '@ri/core'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { createClusterScraper, type ClusterScraper } from './cluster.js'
import { createFastHistogram, type HistogramSeries } from './fast.js'
import { negotiate, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, render } from './exposition.js'
import { OVERFLOW } from './guard.js'
import { createOtelBridge } from './otel.js'
import { createSdkMetrics } from './sdk.js'

/** OpenTelemetry's stable HTTP duration buckets (seconds). */
export const HTTP_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
])
/** Body size buckets (bytes) for the opt-in size histograms. */
export const SIZE_BUCKETS: readonly number[] = Object.freeze([100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000])

/** Defaults of `createMetrics`, frozen. */
export const DEFAULTS = Object.freeze({
  prefix: '',
  buckets: HTTP_DURATION_BUCKETS,
  defaultMetrics: true as boolean | DefaultMetricsOptions,
  maxSeries: 1000,
  unmatchedRoute: '__unmatched__',
  exemplars: true,
  sizes: false as boolean,
  otel: true as boolean,
  clusterTimeoutMs: 3000,
  path: '/metrics',
})

/** Options passed through to prom-client's `collectDefaultMetrics`. */
export interface DefaultMetricsOptions {
  gcDurationBuckets?: number[]
  eventLoopMonitoringPrecision?: number
  labels?: Record<string, string>
}

export interface MetricsOptions {
  /** prom-client registry to register into. Default: a new `Registry` (never the global one). */
  registry?: Registry<any>
  /** Prepended to every metric name ri creates (also to process metrics). Default `''`. */
  prefix?: string
  /** Buckets (seconds) of `http_server_request_duration_seconds`. Default: OpenTelemetry's stable buckets. */
  buckets?: readonly number[]
  /** Node process metrics (prom-client `collectDefaultMetrics`). Default true. */
  defaultMetrics?: boolean | DefaultMetricsOptions
  /** Hard cap of label sets per metric; beyond it one overflow series. Default 1000. */
  maxSeries?: number
  /** `route` label of requests no route matched. Default `__unmatched__`. */
  unmatchedRoute?: string
  /** Attach the active trace id to latency observations (shown under OpenMetrics only). Default true. */
  exemplars?: boolean
  /** Request/response body size histograms. Default false. */
  sizes?: boolean
  /** Also record `http.server.request.duration` through @opentelemetry/api. Default true; or a MeterProvider to use. */
  otel?: boolean | MeterProvider
  /** Aggregate a Node `cluster`: workers answer the primary, the primary serves the sum. Default false. */
  cluster?: boolean | { timeout?: number | string }
  /** Event buses to observe right away (same as calling `observe` for each). */
  events?: RiEvents | readonly RiEvents[]
  logger?: Logger
}

/** The neutral response of the scrape handler. */
export interface ScrapeResponse {
  status: number
  headers: Record<string, string>
  body: string
}

export interface MetricsFeatureOptions {
  /** Path answered with the scrape; `false` to only record (serve with `listen`). Default `/metrics`. */
  path?: string | false
  /** Require `Authorization: Bearer <token>` on the scrape path. */
  token?: string
}

export interface MetricsListenOptions {
  port?: number
  host?: string
  path?: string
  token?: string
}

export interface MetricsServer {
  readonly port: number
  readonly host: string
  readonly url: string
  readonly server: http.Server
  close(): Promise<void>
}

/**
 * One prom-client registry for everything ri does: HTTP RED metrics, SDK metrics from the
 * feature packages' events, the scrape handler and the OpenTelemetry bridge.
 *
 * @example
 * const metrics = createMetrics({ prefix: 'shop_' })
 * metrics.observe(cache.events)
 * const pipeline = createPipeline([metrics.feature({ token: process.env.METRICS_TOKEN }), slowlog.feature()])
 */
export interface Metrics {
  readonly registry: Registry<any>
  /** Subscribes to a core event bus (cache, throttle, db, health, slowlog events). Returns an unsubscribe. */
  observe(events: RiEvents): () => void
  /** A core Feature: answers the scrape path and records HTTP RED metrics for every other request. */
  feature(options?: MetricsFeatureOptions): Feature
  /** The neutral scrape handler: `(acceptHeader) => Promise<{ status, headers, body }>`. */
  handler(): (accept?: string) => Promise<ScrapeResponse>
  /** Serves the scrape on its own port (keep it off the public listener). */
  listen(options?: MetricsListenOptions): Promise<MetricsServer>
  /** Records one finished request (what the feature does in `onResponse`), for custom bindings. */
  record(method: string, route: string | undefined, status: number, durationMs: number, span?: Span): void
  /** Unsubscribes from every bus and closes servers started by `listen`. */
  close(): Promise<void>
}

const OPTIONS = ['registry', 'prefix', 'buckets', 'defaultMetrics', 'maxSeries', 'unmatchedRoute', 'exemplars', 'sizes', 'otel', 'cluster', 'events', 'logger'] as const
const NAME_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/
const STATE_KEY = 'metrics'
const SPAN_KEY = 'metrics.span'
const ACTIVE = 1
const SCRAPE = 2

interface SeriesEntry {
  readonly labels: { method: string; route: string; status_code: string }
  readonly series: HistogramSeries
  readonly attributes: Record<string, string | number>
}

/**
 * Creates the metrics registry and its instruments. Options are validated once; invalid ones
 * throw a `RiConfigError` naming each.
 *
 * @example
 * import { createMetrics } from '@ri/metrics'
 * const metrics = createMetrics({ buckets: [0.01, 0.1, 1], defaultMetrics: false })
 * const scrape = metrics.handler()
 * const { status, headers, body } = await scrape('text/plain')
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const check = createOptionsChecker('createMetrics')
  check.known(options, OPTIONS)
  const prefix = check.string('prefix', options.prefix, DEFAULTS.prefix, NAME_RE, 'a metric name prefix such as "myapp_" (letters, digits, _ and :)')
  const buckets = options.buckets === undefined ? DEFAULTS.buckets : validBuckets(options.buckets) ? [...options.buckets] : (check.problem('buckets', options.buckets, 'a non-empty array of increasing positive finite numbers (seconds)'), DEFAULTS.buckets)
  const maxSeries = check.integer('maxSeries', options.maxSeries, DEFAULTS.maxSeries, { min: 1, max: 1_000_000 })
  const unmatchedRoute = check.string('unmatchedRoute', options.unmatchedRoute, DEFAULTS.unmatchedRoute, /^.{1,128}$/, 'a non-empty string of at most 128 characters')
  const exemplars = check.boolean('exemplars', options.exemplars, DEFAULTS.exemplars)
  const sizes = check.boolean('sizes', options.sizes, DEFAULTS.sizes)
  let defaultMetrics: false | DefaultMetricsOptions = {}
  if (options.defaultMetrics === false) defaultMetrics = false
  else if (isPlainObject(options.defaultMetrics)) {
    check.known(options.defaultMetrics, ['gcDurationBuckets', 'eventLoopMonitoringPrecision', 'labels'], 'defaultMetrics')
    defaultMetrics = options.defaultMetrics
  } else if (options.defaultMetrics !== undefined && options.defaultMetrics !== true) {
    check.problem('defaultMetrics', options.defaultMetrics, 'true, false or prom-client collectDefaultMetrics options')
  }
  let meterProvider: MeterProvider | undefined
  let otel = DEFAULTS.otel
  if (typeof options.otel === 'object' && options.otel !== null && typeof (options.otel as MeterProvider).getMeter === 'function') {
    meterProvider = options.otel as MeterProvider
  } else otel = check.boolean('otel', options.otel, DEFAULTS.otel)
  let clusterTimeoutMs: number | undefined
  if (options.cluster === true) clusterTimeoutMs = DEFAULTS.clusterTimeoutMs
  else if (isPlainObject(options.cluster)) {
    check.known(options.cluster, ['timeout'], 'cluster')
    clusterTimeoutMs = check.duration('cluster.timeout', options.cluster.timeout, DEFAULTS.clusterTimeoutMs)
  } else if (options.cluster !== undefined && options.cluster !== false) {
    check.problem('cluster', options.cluster, 'true, false or { timeout }')
  }
  const registry = options.registry ?? new Registry()
  if (options.registry !== undefined && (typeof registry !== 'object' || typeof (registry as Registry).registerMetric !== 'function')) {
    check.problem('registry', options.registry, 'a prom-client Registry')
  }
  const busList = options.events === undefined ? [] : Array.isArray(options.events) ? options.events : [options.events]
  busList.forEach((bus, i) => {
    if (!bus || typeof (bus as RiEvents).on !== 'function') check.problem(`events[${i}]`, bus, 'an RiEvents bus from createEvents()')
  })
  if (options.logger !== undefined && (typeof options.logger !== 'object' || typeof options.logger.warn !== 'function')) {
    check.problem('logger', options.logger, 'a pino-compatible logger')
  }
  check.done()

  const logger = options.logger ?? noopLogger
  const episodes = createEpisodes(logger)
  const registers = [registry]

  const dropped = new Counter<'metric'>({
    name: `${prefix}ri_metrics_dropped_label_sets_total`,
    help: 'Label sets folded into the overflow series because a metric reached its series cap.',
    labelNames: ['metric'],
    registers,
  })
  // Gauges read at scrape time: the request path only touches a number.
  let active = 0
  new Gauge({
    name: `${prefix}http_server_active_requests`,
    help: 'Number of HTTP requests in flight.',
    registers,
    collect() {
      this.set(active)
    },
  })
  const durationName = `${prefix}http_server_request_duration_seconds`
  // Recorded on every request: series resolved once, no prom-client label hashing per observe.
  // Rendered by the registry like any histogram (exemplars under OpenMetrics only).
  const duration = createFastHistogram(registry, {
    name: durationName,
    help: 'Duration of HTTP server requests, by method, route template and status code.',
    labelNames: ['method', 'route', 'status_code'],
    buckets,
  })
  const requestSize = sizes
    ? new Histogram({ name: `${prefix}http_server_request_body_size_bytes`, help: 'Size of HTTP request bodies.', labelNames: ['method', 'route', 'status_code'], buckets: [...SIZE_BUCKETS], registers })
    : undefined
  const responseSize = sizes
    ? new Histogram({ name: `${prefix}http_server_response_body_size_bytes`, help: 'Size of HTTP response bodies.', labelNames: ['method', 'route', 'status_code'], buckets: [...SIZE_BUCKETS], registers })
    : undefined

  if (defaultMetrics) collectDefaultMetrics({ ...defaultMetrics, register: registry, prefix })

  const sdk = createSdkMetrics({ registry, prefix, maxSeries, unmatchedRoute, dropped })
  const bridge = otel ? createOtelBridge(buckets, meterProvider) : undefined

  // method -> route -> status -> series. Nested maps: no key string built per request.
  const series = new Map<string, Map<string, Map<number, SeriesEntry>>>()
  let seriesCount = 0
  const overflowLabels = { method: OVERFLOW, route: OVERFLOW, status_code: OVERFLOW }
  // Created on the first overflow only: no zero-valued overflow series in every scrape.
  let overflowEntry: SeriesEntry | undefined
  const overflow = (): SeriesEntry =>
    (overflowEntry ??= {
      labels: overflowLabels,
      series: duration.series(overflowLabels),
      attributes: { 'http.request.method': '_OTHER', 'http.route': OVERFLOW },
    })
  const droppedLabels = { metric: durationName }
  // The series recorded last: a run of requests to one route (the common case under load) skips
  // the three map lookups. Only series held in `series` are kept here, never the overflow one.
  let last: SeriesEntry | undefined
  let lastMethod = ''
  let lastRoute = ''
  let lastStatus = 0
  const remember = (method: string, route: string, status: number, entry: SeriesEntry): SeriesEntry => {
    lastMethod = method
    lastRoute = route
    lastStatus = status
    return (last = entry)
  }
  const entryFor = (method: string, route: string | undefined, status: number): SeriesEntry => {
    const r = route ?? unmatchedRoute
    if (status === lastStatus && r === lastRoute && method === lastMethod && last !== undefined) return last
    let byRoute = series.get(method)
    const byStatus = byRoute?.get(r)
    const hit = byStatus?.get(status)
    if (hit) return remember(method, r, status, hit)
    if (seriesCount >= maxSeries) {
      dropped.inc(droppedLabels)
      return overflow()
    }
    seriesCount++
    const labels = { method, route: r, status_code: String(status) }
    const entry: SeriesEntry = {
      labels,
      series: duration.series(labels),
      attributes: { 'http.request.method': method, 'http.route': r, 'http.response.status_code': status },
    }
    if (!byRoute) series.set(method, (byRoute = new Map()))
    if (byStatus) byStatus.set(status, entry)
    else byRoute.set(r, new Map([[status, entry]]))
    return remember(method, r, status, entry)
  }

  const record = (method: string, route: string | undefined, status: number, durationMs: number, span?: Span, info?: FinishInfo) => {
    const entry = entryFor(method, route, status)
    const seconds = durationMs > 0 ? durationMs / 1000 : 0
    const sc = exemplars ? span?.spanContext() : undefined
    if (sc && sc.traceId !== '00000000000000000000000000000000') duration.observe(entry.series, seconds, { trace_id: sc.traceId, span_id: sc.spanId })
    else duration.observe(entry.series, seconds)
    if (info) {
      if (requestSize && info.requestBytes !== undefined) requestSize.observe(entry.labels, info.requestBytes)
      if (responseSize && info.responseBytes !== undefined) responseSize.observe(entry.labels, info.responseBytes)
    }
    bridge?.record(seconds, entry.attributes)
  }

  const scraper: ClusterScraper | undefined = clusterTimeoutMs !== undefined ? createClusterScraper(registry, prefix, clusterTimeoutMs) : undefined

  const scrape = async (accept?: string): Promise<ScrapeResponse> => {
    try {
      if (scraper?.isPrimary) return await scraper.scrape()
      const format = negotiate(accept)
      const body = await render(registry, format)
      episodes.end('metrics.scrape', 'metrics collection recovered')
      return { status: 200, headers: { 'content-type': format === 'openmetrics' ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' }, body }
    } catch (error) {
      episodes.begin('metrics.scrape', 'metrics collection failed; answering 500', { err: error })
      return { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, body: 'metrics collection failed\n' }
    }
  }

  const unsubscribes = new Set<() => void>()
  const servers = new Set<http.Server>()
  const observe = (events: RiEvents) => {
    const off = sdk.subscribe(events)
    const once = () => {
      if (unsubscribes.delete(once)) off()
    }
    unsubscribes.add(once)
    return once
  }
  for (const bus of busList) observe(bus)

  return {
    registry,
    observe,
    record: (method, route, status, durationMs, span) => record(normalizeMethod(method), route, status, durationMs, span),
    handler: () => scrape,
    feature(featureOptions = {}) {
      const fcheck = createOptionsChecker('metrics.feature')
      fcheck.known(featureOptions, ['path', 'token'])
      const path = featureOptions.path === false ? false : fcheck.string('path', featureOptions.path, DEFAULTS.path, /^\/\S*$/, 'a path starting with "/" or false')
      const authorized = tokenCheck(fcheck, featureOptions.token)
      fcheck.done()
      return {
        name: 'metrics',
        onRequest(ex: Exchange): Promise<Answer> | undefined {
          if (path !== false && ex.path === path) {
            ex.state[STATE_KEY] = SCRAPE
            if (ex.method !== 'GET' && ex.method !== 'HEAD') return Promise.resolve(METHOD_NOT_ALLOWED)
            if (!authorized(ex.header('authorization'))) return Promise.resolve(UNAUTHORIZED)
            return scrape(ex.header('accept'))
          }
          active++
          ex.state[STATE_KEY] = ACTIVE
          if (exemplars) {
            const span = trace.getSpan(otelContext.active())
            if (span) ex.state[SPAN_KEY] = span
          }
          return undefined
        },
        onResponse(ex: Exchange, info: FinishInfo) {
          const mark = ex.state[STATE_KEY]
          if (mark === SCRAPE) return
          if (mark === ACTIVE) active--
          record(ex.method, ex.route, info.status, info.durationMs, ex.state[SPAN_KEY] as Span | undefined, info)
        },
      }
    },
    async listen(listenOptions = {}) {
      const lcheck = createOptionsChecker('metrics.listen')
      lcheck.known(listenOptions, ['port', 'host', 'path', 'token'])
      const port = lcheck.integer('port', listenOptions.port, 9464, { min: 0, max: 65535 })
      const host = lcheck.string('host', listenOptions.host, '127.0.0.1')
      const path = lcheck.string('path', listenOptions.path, DEFAULTS.path, /^\/\S*$/, 'a path starting with "/"')
      const authorized = tokenCheck(lcheck, listenOptions.token)
      lcheck.done()
      const server = http.createServer((req, res) => {
        const url = req.url ?? '/'
        const q = url.indexOf('?')
        const reqPath = q === -1 ? url : url.slice(0, q)
        const send = (answer: { status: number; headers?: Record<string, string>; body?: string }) => {
          res.writeHead(answer.status, answer.headers)
          res.end(req.method === 'HEAD' ? undefined : answer.body)
        }
        if (reqPath !== path) return send({ status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Not Found\n' })
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(METHOD_NOT_ALLOWED as ScrapeResponse)
        if (!authorized(req.headers.authorization)) return send(UNAUTHORIZED as ScrapeResponse)
        scrape(req.headers.accept).then(send, () => send({ status: 500, body: '' }))
      })
      servers.add(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      const address = server.address() as AddressInfo
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
      return {
        port: address.port,
        host: address.address,
        url: `http://${shownHost}:${address.port}${path}`,
        server,
        close: () => closeServer(server, servers),
      }
    },
    async close() {
      for (const off of [...unsubscribes]) off()
      await Promise.all([...servers].map((s) => closeServer(s, servers)))
    },
  }
}

const METHOD_NOT_ALLOWED: Answer = Object.freeze({ status: 405, headers: { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }, body: 'Method Not Allowed\n' })
const UNAUTHORIZED: Answer = Object.freeze({
  status: 401,
  headers: { 'www-authenticate': 'Bearer realm="metrics"', 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
  body: 'Unauthorized\n',
})

function tokenCheck(check: ReturnType<typeof createOptionsChecker>, token: unknown): (authorization: string | undefined) => boolean {
  if (token === undefined) return () => true
  if (typeof token !== 'string' || token.length < 8 || /\s/.test(token)) {
    check.problem('token', token, 'a string of at least 8 characters without spaces')
    return () => false
  }
  // Compare digests so neither the content nor the length leaks through timing.
  const expected = createHash('sha256').update(`Bearer ${token}`).digest()
  return (authorization) => {
    if (!authorization) return false
    return timingSafeEqual(createHash('sha256').update(authorization.trim()).digest(), expected)
  }
}

function validBuckets(value: unknown): value is readonly number[] {
  if (!Array.isArray(value) || value.length === 0) return false
  for (let i = 0; i < value.length; i++) {
    const v = value[i]
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return false
    if (i > 0 && v <= value[i - 1]) return false
  }
  return true
}

function closeServer(server: http.Server, servers: Set<http.Server>): Promise<void> {
  servers.delete(server)
  if (!server.listening) return Promise.resolve()
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections?.()
  })
}
