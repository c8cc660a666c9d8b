import { describe, expect, it } from 'vitest'
import { Timings, renderServerTiming } from './server-timing.js'

describe('Server-Timing', () => {
  it('renders marks in order with a total', () => {
    expect(
      renderServerTiming(
        [
          { name: 'cache', dur: 0.2, desc: 'hit' },
          { name: 'db', dur: 12.1 },
        ],
        15.3,
      ),
    ).toBe('cache;dur=0.2;desc="hit", db;dur=12.1, total;dur=15.3')
  })

  it('keeps sub-millisecond precision and rounds the rest to 0.1 ms', () => {
    expect(renderServerTiming([{ name: 'a', dur: 0.01234 }, { name: 'b', dur: 12.345 }])).toBe('a;dur=0.012, b;dur=12.3')
  })

  it('escapes descriptions and cannot be used to inject headers', () => {
    const value = renderServerTiming([{ name: 'db', dur: 1, desc: 'say "hi" \\ back\r\nSet-Cookie: x=1' }])
    expect(value).toBe('db;dur=1;desc="say \\"hi\\" \\\\ back??Set-Cookie: x=1"')
    expect(value).not.toMatch(/[\r\n]/)
    expect(renderServerTiming([{ name: 'd\u00e9j\u00e0', desc: '\u00e9t\u00e9' }])).toBe('d_j_;desc="?t?"')
  })

  it('forces names to tokens', () => {
    expect(renderServerTiming([{ name: 'db query;dur=0, x', dur: 1 }])).toBe('db_query_dur_0__x;dur=1')
    expect(renderServerTiming([{ name: '' }])).toBe('_')
  })

  it('bounds the number of marks', () => {
    const t = new Timings()
    for (let i = 0; i < 100; i++) t.add(`m${i}`, i)
    expect(t.entries).toHaveLength(32)
  })

  it('measures with start() and measure()', async () => {
    const t = new Timings()
    const end = t.start('handler')
    await new Promise((r) => setTimeout(r, 5))
    const dur = end('done')
    expect(dur).toBeGreaterThan(3)
    await t.measure('db', () => new Promise((r) => setTimeout(r, 2)))
    expect(t.entries.map((e) => e.name)).toEqual(['handler', 'db'])
    expect(t.entries[0]!.desc).toBe('done')
    expect(Object.keys(t.toJSON())).toEqual(['handler', 'db'])
  })
})
