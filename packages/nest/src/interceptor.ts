import { type CallHandler, type ExecutionContext, Inject, Injectable, type NestInterceptor } from '@nestjs/common'
import { HttpAdapterHost } from '@nestjs/core'
import type { Answer, Feature, MaybePromise } from '@ri/core'
import { applyFeatures as applyExpress } from '@ri/express'
import { applyFeatures as applyFastify } from '@ri/fastify'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { map, mergeMap, type Observable } from 'rxjs'
import { RiAnswerException } from './answer.js'
import { EMPTY_PLAN, type HandlerPlan, RiRoutes } from './routes.js'

type Apply = (req: unknown, res: unknown, features: readonly Feature[]) => MaybePromise<Answer | undefined>

interface HeaderSetter {
  header(name: string, value: string): unknown
}

const isRaw = (v: unknown) => v === undefined || v === null || typeof v === 'string' || v instanceof Uint8Array || typeof (v as { pipe?: unknown }).pipe === 'function'

/**
 * Runs a handler's ri decorators (`@UseFeatures()`, `@Cached()`, `@Throttle()`, `@SlowThreshold()`,
 * `@SkipThrottle()`, `@Serialize()`, `@InvalidateTags()`) on the exchange the platform binding
 * created; the plan of each handler is compiled once, at bootstrap. Registered globally by
 * `RiModule`; handlers without ri metadata pass straight through.
 *
 * @example
 * // registered by RiModule.forRoot(); nothing to do. Declare features per handler:
 * @Get(':id') @Cached({ ttl: '30s' }) get() {}
 */
@Injectable()
export class RiInterceptor implements NestInterceptor {
  private apply: Apply | undefined

  constructor(
    @Inject(HttpAdapterHost) private readonly host: HttpAdapterHost,
    @Inject(RiRoutes) private readonly routes: RiRoutes,
  ) {}

  private platform(): Apply {
    if (!this.apply) {
      this.apply =
        this.host.httpAdapter.getType() === 'fastify'
          ? (req, _res, features) => applyFastify(req as Parameters<typeof applyFastify>[0], features)
          : (req, res, features) => applyExpress(req as IncomingMessage, res as ServerResponse, features)
    }
    return this.apply
  }

  private handle(plan: HandlerPlan, next: CallHandler, req: unknown, res: unknown): Observable<unknown> {
    let out = next.handle()
    const stringify = plan.stringify
    if (stringify) {
      out = out.pipe(
        map((value) => {
          if (isRaw(value)) return value
          ;(res as HeaderSetter).header('content-type', 'application/json; charset=utf-8')
          return stringify(value)
        }),
      )
    }
    if (plan.invalidate) {
      out = out.pipe(
        mergeMap(async (value) => {
          await this.routes.invalidate(plan, req as { params?: Record<string, string> })
          return value
        }),
      )
    }
    return out
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> | Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle()
    const plan = this.routes.planFor(context.getClass(), context.getHandler())
    if (plan === EMPTY_PLAN) return next.handle()
    const http = context.switchToHttp()
    const req = http.getRequest<unknown>()
    const res = http.getResponse<unknown>()
    if (plan.features.length === 0) return this.handle(plan, next, req, res)
    const result = this.platform()(req, res, plan.features)
    if (result === undefined) return this.handle(plan, next, req, res)
    const decide = (answer: Answer | undefined) => {
      if (answer) throw new RiAnswerException(answer)
      return this.handle(plan, next, req, res)
    }
    return typeof (result as Promise<Answer | undefined>).then === 'function' ? (result as Promise<Answer | undefined>).then(decide) : decide(result as Answer)
  }
}
