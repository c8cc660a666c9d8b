import { type Feature, featureSet } from '@ri/core'

/**
 * The route `config` fragment `withFeatures()` returns.
 *
 * @example
 * const config: RiRouteConfig = withFeatures(myFeature)
 * app.get('/x', { config }, handler)
 */
export interface RiRouteConfig {
  readonly riFeatures: readonly Feature[]
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Route-level ri features (see `withFeatures()`). */
    riFeatures?: readonly Feature[]
  }
}

/**
 * Turns any core `Feature` into a Fastify route `config` fragment; the plugin's hooks run it on
 * the route's requests, after the global features. `cached()`, `throttled()` and `slowThreshold()`
 * are built on it.
 *
 * @example
 * const poweredBy: Feature = { name: 'powered-by', onHeaders: (ex) => ex.setHeader('x-powered-by', 'ri') }
 * app.get('/users/:id', { config: { ...withFeatures(poweredBy) } }, async (req) => ({ id: req.params.id }))
 */
export function withFeatures(...features: Feature[]): RiRouteConfig {
  const list = Object.freeze([...features])
  featureSet(list)
  return { riFeatures: list }
}
