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
