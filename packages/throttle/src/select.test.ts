import { createPipeline, type Exchange, RiConfigError } from '@ri/core'
import { describe, expect, it, vi } from 'vitest'
import { selectThrottled } from './select.js'
import { createThrottle, type Throttle } from './throttle.js'

// The throttle object is frozen: observe route() through a wrapper that delegates to it.
const observed = (t: Throttle) => {
  const route = vi.fn((rule: Parameters<Throttle['route']>[0]) => t.route(rule))
  return { throttle: { ...t, route } as Throttle, route }
}

const pipeline = createPipeline([])
const ex = (): Exchange => pipeline.exchange({ method: 'POST', url: '/sync', route: '/sync', headers: {}, remoteAddress: '192.0.2.1' })

async function statusOf(feature: { onRequest?: (ex: Exchange) => unknown }): Promise<number | undefined> {
  const answer = (await feature.onRequest?.(ex())) as { status: number } | undefined
  return answer?.status
}

describe('selectThrottled', () => {
  it("routes through the adapter's throttle when the route names none", async () => {
    const { throttle: shared, route } = observed(createThrottle({ default: false }))
    const selection = selectThrottled({ limit: 1, window: '1m' })
    expect(selection.feature).toBeUndefined()
    const feature = selection.build({ throttle: shared })
    expect(route).toHaveBeenCalledTimes(1)
    expect(selection.build({ throttle: shared })).toBe(feature) // one rule per throttle, not per call
    expect(await statusOf(feature)).toBeUndefined()
    expect(await statusOf(feature)).toBe(429)
  })

  it('uses a private throttle, created once, when neither the route nor the adapter has one', async () => {
    const selection = selectThrottled({ limit: 1, window: '1m' })
    const feature = selection.build({})
    expect(selection.build({ throttle: null })).toBe(feature)
    expect(await statusOf(feature)).toBeUndefined()
    expect(await statusOf(feature)).toBe(429)
  })

  it("is ready at once on the route's own throttle, and ignores the adapter's", () => {
    const own = createThrottle({ default: false })
    const { throttle: adapters, route } = observed(createThrottle({ default: false }))
    const selection = selectThrottled({ limit: 5, window: '1m', throttle: own })
    expect(selection.feature).toBeDefined()
    expect(selection.build({ throttle: adapters })).toBe(selection.feature)
    expect(route).not.toHaveBeenCalled()
  })

  it('validates the rule when the route is defined', () => {
    expect(() => selectThrottled({ limit: 0, window: '1m' })).toThrow(RiConfigError)
  })
})
