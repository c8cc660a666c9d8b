import { RiConfigError } from '@ri/core'
import { describe, expect, it } from 'vitest'
import { createCache } from '../cache/create.js'
import { selectCached } from './select.js'

describe('selectCached', () => {
  it('is ready at once when the route names its own cache, and ignores the adapter one', () => {
    const own = createCache()
    const adapters = createCache()
    const selection = selectCached({ ttl: '30s', cache: own })
    expect(selection.feature?.name).toBe('cached')
    expect(selection.build({ cache: adapters })).toBe(selection.feature)
    expect(selection.from({})).toBe(selection.feature)
  })

  it("waits for the adapter's cache when the route names none", () => {
    const selection = selectCached({ ttl: '30s', tags: ['products'] })
    expect(selection.feature).toBeUndefined()
    expect(selection.from({})).toBeUndefined()
    expect(selection.from({ cache: null })).toBeUndefined()
    expect(selection.build({ cache: createCache() }).name).toBe('cached')
  })

  it('throws a RiConfigError naming the hint when there is no cache at all', () => {
    const selection = selectCached({ ttl: '30s' }, 'a cache: ri({ cache }) or cached({ cache })')
    let error: unknown
    try {
      selection.build({})
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(RiConfigError)
    expect((error as RiConfigError).problems.map((p) => p.option)).toEqual(['cached.cache'])
    expect((error as RiConfigError).message).toContain('ri({ cache }) or cached({ cache })')
  })

  it('validates the options when the route is defined, before any cache is known', () => {
    expect(() => selectCached({ ttl: 'soon' as never })).toThrow(RiConfigError)
  })
})
