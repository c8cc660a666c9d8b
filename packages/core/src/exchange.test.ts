import { describe, expect, it } from 'vitest'
import { Exchange } from './exchange.js'

describe('Exchange per-request maps', () => {
  const ex = () => new Exchange({ method: 'GET', url: '/a?b=1', headers: {} }, '192.0.2.1', 'id-1')

  it('responseHeaders and state inherit nothing: names like constructor or __proto__ are plain keys', () => {
    const e = ex()
    for (const bag of [e.responseHeaders, e.state] as Record<string, unknown>[]) {
      for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf']) {
        expect(bag[name], name).toBeUndefined()
        expect(name in bag, name).toBe(false)
      }
      const [proto, ctor]: string[] = ['__proto__', 'constructor']
      bag[proto!] = 'x'
      bag[ctor!] = 'y'
      expect(Object.keys(bag)).toEqual(['__proto__', 'constructor'])
      const seen: string[] = []
      for (const k in bag) seen.push(k)
      expect(seen).toEqual(['__proto__', 'constructor'])
      expect(({} as Record<string, unknown>).x).toBeUndefined() // Object.prototype untouched
    }
  })

  it('each exchange has its own maps', () => {
    const a = ex()
    const b = ex()
    a.setHeader('X-One', '1')
    a.state.k = 1
    expect(a.responseHeaders).toEqual({ 'x-one': '1' })
    expect(Object.keys(b.responseHeaders)).toEqual([])
    expect(Object.keys(b.state)).toEqual([])
    expect(JSON.stringify(a.responseHeaders)).toBe('{"x-one":"1"}')
  })
})
