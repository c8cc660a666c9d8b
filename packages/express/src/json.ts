import fastJson, { type Options as FjsOptions, type Schema } from 'fast-json-stringify'
import type { NextFunction, Request, RequestHandler, Response } from 'express'

/**
 * What `json()` returns: route middleware plus the compiled serializer.
 *
 * @example
 * const user: JsonMiddleware = json({ type: 'object', properties: { id: { type: 'string' } } })
 * user.stringify({ id: 1 }) // '{"id":"1"}'
 */
export type JsonMiddleware = RequestHandler & { readonly stringify: (value: unknown) => string }

/**
 * Route-level `res.json()` on a fast-json-stringify serializer compiled once from a JSON schema:
 * faster than JSON.stringify, and properties outside the schema never leak.
 *
 * @example
 * const user = { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } } as const
 * app.get('/users/:id', json(user), (req, res) => res.json(loadUser(req.params.id)))
 */
export function json(schema: Schema, options?: FjsOptions): JsonMiddleware {
  const stringify = fastJson(schema, options) as (value: unknown) => string
  function fastJsonSend(this: Response, value: unknown): Response {
    if (!this.get('content-type')) this.set('content-type', 'application/json; charset=utf-8')
    return this.send(stringify(value))
  }
  const mw = function riJson(_req: Request, res: Response, next: NextFunction): void {
    res.json = fastJsonSend as Response['json']
    next()
  }
  return Object.assign(mw, { stringify }) as JsonMiddleware
}
