export { riPlugin, getExchange, applyFeatures, sendAnswer, type RiFastifyOptions, type RiRequestState } from './plugin.js'
export { withFeatures, type RiRouteConfig, type CachedRouteOptions, type ThrottleRouteConfig, type RiDeps } from './features.js'
