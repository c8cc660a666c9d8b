export { ri, withFeatures, getExchange, routeOf, type RiHonoOptions, type RiMiddleware, type RiState, type RiEnv, type RiDeps } from './ri.js'
export { cached, throttled, slowThreshold, skipThrottle, type CachedRouteOptions, type FeatureMiddleware } from './helpers.js'
