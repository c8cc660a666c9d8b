import type { RiEvents } from './events.js'
import { createOptionsChecker } from './options.js'
import { type Feature, type Pipeline, type PipelineOptions, createPipeline } from './pipeline.js'

/** A feature package's main object (`createHealth()`, `createThrottle()` ...): it contributes one global feature. */
export interface FeatureProvider {
  feature(): Feature
  /** The bus the package publishes to; @ri/metrics subscribes to it. */
  readonly events?: RiEvents
}

/** @ri/metrics: a feature provider that also subscribes to other packages' events. */
export interface MetricsProvider extends FeatureProvider {
  observe(events: RiEvents): void
}

/** What `ri({...})` takes in every adapter. */
export interface RiOptions extends PipelineOptions {
  metrics?: MetricsProvider
  health?: FeatureProvider
  slowlog?: FeatureProvider
  db?: FeatureProvider
  throttle?: FeatureProvider
  /** The cache instance route-level `cached()` helpers use; only its events are wired here. */
  cache?: { readonly events?: RiEvents }
  /** Extra features, run after the built-in ones. */
  features?: readonly Feature[]
}

/**
 * Order matters and is fixed here, once, for every adapter: metrics first (it times everything and
 * answers `/metrics`), health next (probes answer before anything can throttle them), then the slow
 * log (observes), the db consistency scope, the throttle, and the user's own features.
 */
const ORDER = ['metrics', 'health', 'slowlog', 'db', 'throttle'] as const

const RI_OPTIONS = [...ORDER, 'cache', 'features', 'trustProxy', 'header', 'requestIdHeader', 'echoRequestId', 'generateRequestId', 'events', 'logger'] as const

/**
 * Builds the pipeline `ri({...})` runs in every adapter, and subscribes metrics to every
 * package's events. Adapters call this and only translate their framework to the exchange.
 *
 * @example
 * const pipeline = createRiPipeline({ metrics, health, slowlog, throttle, trustProxy: 'loopback' })
 */
export function createRiPipeline(options: RiOptions): Pipeline {
  const check = createOptionsChecker('ri')
  check.known(options, RI_OPTIONS)
  for (const name of ORDER) {
    const provider = options[name]
    if (provider !== undefined && typeof (provider as FeatureProvider | null)?.feature !== 'function') {
      check.problem(name, provider, `the object returned by the @ri/${name} factory (it has a feature() method)`)
    }
  }
  if (options.metrics && typeof options.metrics.observe !== 'function') {
    check.problem('metrics', options.metrics, 'the object returned by createMetrics() (it has observe())')
  }
  if (options.features !== undefined && !Array.isArray(options.features)) check.problem('features', options.features, 'an array of features')
  check.done()

  const features: Feature[] = []
  for (const name of ORDER) {
    const provider = options[name]
    if (provider) features.push(provider.feature())
  }
  if (options.features) features.push(...options.features)
  const pipeline = createPipeline(features, {
    trustProxy: options.trustProxy,
    header: options.header,
    requestIdHeader: options.requestIdHeader,
    echoRequestId: options.echoRequestId,
    generateRequestId: options.generateRequestId,
    events: options.events,
    logger: options.logger,
  })
  const metrics = options.metrics
  if (metrics) {
    const seen = new Set<RiEvents>()
    for (const source of [pipeline.events, ...ORDER.map((n) => options[n]?.events), options.cache?.events]) {
      if (source && !seen.has(source)) {
        seen.add(source)
        metrics.observe(source)
      }
    }
  }
  return pipeline
}
