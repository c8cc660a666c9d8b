import type { Registry } from 'prom-client'
import { seriesKey } from './guard.js'

/**
 * Metrics on the request path, recorded without prom-client's per-call work (label validation,
 * sorting and hashing the label object on every observe): a series is resolved once to a small
 * record, and recording is a few additions on it. At scrape time `get()` hands the registry the
 * same structure prom-client's own Histogram and Counter produce, so the exposition (Prometheus
 * text, OpenMetrics with exemplars), `getMetricsAsJSON()` and the cluster aggregator treat them
 * exactly like prom-client metrics.
 */

interface Exemplar {
  readonly labelSet: Record<string, string>
  readonly value: number
  readonly timestamp: number
}

/** One label set of a histogram: cumulative counts are computed at scrape time. */
export interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>
  /** Observations per bucket (index of the first upper bound >= value; the last slot is +Inf). */
  readonly counts: Float64Array
  sum: number
  count: number
  exemplars: Array<Exemplar | undefined> | undefined
}

export interface FastHistogram {
  readonly name: string
  readonly help: string
  readonly type: 'histogram'
  readonly aggregator: 'sum'
  /** The series of a label set, created on first use (the caller caps cardinality). */
  series(labels: Readonly<Record<string, string>>): HistogramSeries
  observe(series: HistogramSeries, value: number, exemplar?: Record<string, string>): void
  get(): Promise<MetricData>
  getForPromString(): Promise<MetricData>
  reset(): void
}

interface MetricValue {
  labels: Record<string, string | number>
  sharedLabels?: Record<string, string>
  value: number
  metricName?: string
  exemplar?: Exemplar | null
}

interface MetricData {
  name: string
  help: string
  type: string
  values: MetricValue[]
  aggregator: string
}


/**
 * A histogram registered in `registry` whose series are resolved once.
 *
 * @example
 * const h = createFastHistogram(registry, { name: 'http_server_request_duration_seconds', help: '...', labelNames: ['method'], buckets: [0.1, 1] })
 * h.observe(h.series({ method: 'GET' }), 0.042)
 */
export function createFastHistogram(
  registry: Registry<any>,
  options: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[] },
): FastHistogram {
  const bounds = [...options.buckets].sort((a, b) => a - b)
  const labelNames = options.labelNames
  const all = new Map<string, HistogramSeries>()
  const bucketName = `${options.name}_bucket`
  const sumName = `${options.name}_sum`
  const countName = `${options.name}_count`

  const collect = (splay: boolean): MetricData => {
    const values: MetricValue[] = []
    for (const s of all.values()) {
      // prom-client keeps the series labels apart (sharedLabels) for the text format and splays
      // them into each value for JSON; do the same so both renderings match its own histograms.
      const value = (labels: Record<string, string | number>, v: number, metricName: string, exemplar?: Exemplar | null): MetricValue =>
        splay ? { labels: { ...labels, ...s.labels }, value: v, metricName, exemplar } : { labels, sharedLabels: s.labels, value: v, metricName, exemplar }
      let acc = 0
      for (let i = 0; i < bounds.length; i++) {
        acc += s.counts[i]!
        values.push(value({ le: bounds[i]! }, acc, bucketName, s.exemplars?.[i] ?? null))
      }
      values.push(value({ le: '+Inf' }, s.count, bucketName, s.exemplars?.[bounds.length] ?? null))
      values.push(value({}, s.sum, sumName))
      values.push(value({}, s.count, countName))
    }
    return { name: options.name, help: options.help, type: 'histogram', values, aggregator: 'sum' }
  }

  const histogram: FastHistogram = {
    name: options.name,
    help: options.help,
    type: 'histogram',
    aggregator: 'sum',
    series(labels) {
      const key = seriesKey(labelNames, labels)
      let s = all.get(key)
      if (s === undefined) {
        s = { labels: { ...labels }, counts: new Float64Array(bounds.length + 1), sum: 0, count: 0, exemplars: undefined }
        all.set(key, s)
      }
      return s
    },
    observe(s, value, exemplar) {
      let i = 0
      while (i < bounds.length && value > bounds[i]!) i++
      s.counts[i]!++
      s.sum += value
      s.count++
      if (exemplar !== undefined) (s.exemplars ??= new Array(bounds.length + 1))[i] = { labelSet: exemplar, value, timestamp: Date.now() / 1000 }
    },
    get: async () => collect(true),
    getForPromString: async () => collect(false),
    reset() {
      // Series handles held by callers must keep recording: zero them rather than drop them.
      for (const s of all.values()) {
        s.counts.fill(0)
        s.sum = 0
        s.count = 0
        s.exemplars = undefined
      }
    },
  }
  registry.registerMetric(histogram as never)
  return histogram
}

export interface FastCounter {
  /** prom-client's Registry renames counters while rendering OpenMetrics: writable on purpose. */
  name: string
  readonly help: string
  readonly type: 'counter'
  readonly aggregator: 'sum'
  /** Adds `value` (default 1) to the series of `labels` (the caller caps cardinality). */
  inc(labels?: Readonly<Record<string, string>>, value?: number): void
  /** A label set resolved once, for `incPrepared` (hot paths that see the same few label sets). */
  prepare(labels: Readonly<Record<string, string>>): PreparedLabels
  /** `inc` for a prepared label set: no key built per call. */
  incPrepared(prepared: PreparedLabels, value?: number): void
  get(): Promise<MetricData>
  reset(): void
}

/** A label set and its series key, built once by `FastCounter.prepare`. */
export interface PreparedLabels {
  readonly key: string
  readonly labels: Readonly<Record<string, string>>
}

/**
 * A counter registered in `registry` whose series are found by one string key, not prom-client's
 * sorted-label hash.
 *
 * @example
 * const c = createFastCounter(registry, { name: 'ri_throttle_decisions_total', help: '...', labelNames: ['rule'] })
 * c.inc({ rule: 'login' })
 */
export function createFastCounter(
  registry: Registry<any>,
  options: {
    name: string
    help: string
    labelNames: readonly string[]
    /** Series cap: later new label sets fold into one overflow series and call `onDrop`. */
    cap?: { readonly max: number; readonly overflow: string; readonly onDrop: () => void }
  },
): FastCounter {
  const labelNames = options.labelNames
  const all = new Map<string, { labels: Record<string, string>; value: number }>()
  const none: Readonly<Record<string, string>> = Object.freeze({})
  const cap = options.cap
  let admitted = 0
  let overflowSeries: { labels: Record<string, string>; value: number } | undefined
  const add = (key: string, labels: Readonly<Record<string, string>>, value: number): void => {
    const s = all.get(key)
    if (s !== undefined) s.value += value
    else if (cap === undefined || admitted < cap.max) {
      admitted++
      all.set(key, { labels: { ...labels }, value })
    } else {
      cap.onDrop()
      if (overflowSeries === undefined) {
        const labels: Record<string, string> = {}
        for (const n of labelNames) labels[n] = cap.overflow
        overflowSeries = { labels, value: 0 }
        all.set(seriesKey(labelNames, labels), overflowSeries)
      }
      overflowSeries.value += value
    }
  }
  const counter: FastCounter = {
    name: options.name,
    help: options.help,
    type: 'counter',
    aggregator: 'sum',
    inc(labels = none, value = 1) {
      // One key per call finds the series and enforces the cap (no separate guard lookup).
      add(seriesKey(labelNames, labels), labels, value)
    },
    prepare(labels) {
      return Object.freeze({ key: seriesKey(labelNames, labels), labels: Object.freeze({ ...labels }) })
    },
    incPrepared(prepared, value = 1) {
      add(prepared.key, prepared.labels, value)
    },
    async get() {
      const values: MetricValue[] = []
      for (const s of all.values()) values.push({ value: s.value, labels: s.labels })
      return { name: counter.name, help: options.help, type: 'counter', values, aggregator: 'sum' }
    },
    reset() {
      all.clear()
      admitted = 0
      overflowSeries = undefined
    },
  }
  registry.registerMetric(counter as never)
  return counter
}
