export { ri, withFeatures, getExchange, routeOf, type RiHonoOptions, type RiMiddleware, type RiState, type RiEnv } from './ri.js'
