import { Inject } from '@nestjs/common'

/**
 * The options given to `RiModule.forRoot()` (or produced by `forRootAsync`'s factory).
 *
 * @example
 * constructor(@Inject(RI_OPTIONS) private readonly options: RiModuleOptions) {}
 */
export const RI_OPTIONS = 'RI_OPTIONS'
/**
 * The ri pipeline (core `Pipeline`) the module built.
 *
 * @example
 * constructor(@Inject(RI_PIPELINE) private readonly pipeline: Pipeline) {}
 */
export const RI_PIPELINE = 'RI_PIPELINE'
/**
 * The cache instance from the options (`cache`), or null.
 *
 * @example
 * { provide: UsersRepo, useFactory: (cache: Cache) => new UsersRepo(cache), inject: [RI_CACHE] }
 */
export const RI_CACHE = 'RI_CACHE'
/**
 * The database router from the options (`db`), or null.
 *
 * @example
 * { provide: UsersRepo, useFactory: (db: DbRouter) => new UsersRepo(db), inject: [RI_DB] }
 */
export const RI_DB = 'RI_DB'
/**
 * Metadata key of route-level features (what `@UseFeatures()` writes).
 *
 * @example
 * reflector.getAllAndMerge<Feature[]>(RI_FEATURES, [context.getClass(), context.getHandler()])
 */
export const RI_FEATURES = 'ri:features'
/** @internal Metadata keys of the named decorators. */
export const RI_CACHED = 'ri:cached'
/** @internal */
export const RI_CACHE_TAGS = 'ri:cache-tags'
/** @internal */
export const RI_INVALIDATE_TAGS = 'ri:invalidate-tags'
/** @internal */
export const RI_THROTTLE = 'ri:throttle'
/** @internal */
export const RI_SKIP_THROTTLE = 'ri:skip-throttle'
/** @internal */
export const RI_SLOW = 'ri:slow-threshold'
/** @internal */
export const RI_SERIALIZE = 'ri:serialize'

/**
 * Injects the cache given to `RiModule.forRoot({ cache })`.
 *
 * @example
 * constructor(@InjectCache() private readonly cache: Cache) {}
 */
export const InjectCache = (): PropertyDecorator & ParameterDecorator => Inject(RI_CACHE)

/**
 * Injects the database router given to `RiModule.forRoot({ db })`.
 *
 * @example
 * constructor(@InjectDb() private readonly db: DbRouter) {}
 */
export const InjectDb = (): PropertyDecorator & ParameterDecorator => Inject(RI_DB)

/**
 * Injects the ri pipeline (its `events` and `logger`, for custom integrations).
 *
 * @example
 * constructor(@InjectPipeline() private readonly pipeline: Pipeline) {}
 */
export const InjectPipeline = (): PropertyDecorator & ParameterDecorator => Inject(RI_PIPELINE)
