export { runConformance, rawRequest } from './suite.js'
export { conformanceRoutes, createProbe, globalFeatures, BYTES_BODY, type Probe, type Observation } from './fixtures.js'
export type {
  ConformanceRequest,
  ConformanceResponse,
  ConformanceRoute,
  ConformanceRiOptions,
  ConformanceServer,
  StartSetup,
  FeatureLike,
  ExchangeLike,
  AnswerLike,
  EventsLike,
  HttpRequestEvent,
} from './types.js'
