import { describe, expect, it } from 'vitest'
import { CacheLoaderTimeoutError, ErrorCodes, RiConfigError, RiError, RiTimeoutError, describeValue } from './errors.js'
import { createOptionsChecker, mergeOptions } from './options.js'

describe('errors', () => {
  it('roots every error at RiError with a stable code', () => {
    const e = new CacheLoaderTimeoutError('users:1', 500)
    expect(e).toBeInstanceOf(RiTimeoutError)
    expect(e).toBeInstanceOf(RiError)
    expect(e).toBeInstanceOf(Error)
    expect(e.code).toBe('RI_CACHE_LOADER_TIMEOUT')
    expect(e.name).toBe('CacheLoaderTimeoutError')
    expect(e.message).toContain('500 ms')
  })

  it('codes are unique', () => {
    const values = Object.values(ErrorCodes)
    expect(new Set(values).size).toBe(values.length)
    expect(Object.isFrozen(ErrorCodes)).toBe(true)
  })

  it('describes values without dumping them', () => {
    expect(describeValue('x'.repeat(500)).length).toBeLessThan(100)
    expect(describeValue(new Map())).toBe('an instance of Map')
    expect(describeValue(() => 1)).toBe('a function')
    expect(describeValue([1, 2])).toBe('an array of 2')
  })
})

describe('createOptionsChecker', () => {
  it('collects every problem and names option, value and accepted values', () => {
    const check = createOptionsChecker('createThrottle')
    expect(check.integer('limit', 0, 10, { min: 1 })).toBe(10)
    check.duration('window', 'a while', 1000)
    check.oneOf('store', 'mongo', ['memory', 'redis'], 'memory')
    check.known({ limitt: 5 }, ['limit', 'window', 'store'])
    let error: RiConfigError | undefined
    try {
      check.done()
    } catch (err) {
      error = err as RiConfigError
    }
    expect(error).toBeInstanceOf(RiConfigError)
    expect(error!.problems.map((p) => p.option)).toEqual([
      'createThrottle.limit',
      'createThrottle.window',
      'createThrottle.store',
      'createThrottle.limitt',
    ])
    expect(error!.message).toContain('4 invalid options')
    expect(error!.message).toContain("one of 'memory', 'redis'")
    expect(error!.message).toContain('received "mongo"')
    expect(error!.message).toContain("did you mean 'limit'?")
    expect(error!.message).toContain('an integer >= 1')
  })

  it('returns defaults for undefined and values when valid', () => {
    const check = createOptionsChecker('x')
    expect(check.duration('ttl', undefined, 5)).toBe(5)
    expect(check.duration('ttl', '1m', 5)).toBe(60_000)
    expect(check.boolean('on', undefined, true)).toBe(true)
    expect(check.string('name', 'abc', 'd', /^[a-z]+$/)).toBe('abc')
    expect(() => check.done()).not.toThrow()
  })
})

describe('mergeOptions', () => {
  it('layers objects without letting undefined override and without prototype pollution', () => {
    const defaults = Object.freeze({ ttl: 1000, l1: { max: 10, ttl: 5 } })
    const merged = mergeOptions(defaults, { l1: { max: 20 } } as never, JSON.parse('{"__proto__":{"polluted":true},"ttl":2000}'))
    expect(merged).toEqual({ ttl: 2000, l1: { max: 20, ttl: 5 } })
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(defaults.l1.max).toBe(10)
    expect(Object.isFrozen(merged)).toBe(true)
  })
})

describe('docs/errors.md', () => {
  it('lists every error code', async () => {
    const { readFile } = await import('node:fs/promises')
    const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8')
    for (const code of Object.values(ErrorCodes)) expect(doc).toContain(`\`${code}\``)
  })
})
