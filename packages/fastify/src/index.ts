export { riPlugin, getExchange, applyFeatures, sendAnswer, type RiFastifyOptions, type RiRequestState } from './plugin.js'
export { withFeatures, type RiRouteConfig } from './features.js'
