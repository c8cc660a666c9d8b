import { type CallHandler, type ExecutionContext, Inject, Injectable, type NestInterceptor } from '@nestjs/common'
import type { Answer } from '@ri/core'
import { applyNodeFeatures } from '@ri/core/node'
import { map, mergeMap, type Observable, throwError } from 'rxjs'
import { RiAnswerException, rawRequest, rawResponse } from './answer.js'
import { EMPTY_PLAN, type HandlerPlan, RiRoutes } from './routes.js'

interface HeaderSetter {
  header(name: string, value: string): unknown
}

// Requests whose plan ran, beside them rather than on them: on the Express platform every request
// has its app's prototype, and a property added after that takes V8's slow path (a new hidden
// class per request).
const planRun = new WeakSet<object>()

const isRaw = (v: unknown) => v === undefined || v === null || typeof v === 'string' || v instanceof Uint8Array || typeof (v as { pipe?: unknown }).pipe === 'function'

/**
 * Runs a handler's ri decorators (`@UseFeatures()`, `@Cached()`, `@Throttle()`, `@SlowThreshold()`,
 * `@SkipThrottle()`, `@Serialize()`, `@InvalidateTags()`) on the exchange the platform binding
 * created; the plan of each handler is compiled once, at bootstrap. ri's decorators attach it to
 * the handlers and controllers that carry them (routes without ri decorators run no interceptor of
 * ri's); a request runs its plan once even where it is attached twice.
 *
 * @example
 * // attached by the decorators; nothing to do. Declare features per handler:
 * @Get(':id') @Cached({ ttl: '30s' }) get() {}
 */
@Injectable()
export class RiInterceptor implements NestInterceptor {
  constructor(@Inject(RiRoutes) private readonly routes: RiRoutes) {}

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
    // Attached to a controller and to its handler (or also registered globally): run the plan once.
    if (planRun.has(req as object)) return next.handle()
    planRun.add(req as object)
    if (plan.features.length === 0) return this.handle(plan, next, req, res)
    // both platforms run on node's request/response (Fastify's raw ones): core's node binding
    const result = applyNodeFeatures(rawRequest(req), rawResponse(res), plan.features)
    if (result === undefined) return this.handle(plan, next, req, res)
    const decide = (answer: Answer | undefined) => {
      if (answer) return throwError(() => RiAnswerException.of(answer))
      return this.handle(plan, next, req, res)
    }
    return typeof (result as Promise<Answer | undefined>).then === 'function' ? (result as Promise<Answer | undefined>).then(decide) : decide(result as Answer)
  }
}
