import { describe, expect, it } from 'vitest'
import { callgrindTotal, lookup, parsePerfMap, parseSubject, selfByFunction } from './instructions.js'

describe('instructions: parsing', () => {
  it('reads subjects as module:export:/path', () => {
    expect(parseSubject('frameworks:expressRi:/users/1')).toEqual({ module: 'frameworks', name: 'expressRi', path: '/users/1' })
    expect(parseSubject('core:bare:/a:b?x=1').path).toBe('/a:b?x=1')
    expect(() => parseSubject('core:bare')).toThrow(/module:export:\/path/)
    expect(() => parseSubject('core::/x')).toThrow(/module:export:\/path/)
  })

  it('reads the total of a callgrind dump', () => {
    expect(callgrindTotal('version: 1\nevents: Ir\nsummary: 12345\nfn=x\n')).toBe(12345)
    expect(callgrindTotal('events: Ir\nfn=x\n1 2\ntotals: 777\n')).toBe(777)
    expect(() => callgrindTotal('events: Ir\n')).toThrow(/no totals/)
  })

  it('names JIT addresses through the perf map, and only inside a function', () => {
    const map = parsePerfMap('2000 10 JS:*b file.js:2\n1000 20 JS:*a file.js:1\nnot a line\n')
    expect(map.map((e) => e.name)).toEqual(['JS:*a file.js:1', 'JS:*b file.js:2'])
    expect(lookup(map, 0x1000)).toBe('JS:*a file.js:1')
    expect(lookup(map, 0x101f)).toBe('JS:*a file.js:1')
    expect(lookup(map, 0x1020)).toBeUndefined() // past a's end
    expect(lookup(map, 0x2005)).toBe('JS:*b file.js:2')
    expect(lookup(map, 0x0fff)).toBeUndefined()
  })

  it('sums self instructions by function, JIT frames by name', () => {
    const map = parsePerfMap('1000 100 JS:*handler app.js:3\n')
    const annotated = [
      '--------------------------------------------------------------------------------',
      '611,226,120 (100.0%)  PROGRAM TOTALS',
      '--------------------------------------------------------------------------------',
      '18,858,489 ( 3.09%)  ???:Builtins_LoadIC [/usr/bin/node]',
      ' 1,000 ( 0.10%)  ???:0x0000000000001010 [???]',
      '   500 ( 0.05%)  ???:0x0000000000001050 [???]',
      '   300 ( 0.03%)  ???:0x0000000000009999 [???]',
    ].join('\n')
    const by = selfByFunction(annotated, map)
    expect(by.get('???:Builtins_LoadIC')).toBe(18_858_489)
    expect(by.get('JS:*handler app.js:3')).toBe(1_500)
    expect(by.get('???:0x0000000000009999')).toBe(300)
    expect(by.has('PROGRAM TOTALS')).toBe(false)
  })
})
