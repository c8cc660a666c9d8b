import { Inject, Injectable, type OnApplicationBootstrap, RequestMethod, VERSION_NEUTRAL, VersioningType } from '@nestjs/common'
import { ApplicationConfig, DiscoveryService, MetadataScanner, ModulesContainer, Reflector } from '@nestjs/core'
import { type Cache, type CachedOptions, selectCached } from '@ri/cache'
import { createOptionsChecker, createRouter, type Exchange, type Feature, featureSet, type Pipeline, type Router } from '@ri/core'
import { compileJson } from '@ri/core/node'
import { slowThreshold } from '@ri/slowlog'
import { selectThrottled, skipThrottle, type Throttle, type ThrottledOptions } from '@ri/throttle'
import type { CachedDecoratorOptions, InvalidateTag, SerializeSchema } from './decorators.js'
import type { RiModuleOptions } from './module.js'
import {
  RI_CACHE,
  RI_CACHE_TAGS,
  RI_CACHED,
  RI_FEATURES,
  RI_INVALIDATE_TAGS,
  RI_OPTIONS,
  RI_PIPELINE,
  RI_SERIALIZE,
  RI_SKIP_THROTTLE,
  RI_SLOW,
  RI_THROTTLE,
} from './tokens.js'

/** What the interceptor does for one handler, compiled once from its decorators. */
export interface HandlerPlan {
  /** Route-level features (skip, slow threshold, throttle, cache, then `@UseFeatures()`). */
  readonly features: readonly Feature[]
  /** Tags to invalidate after a successful handler. */
  readonly invalidate: readonly InvalidateTag[] | undefined
  /** `@Serialize()`'s compiled serializer. */
  readonly stringify: ((value: unknown) => string) | undefined
  /** Cache `@InvalidateTags()` purges. */
  readonly cache: Cache | undefined
}

const EMPTY_PLAN: HandlerPlan = Object.freeze({ features: Object.freeze([]), invalidate: undefined, stringify: undefined, cache: undefined })
const SKIP: Feature = { name: 'skip-throttle', onRequest: (ex) => skipThrottle(ex) }

type Target = object

/** Nest's route path composition: segments without their slashes, joined, leading slash. */
function joinPath(...parts: Array<string | undefined>): string {
  const segs = parts.map((p) => (p ?? '').replace(/^\/+|\/+$/g, '')).filter((p) => p !== '')
  return `/${segs.join('/')}`
}

const asList = (v: unknown): string[] => (v === undefined ? [''] : Array.isArray(v) ? v.map(String) : [String(v)])

// Nest's own metadata keys (@nestjs/common/constants), as plain strings: no deep import.
const PATH = 'path'
const METHOD = 'method'
const VERSION = '__version__'
const MODULE_PATH = '__module_path__'

/**
 * The route registry of `RiModule`: compiles every handler's ri decorators once at bootstrap
 * (bad options fail the bootstrap with a RiConfigError), and keeps the `METHOD template` set of
 * `@SkipThrottle()` handlers that `early` consults before the global throttle runs.
 *
 * Templates are rebuilt the way Nest's RoutePathFactory builds them: global prefix, URI version,
 * `RouterModule` path, controller path, method path. When the global prefix has `exclude`
 * entries, both the prefixed and the bare template are mapped. Other versioning types (header,
 * media type, custom) share one template per route, so the skip applies to every version.
 *
 * @example
 * // internal to RiModule; `early` is handed to the platform binding as its `before` feature
 */
@Injectable()
export class RiRoutes implements OnApplicationBootstrap {
  private readonly plans = new WeakMap<Target, HandlerPlan>()
  private readonly skip = new Set<string>()
  /** Every handler's route templates, so the platform binding labels requests before routing. */
  private readonly templates: Router<string> = createRouter<string>()

  /** Runs before the global features: marks requests to `@SkipThrottle()` handlers. */
  readonly early: Feature = {
    name: 'nest-skip-throttle',
    onRequest: (ex: Exchange) => {
      const skip = this.skip
      if (skip.size === 0 || ex.route === undefined) return
      if (skip.has(`${ex.method} ${ex.route}`) || skip.has(`* ${ex.route}`) || (ex.method === 'HEAD' && skip.has(`GET ${ex.route}`))) skipThrottle(ex)
    },
  }

  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(RI_OPTIONS) private readonly options: RiModuleOptions,
    @Inject(RI_CACHE) private readonly cache: Cache | null,
    @Inject(RI_PIPELINE) private readonly pipeline: Pipeline,
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(ApplicationConfig) private readonly config: ApplicationConfig,
    @Inject(ModulesContainer) private readonly modules: ModulesContainer,
  ) {}

  onApplicationBootstrap(): void {
    for (const wrapper of this.discovery.getControllers()) {
      const cls = wrapper.metatype as (abstract new (...args: never[]) => unknown) | undefined
      if (typeof cls !== 'function' || !cls.prototype) continue
      const hostModule = (wrapper as { host?: { metatype?: object } }).host?.metatype
      const proto = cls.prototype as Record<string, unknown>
      for (const name of this.scanner.getAllMethodNames(proto)) {
        const handler = proto[name]
        if (typeof handler !== 'function' || Reflect.getMetadata(METHOD, handler) === undefined) continue
        this.planFor(cls, handler)
        const skip = this.reflector.getAllAndOverride<boolean | undefined>(RI_SKIP_THROTTLE, [handler, cls])
        const method = Reflect.getMetadata(METHOD, handler) as RequestMethod
        const verb = method === RequestMethod.ALL ? '*' : RequestMethod[method]
        for (const template of this.templatesOf(cls, handler, hostModule)) {
          if (skip === true) this.skip.add(`${verb} ${template}`)
          try {
            this.templates.add(verb, template, template)
          } catch {
            // a template the neutral router cannot read (regexp-like paths): that route goes unlabelled
          }
        }
      }
    }
  }

  /** The route template of a request path (`/users/:id`), from the handlers discovered at bootstrap. */
  routeOf(method: string, path: string): string | undefined {
    return this.templates.match(method, path)?.route
  }

  /** Every template Nest registers a handler under (see the class comment). */
  private templatesOf(cls: object, handler: object, hostModule: object | undefined): string[] {
    const prefix = this.config.getGlobalPrefix()
    const excludes = this.config.getGlobalPrefixOptions()?.exclude
    const prefixes = prefix && Array.isArray(excludes) && excludes.length > 0 ? [prefix, ''] : [prefix]
    const versioning = this.config.getVersioning()
    let versions: Array<string | undefined> = [undefined]
    if (versioning?.type === VersioningType.URI) {
      const v = (Reflect.getMetadata(VERSION, handler) ?? Reflect.getMetadata(VERSION, cls) ?? versioning.defaultVersion) as unknown
      if (v !== undefined) {
        const vp = versioning.prefix === false ? '' : (versioning.prefix ?? 'v')
        versions = (Array.isArray(v) ? v : [v]).map((x) => (x === VERSION_NEUTRAL ? undefined : `${vp}${String(x)}`))
      }
    }
    let modulePath: string | undefined
    if (hostModule) {
      modulePath = (Reflect.getMetadata(MODULE_PATH + this.modules.applicationId, hostModule) ?? Reflect.getMetadata(MODULE_PATH, hostModule)) as string | undefined
    }
    const out: string[] = []
    for (const p of prefixes) {
      for (const version of versions) {
        for (const ctrl of asList(Reflect.getMetadata(PATH, cls))) {
          for (const path of asList(Reflect.getMetadata(PATH, handler))) out.push(joinPath(p, version, modulePath, ctrl, path))
        }
      }
    }
    return out
  }

  /** The handler's compiled plan (compiled on first use for handlers discovery did not list). */
  planFor(cls: Target, handler: Target): HandlerPlan {
    let plan = this.plans.get(handler)
    if (!plan) {
      plan = this.compile(cls, handler)
      this.plans.set(handler, plan)
    }
    return plan
  }

  private compile(cls: Target, handler: Target): HandlerPlan {
    const targets = [handler, cls] as Array<Parameters<Reflector['get']>[1]>
    const r = this.reflector
    const check = createOptionsChecker(`RiModule ${(cls as { name?: string }).name ?? ''}.${(handler as { name?: string }).name ?? ''}`)
    const features: Feature[] = []
    if (r.getAllAndOverride<boolean | undefined>(RI_SKIP_THROTTLE, targets) === true) features.push(SKIP)
    const slow = r.getAllAndOverride<unknown>(RI_SLOW, targets)
    if (slow !== undefined) features.push(slowThreshold(slow as false))
    const rule = r.getAllAndOverride<ThrottledOptions | undefined>(RI_THROTTLE, targets)
    if (rule) {
      features.push(selectThrottled(rule).build({ throttle: this.options.throttle as Throttle | undefined }))
    }
    const cachedOptions = r.getAllAndOverride<CachedDecoratorOptions | undefined>(RI_CACHED, targets)
    const extraTags = r.getAllAndMerge<string[]>(RI_CACHE_TAGS, [cls, handler] as typeof targets)
    const cache = cachedOptions?.cache ?? this.cache ?? undefined
    if (cachedOptions) {
      if (!cache) check.problem('cache', undefined, 'a cache: RiModule.forRoot({ cache }) or @Cached({ cache })')
      else {
        const own = cachedOptions.tags
        const tags: CachedOptions['tags'] =
          extraTags.length === 0 ? own : typeof own === 'function' ? (ex) => [...(own(ex) ?? []), ...extraTags] : [...(own ?? []), ...extraTags]
        features.push(selectCached({ ...cachedOptions, tags }).build({ cache }))
      }
    }
    features.push(...r.getAllAndMerge<Feature[]>(RI_FEATURES, [cls, handler] as typeof targets))
    const invalidate = r.getAllAndMerge<InvalidateTag[]>(RI_INVALIDATE_TAGS, [cls, handler] as typeof targets)
    if (invalidate.length > 0 && !cache) check.problem('cache', undefined, '@InvalidateTags() needs a cache: RiModule.forRoot({ cache })')
    const schema = r.getAllAndOverride<SerializeSchema | undefined>(RI_SERIALIZE, targets)
    check.done()
    if (features.length === 0 && invalidate.length === 0 && !schema) return EMPTY_PLAN
    const list = Object.freeze(features)
    if (list.length > 0) featureSet(list) // validates now
    return Object.freeze({
      features: list,
      invalidate: invalidate.length > 0 ? Object.freeze(invalidate) : undefined,
      stringify: schema ? compileJson(schema) : undefined,
      cache,
    })
  }

  /** `@InvalidateTags()` after a successful handler; a cache failure is logged, never thrown. */
  async invalidate(plan: HandlerPlan, request: { readonly params?: Record<string, string> }): Promise<void> {
    const tags: string[] = []
    for (const t of plan.invalidate ?? []) {
      if (typeof t === 'string') tags.push(t)
      else tags.push(...([] as string[]).concat(t(request) as string | string[]))
    }
    try {
      await plan.cache!.invalidateTags(tags)
    } catch (error) {
      this.pipeline.logger.error({ err: error, tags }, 'ri @InvalidateTags() failed')
    }
  }
}

export { EMPTY_PLAN }
