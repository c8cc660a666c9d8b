import { type CallHandler, type ExecutionContext, Inject, Injectable, type NestInterceptor } from '@nestjs/common'
import { HttpAdapterHost, Reflector } from '@nestjs/core'
import type { Answer, Feature, MaybePromise } from '@ri/core'
import { applyFeatures as applyExpress } from '@ri/express'
import { applyFeatures as applyFastify } from '@ri/fastify'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Observable } from 'rxjs'
import { RiAnswerException } from './answer.js'
import { RI_FEATURES } from './tokens.js'

type Apply = (req: unknown, res: unknown, features: readonly Feature[]) => MaybePromise<Answer | undefined>

const NONE: readonly Feature[] = Object.freeze([])

/**
 * Runs the route-level features declared with `@UseFeatures()` (and the named decorators built on
 * it) on the exchange the platform binding created. Registered globally by `RiModule`; handlers
 * without ri metadata pass straight through.
 *
 * @example
 * // registered by RiModule.forRoot(); nothing to do. Declare features per handler:
 * @Get(':id') @UseFeatures(myFeature) get() {}
 */
@Injectable()
export class RiInterceptor implements NestInterceptor {
  // One merged (and stable: features are compiled per array) list per handler.
  private readonly perHandler = new WeakMap<object, readonly Feature[]>()
  private apply: Apply | undefined

  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(HttpAdapterHost) private readonly host: HttpAdapterHost,
  ) {}

  private featuresOf(context: ExecutionContext): readonly Feature[] {
    const handler = context.getHandler()
    let list = this.perHandler.get(handler)
    if (!list) {
      const merged = this.reflector.getAllAndMerge<Feature[]>(RI_FEATURES, [context.getClass(), handler])
      list = merged.length > 0 ? Object.freeze(merged) : NONE
      this.perHandler.set(handler, list)
    }
    return list
  }

  private platform(): Apply {
    if (!this.apply) {
      this.apply =
        this.host.httpAdapter.getType() === 'fastify'
          ? (req, _res, features) => applyFastify(req as Parameters<typeof applyFastify>[0], features)
          : (req, res, features) => applyExpress(req as IncomingMessage, res as ServerResponse, features)
    }
    return this.apply
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> | Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle()
    const features = this.featuresOf(context)
    if (features === NONE) return next.handle()
    const http = context.switchToHttp()
    const result = this.platform()(http.getRequest(), http.getResponse(), features)
    if (result === undefined) return next.handle()
    const decide = (answer: Answer | undefined) => {
      if (answer) throw new RiAnswerException(answer)
      return next.handle()
    }
    return typeof (result as Promise<Answer | undefined>).then === 'function' ? (result as Promise<Answer | undefined>).then(decide) : decide(result as Answer)
  }
}
