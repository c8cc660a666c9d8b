export { RiModule, type RiModuleOptions, type RiModuleAsyncOptions } from './module.js'
export {
  UseFeatures,
  Cached,
  CacheTags,
  InvalidateTags,
  Throttle,
  SkipThrottle,
  SlowThreshold,
  Serialize,
  type CachedDecoratorOptions,
  type InvalidateTag,
  type SerializeSchema,
} from './decorators.js'
export { RiInterceptor } from './interceptor.js'
export { RiRoutes, type HandlerPlan } from './routes.js'
export { RiAnswerException, RiAnswerFilter } from './answer.js'
export { RI_OPTIONS, RI_PIPELINE, RI_CACHE, RI_DB, RI_FEATURES, InjectCache, InjectDb, InjectPipeline } from './tokens.js'
