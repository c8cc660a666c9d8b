import { describe, expect, it } from 'vitest'
import { createRiPipeline, type FeatureProvider, type MetricsProvider } from './compose.js'
import { RiConfigError } from './errors.js'
import { createEvents, type RiEvents } from './events.js'
import type { Feature } from './pipeline.js'

const provider = (name: string, order: string[], events?: RiEvents): FeatureProvider => ({
  events,
  feature: (): Feature => ({ name, onRequest: () => void order.push(name) }),
})

describe('createRiPipeline', () => {
  it('orders features metrics → health → slowlog → db → throttle → extra, whatever the key order', async () => {
    const order: string[] = []
    const observed: RiEvents[] = []
    const metrics: MetricsProvider = { ...provider('metrics', order), observe: (e) => void observed.push(e) }
    const throttleEvents = createEvents()
    const p = createRiPipeline({
      throttle: provider('throttle', order, throttleEvents),
      features: [{ name: 'mine', onRequest: () => void order.push('mine') }],
      db: provider('db', order),
      slowlog: provider('slowlog', order),
      health: provider('health', order, throttleEvents),
      metrics,
    })
    await p.request(p.exchange({ method: 'GET', url: '/', headers: {} }))
    expect(order).toEqual(['metrics', 'health', 'slowlog', 'db', 'throttle', 'mine'])
    // Metrics observes the pipeline's own events and each distinct package bus once.
    expect(observed).toHaveLength(2)
    expect(observed).toContain(p.events)
    expect(observed).toContain(throttleEvents)
  })

  it('names a wrong object passed as a feature', () => {
    expect(() => createRiPipeline({ throttle: {} as never })).toThrow(RiConfigError)
    expect(() => createRiPipeline({ throttle: {} as never })).toThrow(/ri\.throttle/)
    expect(() => createRiPipeline({ metrics: { feature: () => ({ name: 'm' }) } as never })).toThrow(/observe/)
    expect(() => createRiPipeline({ thrQttle: 1 } as never)).toThrow(/did you mean 'throttle'/)
  })
})
