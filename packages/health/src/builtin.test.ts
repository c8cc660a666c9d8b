import { describe, expect, it } from 'vitest'
import { dbRouterCheck, diskCheck, eventLoopCheck, memoryCheck, redisCheck, pgCheck } from './checks/builtin.js'
import { createHealth } from './health.js'

describe('built-in checks', () => {
  it('dbRouterCheck: primary fail is fail, replica down or lagging is warn', async () => {
    let state = {
      primary: { name: 'pg-primary', healthy: true },
      replicas: [
        { name: 'r1', healthy: true, lagMs: 12 },
        { name: 'r2', healthy: true, lagMs: 9_000 },
        { name: 'r3', healthy: false, lagMs: null, error: 'connect ECONNREFUSED' },
      ],
    }
    const health = createHealth({ shutdown: false, cacheMs: 0, checks: [dbRouterCheck({ status: () => state }, { maxLagMs: '5s' })] })
    let report = await health.readiness()
    expect(report.httpStatus).toBe(200)
    expect(report.body.status).toBe('warn')
    expect(report.body.checks!['db:replication']!.map((e) => [e.componentId, e.status, e.observedValue])).toEqual([
      ['pg-primary', 'pass', undefined],
      ['r1', 'pass', 12],
      ['r2', 'warn', 9_000],
      ['r3', 'warn', undefined],
    ])
    expect(report.body.checks!['db:replication']![2]!.output).toBe('replication lag 9000 ms exceeds 5000 ms')
    expect(report.body.checks!['db:replication']![3]!.output).toBe('connect ECONNREFUSED; reads go to the primary')
    state = { primary: { name: 'pg-primary', healthy: false }, replicas: [] }
    report = await health.readiness()
    expect(report.httpStatus).toBe(503)
    expect(report.body.checks!['db:replication']![0]).toMatchObject({ status: 'fail', output: 'primary unreachable' })
    health.close()
  })

  it('memoryCheck and eventLoopCheck need no I/O and honour thresholds', async () => {
    const health = createHealth({
      shutdown: false,
      checks: [memoryCheck({ maxHeapBytes: 1, critical: false }), eventLoopCheck({ maxDelayMs: 10_000 })],
    })
    const { body } = await health.readiness()
    expect(body.status).toBe('warn')
    expect(body.checks!['memory:utilization']!.map((e) => [e.componentId, e.status, e.observedUnit])).toEqual([
      ['heapUsed', 'warn', 'bytes'],
      ['rss', 'pass', 'bytes'],
    ])
    expect(body.checks!['eventLoop:delay']![0]).toMatchObject({ status: 'pass', observedUnit: 'ms', componentType: 'system' })
    health.close()
  })

  it('diskCheck reports free bytes and fails below the minimum', async () => {
    const health = createHealth({ shutdown: false, checks: [diskCheck({ path: '/', minFreeBytes: Number.MAX_SAFE_INTEGER })] })
    const { body } = await health.readiness()
    const [entry] = body.checks!['disk:free']!
    expect(entry).toMatchObject({ status: 'fail', componentId: '/', observedUnit: 'bytes' })
    expect(entry!.observedValue as number).toBeGreaterThan(0)
    health.close()
  })

  it('redisCheck fails at once while the client is reconnecting (no queued PING)', async () => {
    let pings = 0
    const client = { status: 'reconnecting', ping: async () => void pings++ }
    const health = createHealth({ shutdown: false, checks: [redisCheck(client)] })
    const { body } = await health.readiness()
    expect(body.checks!['redis:responseTime']![0]).toMatchObject({ status: 'fail', output: 'redis connection is reconnecting' })
    expect(pings).toBe(0)
    health.close()
  })

  it('factories validate their options', () => {
    expect(() => redisCheck({} as never)).toThrow(/redisCheck.redis/)
    expect(() => pgCheck({ query: async () => {} }, { nmae: 'x' } as never)).toThrow(/did you mean 'name'/)
    expect(() => dbRouterCheck({ status: () => ({ primary: { healthy: true }, replicas: [] }) }, { maxLagMs: 'soon' as never })).toThrow(/maxLagMs/)
    expect(() => diskCheck({ minFreePercent: 120 })).toThrow(/minFreePercent/)
  })
})
