import { compileJson, hookPrototypeMethod, type JsonCompileOptions, type JsonSchema } from '@ri/core/node'
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
export function json(schema: JsonSchema, options?: JsonCompileOptions): JsonMiddleware {
  // the serializer is core's (shared with @ri/nest's @Serialize()); this is only the Express glue
  const stringify = compileJson(schema, options)
  function fastJsonSend(this: Response, value: unknown): Response {
    return sendWith(this, stringify, value)
  }
  const mw = function riJson(_req: Request, res: Response, next: NextFunction): void {
    // Express gives every response its app's prototype: an own `json` added after that takes
    // V8's slow path. The serializer is remembered beside the response and the prototype's `json`
    // (hooked once) uses it; a response whose `json` someone else replaced gets an own one.
    const proto = Object.getPrototypeOf(res) as object | null
    const hook = proto === null ? null : jsonHook(proto)
    if (hook !== null && res.json === hook) serializers.set(res, stringify)
    else res.json = fastJsonSend as Response['json']
    next()
  }
  return Object.assign(mw, { stringify }) as JsonMiddleware
}

function sendWith(res: Response, stringify: (value: unknown) => string, value: unknown): Response {
  if (!res.get('content-type')) res.set('content-type', 'application/json; charset=utf-8')
  return res.send(stringify(value))
}

/** The schema serializer of each response a `json()` middleware ran for. */
const serializers = new WeakMap<object, (value: unknown) => string>()
/** Per prototype: ri's `json` (null where the prototype could not take it: frozen, or no json of Express's). */
const hooks = new WeakMap<object, Response['json'] | null>()

/**
 * Installs (once per prototype) a `json` that serializes with the response's schema serializer
 * and passes every other call to the `json` it shadows, looked up at call time.
 */
function jsonHook(proto: object): Response['json'] | null {
  let hook = hooks.get(proto)
  if (hook !== undefined) return hook
  // Only a prototype that has a json() already (Express's): never node's own ServerResponse.
  hook =
    typeof (proto as { json?: unknown }).json !== 'function'
      ? null
      : hookPrototypeMethod<Response['json']>(
          proto,
          'json',
          (parent) =>
            function json(this: Response, value: unknown): Response {
              const stringify = serializers.get(this)
              return stringify === undefined ? (parent() as (v: unknown) => Response).call(this, value) : sendWith(this, stringify, value)
            } as Response['json'],
        ).hook
  hooks.set(proto, hook)
  return hook
}
