import type {} from 'reflect-metadata'
import type { Feature } from '@ri/core'
import { RI_FEATURES } from './tokens.js'

/**
 * Turns any core `Feature` into a Nest decorator for a handler or a whole controller; `RiModule`'s
 * interceptor runs it after the global features. Stacked decorators add up (controller first).
 * `@Cached()`, `@Throttle()`, `@SlowThreshold()` ... are built on it.
 *
 * @example
 * const poweredBy: Feature = { name: 'powered-by', onHeaders: (ex) => ex.setHeader('x-powered-by', 'ri') }
 * @Controller('users')
 * class UsersController {
 *   @Get(':id') @UseFeatures(poweredBy) get(@Param('id') id: string) { return { id } }
 * }
 */
export function UseFeatures(...features: Feature[]): ClassDecorator & MethodDecorator {
  return (target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    const holder = (descriptor ? descriptor.value : target) as object
    const previous = (Reflect.getMetadata(RI_FEATURES, holder) as readonly Feature[] | undefined) ?? []
    Reflect.defineMetadata(RI_FEATURES, Object.freeze([...previous, ...features]), holder)
  }
}
