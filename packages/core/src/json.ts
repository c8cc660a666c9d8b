import { createRequire } from 'node:module'
import { RiConfigError } from './errors.js'

/**
 * A JSON schema for `compileJson()` (fast-json-stringify's schema: `type`, `properties`, `items` ...).
 *
 * @example
 * const user: JsonSchema = { type: 'object', properties: { id: { type: 'string' } } }
 */
export type JsonSchema = Record<string, unknown>

/** fast-json-stringify's options, passed through (`schema`, `ajv`, `rounding`, `largeArrayMechanism` ...). */
export type JsonCompileOptions = Record<string, unknown>

type FastJson = (schema: JsonSchema, options?: JsonCompileOptions) => (value: unknown) => string

let fastJson: FastJson | undefined

// fast-json-stringify is an optional peer: loaded on the first schema, never for apps without one.
function load(): FastJson {
  if (fastJson) return fastJson
  // resolved from this package (the CJS build gets import.meta.url shimmed from __filename)
  const req = createRequire(import.meta.url)
  let mod: unknown
  try {
    mod = req('fast-json-stringify')
  } catch {
    throw new RiConfigError({ option: 'compileJson', received: 'a JSON schema', accepted: 'the optional peer fast-json-stringify installed (npm i fast-json-stringify)' })
  }
  const fn = (typeof mod === 'function' ? mod : (mod as { default?: unknown }).default) as FastJson
  fastJson = fn
  return fn
}

/**
 * Compiles a JSON schema once into a serializer (fast-json-stringify): faster than
 * JSON.stringify, and properties outside the schema never leak. Adapters build their route-level
 * serializers on it (`json()` of @ri/express, `@Serialize()` of @ri/nest). Needs the optional
 * peer `fast-json-stringify`; without it, throws `RiConfigError`.
 *
 * @example
 * const stringify = compileJson({ type: 'object', properties: { id: { type: 'string' } } })
 * stringify({ id: 1, secret: 'x' }) // '{"id":"1"}'
 */
export function compileJson(schema: JsonSchema, options?: JsonCompileOptions): (value: unknown) => string {
  return load()(schema, options)
}
