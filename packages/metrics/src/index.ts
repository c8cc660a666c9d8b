export {
  createMetrics,
  DEFAULTS,
  HTTP_DURATION_BUCKETS,
  SIZE_BUCKETS,
  type Metrics,
  type MetricsOptions,
  type MetricsFeatureOptions,
  type MetricsListenOptions,
  type MetricsServer,
  type ScrapeResponse,
  type DefaultMetricsOptions,
} from './metrics.js'
export { negotiate, render, PROMETHEUS_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE, type ExpositionFormat } from './exposition.js'
export { OVERFLOW } from './guard.js'
export { OPERATION_BUCKETS, LAG_BUCKETS } from './sdk.js'
