import { describe, expect, it } from 'vitest'
import { createMetrics } from './metrics.js'

/** `http_server_request_duration_seconds_count` per `method route status` from a scrape. */
async function counts(metrics: ReturnType<typeof createMetrics>): Promise<Map<string, number>> {
  const { body } = await metrics.handler()('text/plain')
  const out = new Map<string, number>()
  for (const line of String(body).split('\n')) {
    const m = /^http_server_request_duration_seconds_count\{method="([^"]*)",route="([^"]*)",status_code="([^"]*)"\} (\d+)$/.exec(line)
    if (m) out.set(`${m[1]} ${m[2]} ${m[3]}`, Number(m[4]))
  }
  return out
}

describe('record: series per method, route and status', () => {
  it('counts every request into its own series, in any order, with runs and switches, up to the cap', async () => {
    const metrics = createMetrics({ defaultMetrics: false, maxSeries: 5, unmatchedRoute: 'unmatched' })
    const sets: Array<[string, string | undefined, number]> = [
      ['GET', '/a', 200],
      ['GET', '/a', 500],
      ['POST', '/a', 200],
      ['GET', '/b', 200],
      ['GET', undefined, 404],
      ['PUT', '/b', 200], // the sixth label set: beyond the cap, into the overflow series
      ['GET', '/c', 200], // also beyond
    ]
    const expected = new Map<string, number>()
    const seen: string[] = []
    let seed = 7
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    for (let i = 0; i < 3000; i++) {
      // runs of one label set (the cached path) mixed with switches
      const [method, route, status] = sets[Math.floor(next() * sets.length)]!
      const run = 1 + Math.floor(next() * 4)
      for (let k = 0; k < run; k++) {
        metrics.record(method, route, status, 1)
        const key = `${method} ${route ?? 'unmatched'} ${status}`
        if (!seen.includes(key)) seen.push(key)
        const own = seen.indexOf(key) < 5 ? key : '__overflow__ __overflow__ __overflow__'
        expected.set(own, (expected.get(own) ?? 0) + 1)
      }
    }
    expect(seen).toHaveLength(7)
    expect(await counts(metrics)).toEqual(expected)
  })
})
