import { describe, expect, it } from 'vitest'
import { cacheFigures, callgrindEvents, callgrindTotal, lookup, parsePerfMap, parseSubject, renderTable, selfByFunction } from './instructions.js'

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

  it('reads every event of a cache-simulation dump, trailing zeros left off', () => {
    const dump = 'events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim\nfn=x\n1 2\nsummary: 1000 400 200 30 20 10 1 2 3 150 40 10\n'
    expect(callgrindEvents(dump)).toEqual({ Ir: 1000, Dr: 400, Dw: 200, I1mr: 30, D1mr: 20, D1mw: 10, ILmr: 1, DLmr: 2, DLmw: 3, Bc: 150, Bcm: 40, Bi: 10, Bim: 0 })
    expect(() => callgrindEvents('events: Ir\n')).toThrow(/no events or totals/)
  })

  it('estimates cycles with the KCachegrind weights, per request', () => {
    const events = { Ir: 1000, I1mr: 30, D1mr: 20, D1mw: 10, ILmr: 1, DLmr: 2, DLmw: 3, Bcm: 40, Bim: 5 }
    const c = cacheFigures(events, 10)
    expect(c.l1Misses).toBe(6)
    expect(c.llMisses).toBeCloseTo(0.6)
    expect(c.mispredicts).toBe(4.5)
    // (1000 + 10 x 45 + 10 x 60 + 100 x 6) / 10
    expect(c.cycles).toBeCloseTo(265)
    expect(() => cacheFigures({ Ir: 1000 }, 1)).toThrow(/no I1mr event.*--cache-sim=yes/)
  })

  it('renders ratios to the first subject, with the cache columns when simulated', () => {
    const plain = renderTable([
      { spec: 'core:bare:/u', perRequest: 1000 },
      { spec: 'core:ri:/u', perRequest: 1100 },
    ])
    expect(plain.split('\n')).toEqual(['| subject | instructions / request | vs first |', '| --- | ---: | ---: |', '| core:bare:/u | 1000 | 1.000x |', '| core:ri:/u | 1100 | 1.100x |'])
    const simulated = renderTable([
      { spec: 'a', perRequest: 1000, cache: { l1Misses: 40, llMisses: 0, mispredicts: 10, cycles: 1500 } },
      { spec: 'b', perRequest: 1020, cache: { l1Misses: 60, llMisses: 0.5, mispredicts: 20, cycles: 1870 } },
    ]).split('\n')
    expect(simulated[0]).toContain('estimated cycles')
    expect(simulated[3]).toBe('| b | 1020 | 1.020x | 60 | 0.5 | 20 | 1870 | 1.247x |')
    expect(renderTable([])).toBe('')
    expect(() => renderTable([{ spec: 'a', perRequest: 1, cache: { l1Misses: 1, llMisses: 0, mispredicts: 1, cycles: 12 } }, { spec: 'b', perRequest: 1 }])).toThrow(/b has no cache figures/)
  })
})
