import { RiConfigError } from '@ri/core'
import { describe, expect, it } from 'vitest'
import { createHealth } from './health.js'
import { DEFAULTS, normalizeOptions, underKubernetes } from './options.js'

describe('options', () => {
  it('applies frozen defaults', () => {
    const o = normalizeOptions({}, {})
    expect(Object.isFrozen(DEFAULTS)).toBe(true)
    expect(o.timeoutMs).toBe(1_000)
    expect(o.cacheMs).toBe(1_000)
    expect(o.maxStaleMs).toBe(5_000)
    expect(o.budgetMs).toBe(2_000)
    expect(o.paths).toEqual({ liveness: '/health', readiness: '/health/ready', startup: '/health/startup' })
    expect(o.signals).toEqual(['SIGTERM', 'SIGINT'])
    expect(o.drainDelayMs).toBe(0)
    expect(o.shutdownTimeoutMs).toBe(10_000)
    expect(o.format).toBe('health+json')
  })

  it('waits 5 s before closing under Kubernetes, 0 otherwise', () => {
    expect(underKubernetes({ KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toBe(true)
    expect(normalizeOptions({}, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }).drainDelayMs).toBe(5_000)
    expect(normalizeOptions({ shutdown: { drainDelayMs: '2s' } }, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }).drainDelayMs).toBe(2_000)
    expect(normalizeOptions({}, {}).drainDelayMs).toBe(0)
  })

  it('accepts checks as an array or a record, with durations as strings', () => {
    const fn = async () => {}
    const o = normalizeOptions({
      timeoutMs: '250ms',
      checks: { 'a:responseTime': fn, 'b:x': { check: fn, critical: false, cacheMs: '2s' } },
    })
    expect(o.checks.map((c) => [c.name, c.timeoutMs, c.critical, c.cacheMs])).toEqual([
      ['a:responseTime', 250, true, 1_000],
      ['b:x', 250, false, 2_000],
    ])
    const arr = normalizeOptions({ checks: [{ name: 'c', check: fn, timeoutMs: 50 }] })
    expect(arr.checks[0]!.timeoutMs).toBe(50)
  })

  it('names every bad option in one RiConfigError', () => {
    let error: RiConfigError | undefined
    try {
      createHealth({
        timeoutMs: '1 second' as never,
        cacheMs: -1,
        format: 'xml' as never,
        paths: { readiness: 'ready' },
        shutdown: { signals: ['SIGFOO' as never], exit: 1 as never, drainDelay: 5 } as never,
        checks: [{ name: 'a:b:c', check: async () => {} }, { name: 'dup', check: 1 as never }],
        chekcs: [],
      } as never)
    } catch (e) {
      error = e as RiConfigError
    }
    expect(error).toBeInstanceOf(RiConfigError)
    const options = error!.problems.map((p) => p.option)
    expect(options).toEqual(
      expect.arrayContaining([
        'createHealth.timeoutMs',
        'createHealth.cacheMs',
        'createHealth.format',
        'createHealth.paths.readiness',
        'createHealth.shutdown.signals',
        'createHealth.shutdown.exit',
        'createHealth.shutdown.drainDelay',
        'createHealth.checks[0].name',
        'createHealth.checks[1].check',
        'createHealth.chekcs',
      ]),
    )
    expect(error!.message).toMatch(/did you mean 'checks'/)
  })

  it('rejects duplicate check names and maxStaleMs below cacheMs', () => {
    const fn = async () => {}
    expect(() => createHealth({ shutdown: false, checks: [{ name: 'a', check: fn }, { name: 'a', check: fn }] })).toThrow(/unique check names/)
    expect(() => createHealth({ shutdown: false, cacheMs: 1000, maxStaleMs: 10 })).toThrow(/maxStaleMs/)
  })
})
