import type { Exchange } from './exchange.js'
import type { Logger } from './logger.js'
import { createPipeline, type Feature, type Pipeline } from './pipeline.js'

/** Route-level features compiled once: hook flags and a pipeline per logger (error isolation, episodes). */
export interface FeatureSet {
  readonly features: readonly Feature[]
  readonly hasSend: boolean
  readonly hasHeaders: boolean
  readonly hasResponse: boolean
  pipelineFor(logger: Logger): Pipeline
  /** Runs the set's `onResponse` hooks when the exchange finishes (no-op when it has none). */
  observeFinish(exchange: Exchange, logger: Logger): void
}

const sets = new WeakMap<readonly Feature[], FeatureSet>()

/**
 * Compiles a route's features once, at route definition (throws RiConfigError on a bad feature):
 * which hooks exist, and one pipeline per logger. Every adapter's route-level helper uses it.
 *
 * @example
 * const set = featureSet([cachedFeature])
 * if (set.hasSend) captureBody(...)
 * const pipeline = set.pipelineFor(logger)
 */
export function featureSet(features: readonly Feature[]): FeatureSet {
  let set = sets.get(features)
  if (set) return set
  createPipeline(features) // validates now, at route definition
  const perLogger = new WeakMap<Logger, Pipeline>()
  const onResponse = features.filter((f) => f.onResponse)
  set = {
    features,
    hasSend: features.some((f) => f.onSend),
    hasHeaders: features.some((f) => f.onHeaders),
    hasResponse: features.some((f) => f.onResponse),
    pipelineFor(logger) {
      let p = perLogger.get(logger)
      if (!p) {
        p = createPipeline(features, { logger, echoRequestId: false })
        perLogger.set(logger, p)
      }
      return p
    },
    observeFinish(ex, logger) {
      if (onResponse.length === 0) return
      ex.onFinish((info) => {
        for (const f of onResponse) {
          try {
            f.onResponse!(ex, info)
          } catch (error) {
            logger.error({ err: error, feature: f.name }, 'ri route feature failed in onResponse')
          }
        }
      })
    },
  }
  sets.set(features, set)
  return set
}
