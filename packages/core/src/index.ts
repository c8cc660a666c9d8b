export {
  ErrorCodes,
  type ErrorCode,
  RiError,
  RiConfigError,
  type ConfigProblem,
  RiTimeoutError,
  CacheLoaderTimeoutError,
  ThrottleLimitError,
  RiClosedError,
  describeValue,
} from './errors.js'
export { type Duration, type DurationUnit, parseDuration, tryParseDuration, formatDuration, DURATION_ACCEPTS } from './duration.js'
export { createOptionsChecker, type OptionsChecker, mergeOptions, isPlainObject } from './options.js'
export {
  createIpResolver,
  type IpResolver,
  type IpResolverOptions,
  type TrustProxy,
  type HeaderValue,
  normalizeIp,
  ipVersion,
  ipKey,
  type IpKeyOptions,
  peerAddress,
} from './ip.js'
export { resolveRequestId, isSafeRequestId, generateRequestId } from './request-id.js'
export { Timings, type TimingEntry, renderServerTiming } from './server-timing.js'
export { type Logger, type LogFn, noopLogger, createDefaultLogger, createEpisodes, type Episodes } from './logger.js'
export { createEvents, listening, type RiEvents, type RiEventMap, type RiEventName, type RiListener } from './events.js'
export type { CacheEvents } from './events/cache.js'
export type { ThrottleEvents } from './events/throttle.js'
export type { DbEvents } from './events/db.js'
export type { HealthEvents } from './events/health.js'
export type { HttpEvents } from './events/http.js'
export { Exchange, type ExchangeInit, type ExchangeResolver, type Answer, type FinishInfo, type ResponseHeaders, normalizeMethod } from './exchange.js'
export { createPipeline, type Pipeline, type PipelineOptions, type Feature, type MaybePromise, jsonAnswer } from './pipeline.js'
export { createRouter, type Router, type RouteMatch } from './router.js'
export { createRiPipeline, type RiOptions, type FeatureProvider, type MetricsProvider } from './compose.js'
export { featureSet, type FeatureSet } from './route-features.js'
export { beginSend, endSend, type SendSnapshot } from './send-contract.js'
export { applyFeatureHeaders, mergeFeatureHeaders, joinFeatureHeaders, joinFeatureHead, joinFeatureHeaderList, sameHeaderName, isHeaderRecord, type HeaderHolder } from './head.js'
export { forwardEmit, type EmitFn } from './emit.js'
export { createDeadlineList, type DeadlineEntry, type DeadlineList, promiseInto, type Settleable } from './deadline.js'
