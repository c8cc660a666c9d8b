export { ri, DEFAULTS, type RiExpressOptions, type RiMiddleware } from './ri.js'
export { withFeatures, applyFeatures, sendAnswer, type FeatureMiddleware } from './features.js'
export { getExchange, type RiContext } from './context.js'
export { json, type JsonMiddleware } from './json.js'
