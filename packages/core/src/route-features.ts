import type { Logger } from './logger.js'
import { createPipeline, type Feature, type Pipeline } from './pipeline.js'

/** Route-level features compiled once: hook flags and a pipeline per logger (error isolation, episodes). */
export interface FeatureSet {
  readonly features: readonly Feature[]
  readonly hasSend: boolean
  readonly hasHeaders: boolean
  readonly hasResponse: boolean
  pipelineFor(logger: Logger): Pipeline
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
  }
  sets.set(features, set)
  return set
}
