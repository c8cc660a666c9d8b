import { type Attributes, createNoopMeter, type Histogram, type MeterProvider, metrics as otelMetrics } from '@opentelemetry/api'

const NOOP_HISTOGRAM = createNoopMeter().createHistogram('ri_noop').constructor
/** Requests between two looks for a MeterProvider registered after createMetrics. */
const RECHECK_EVERY = 4096

/**
 * Records `http.server.request.duration` through @opentelemetry/api. While no MeterProvider is
 * registered the API hands out no-op instruments: we notice that, skip recording and look
 * again every few thousand requests, so a provider registered after startup is picked up and
 * the cost without one is a counter decrement.
 */
export interface OtelBridge {
  record(seconds: number, attributes: Attributes): void
  /** True once a real (non-no-op) histogram is in use. */
  readonly active: boolean
}

export function createOtelBridge(buckets: readonly number[], provider?: MeterProvider): OtelBridge {
  let histogram: Histogram | undefined
  let countdown = 0
  const resolve = (): Histogram | undefined => {
    const meter = (provider ?? otelMetrics.getMeterProvider()).getMeter('@ri/metrics')
    const h = meter.createHistogram('http.server.request.duration', {
      unit: 's',
      description: 'Duration of HTTP server requests.',
      advice: { explicitBucketBoundaries: [...buckets] },
    })
    histogram = h.constructor === NOOP_HISTOGRAM ? undefined : h
    return histogram
  }
  resolve()
  return {
    record(seconds, attributes) {
      if (histogram) {
        histogram.record(seconds, attributes)
        return
      }
      if (--countdown > 0) return
      countdown = RECHECK_EVERY
      resolve()?.record(seconds, attributes)
    },
    get active() {
      return histogram !== undefined
    },
  }
}
