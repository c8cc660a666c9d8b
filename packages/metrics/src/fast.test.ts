import { Counter, Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createFastCounter, createFastHistogram } from './fast.js'

const BUCKETS = [0.005, 0.01, 0.1, 1, 2.5]
const LABELS = ['method', 'route', 'status_code'] as const
const OBSERVATIONS: Array<[Record<(typeof LABELS)[number], string>, number]> = [
  [{ method: 'GET', route: '/users/:id', status_code: '200' }, 0.003],
  [{ method: 'GET', route: '/users/:id', status_code: '200' }, 0.005], // on a bound: le is inclusive
  [{ method: 'GET', route: '/users/:id', status_code: '200' }, 0.7],
  [{ method: 'POST', route: '/users', status_code: '201' }, 3], // above every bound: +Inf only
  [{ method: 'GET', route: '/users/:id', status_code: '404' }, 0],
]

function both() {
  const ours = new Registry()
  const theirs = new Registry()
  const fast = createFastHistogram(ours, { name: 'h', help: 'help text', labelNames: LABELS, buckets: BUCKETS })
  const reference = new Histogram({ name: 'h', help: 'help text', labelNames: [...LABELS], buckets: BUCKETS, registers: [theirs] })
  for (const [labels, value] of OBSERVATIONS) {
    fast.observe(fast.series(labels), value)
    reference.observe(labels, value)
  }
  return { ours, theirs, fast }
}

describe('createFastHistogram', () => {
  it('renders exactly what a prom-client Histogram renders for the same observations', async () => {
    const { ours, theirs } = both()
    expect(await ours.metrics()).toBe(await theirs.metrics())
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON())
  })

  it('renders the same under OpenMetrics', async () => {
    const { ours, theirs } = both()
    ours.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never)
    theirs.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never)
    expect(await ours.metrics()).toBe(await theirs.metrics())
  })

  it('carries an exemplar on the bucket the value fell in, shown under OpenMetrics only', async () => {
    const registry = new Registry()
    const h = createFastHistogram(registry, { name: 'h', help: 'x', labelNames: ['route'], buckets: BUCKETS })
    h.observe(h.series({ route: '/a' }), 0.05, { trace_id: 'abc', span_id: 'def' })
    expect(await registry.metrics()).not.toContain('# {')
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never)
    const om = await registry.metrics()
    expect(om).toMatch(/h_bucket\{le="0.1",route="\/a"\} 1 # \{trace_id="abc",span_id="def"\} 0.05 [0-9.]+/)
    expect(om).toMatch(/h_bucket\{le="0.01",route="\/a"\} 0\n/)
  })

  it('one series per label set; reset zeroes series that callers still hold', async () => {
    const registry = new Registry()
    const h = createFastHistogram(registry, { name: 'h', help: 'x', labelNames: ['route'], buckets: [1] })
    const a = h.series({ route: '/a' })
    expect(h.series({ route: '/a' })).toBe(a)
    h.observe(a, 0.5)
    registry.resetMetrics()
    expect(await registry.metrics()).toContain('h_count{route="/a"} 0')
    h.observe(a, 2)
    const text = await registry.metrics()
    expect(text).toContain('h_bucket{le="1",route="/a"} 0')
    expect(text).toContain('h_bucket{le="+Inf",route="/a"} 1')
    expect(text).toContain('h_sum{route="/a"} 2')
  })
})

describe('createFastCounter', () => {
  const fill = () => {
    const ours = new Registry()
    const theirs = new Registry()
    const fast = createFastCounter(ours, { name: 'ri_decisions_total', help: 'decisions', labelNames: ['rule', 'result'] })
    const reference = new Counter({ name: 'ri_decisions_total', help: 'decisions', labelNames: ['rule', 'result'], registers: [theirs] })
    const plainOurs = createFastCounter(ours, { name: 'ri_gaps_total', help: 'gaps', labelNames: [] })
    const plainTheirs = new Counter({ name: 'ri_gaps_total', help: 'gaps', registers: [theirs] })
    for (const [labels, n] of [[{ rule: 'login', result: 'allowed' }, 1], [{ rule: 'login', result: 'limited' }, 2], [{ rule: 'login', result: 'allowed' }, 3]] as const) {
      fast.inc(labels, n)
      reference.inc(labels, n)
    }
    plainOurs.inc()
    plainTheirs.inc()
    return { ours, theirs }
  }

  it('renders exactly what a prom-client Counter renders, in both formats and as JSON', async () => {
    const { ours, theirs } = fill()
    expect(await ours.metrics()).toBe(await theirs.metrics())
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON())
    ours.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never)
    theirs.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never)
    expect(await ours.metrics()).toBe(await theirs.metrics())
  })

  it('prepared label sets count into the same series as inc(), across reset and under the cap', async () => {
    const registry = new Registry()
    const drops: number[] = []
    const c = createFastCounter(registry, { name: 'ri_p_total', help: 'p', labelNames: ['rule', 'result'], cap: { max: 2, overflow: '__overflow__', onDrop: () => drops.push(1) } })
    const allowed = c.prepare({ rule: 'login', result: 'allowed' })
    const limited = c.prepare({ rule: 'login', result: 'limited' })
    const third = c.prepare({ rule: 'api', result: 'allowed' })
    c.incPrepared(allowed)
    c.inc({ rule: 'login', result: 'allowed' }, 2)
    c.incPrepared(limited, 5)
    c.incPrepared(third) // over the cap of two series: overflow
    const values = async () => (await c.get()).values.map((v) => [v.labels, v.value])
    expect(await values()).toEqual([
      [{ rule: 'login', result: 'allowed' }, 3],
      [{ rule: 'login', result: 'limited' }, 5],
      [{ rule: '__overflow__', result: '__overflow__' }, 1],
    ])
    expect(drops).toHaveLength(1)
    c.reset()
    c.incPrepared(third)
    expect(await values()).toEqual([[{ rule: 'api', result: 'allowed' }, 1]])
  })

  it('reset empties it', async () => {
    const { ours } = fill()
    ours.resetMetrics()
    expect(await ours.metrics()).not.toMatch(/^ri_decisions_total\{/m)
  })
})
