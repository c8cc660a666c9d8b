import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Inject } from '@nestjs/common'
import { HttpAdapterHost } from '@nestjs/core'
import type { Answer } from '@ri/core'
import { sendNodeAnswer } from '@ri/core/node'
import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * Thrown by the interceptor when a route-level feature answers early (429, a cached response...):
 * Nest's exception path skips the handler, and `RiAnswerFilter` writes the answer byte for byte.
 * It is an `HttpException`, so even without the filter the status is right.
 *
 * @example
 * throw new RiAnswerException({ status: 429, headers: { 'retry-after': '1' }, body: '{"error":"Too Many Requests"}' })
 */
export class RiAnswerException extends HttpException {
  constructor(readonly answer: Answer) {
    super(typeof answer.body === 'string' ? answer.body : 'ri answer', answer.status)
  }

  /**
   * The exception for an answer, built without a stack trace: it is control flow (a cached hit, a
   * 429), thrown on every such request, and capturing Nest's and rxjs' frames cost more than the hit.
   *
   * @example
   * throw RiAnswerException.of(answer)
   */
  static of(answer: Answer): RiAnswerException {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    try {
      return new RiAnswerException(answer)
    } finally {
      Error.stackTraceLimit = limit
    }
  }
}

/**
 * Writes a `RiAnswerException`'s answer on either platform. Registered globally by `RiModule`.
 *
 * @example
 * // registered by RiModule.forRoot(); to scope it yourself:
 * app.useGlobalFilters(new RiAnswerFilter(app.get(HttpAdapterHost)))
 */
@Catch(RiAnswerException)
export class RiAnswerFilter implements ExceptionFilter<RiAnswerException> {
  constructor(@Inject(HttpAdapterHost) private readonly host: HttpAdapterHost) {}

  catch(exception: RiAnswerException, context: ArgumentsHost): void {
    const http = context.switchToHttp()
    const req = http.getRequest<unknown>()
    const res = http.getResponse<unknown>()
    if (this.host.httpAdapter.getType() === 'fastify') {
      // the answer goes out on the node response: Fastify must not send a reply of its own
      ;(res as { hijack?: () => void }).hijack?.()
    }
    sendNodeAnswer(rawRequest(req), rawResponse(res), exception.answer)
  }
}

/** The node request behind a platform request (Fastify wraps it in `request.raw`; Express's is one). */
export function rawRequest(req: unknown): IncomingMessage {
  return ((req as { raw?: IncomingMessage }).raw ?? req) as IncomingMessage
}

/** The node response behind a platform response (Fastify's `reply.raw`; Express's is one). */
export function rawResponse(res: unknown): ServerResponse {
  return ((res as { raw?: ServerResponse }).raw ?? res) as ServerResponse
}
