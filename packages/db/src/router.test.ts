import { noopLogger, RiClosedError, RiConfigError } from '@ri/core'
import { describe, expect, it } from 'vitest'
import type { DbNode } from './node.js'
import { createDbRouter } from './router.js'

/** A tiny in-process node (no database): records which node ran what. */
function memoryNode(name: string, log: string[], extra: Partial<DbNode<string>> = {}): DbNode<string> {
  return {
    name,
    query: async (sql) => {
      log.push(`${name}:${sql}`)
      return name
    },
    ping: async () => {},
    ...extra,
  }
}

describe('createDbRouter options', () => {
  it('names every invalid option at once', () => {
    let error: unknown
    try {
      createDbRouter({
        primary: {} as never,
        replicas: [42 as never, { node: memoryNode('r', []), weight: -1 }],
        strategy: 'fastest' as never,
        maxLagMs: 'soon' as never,
        healthCheck: { interval: 'often' as never },
        classifierCacheSize: 1.5,
        replica: [] as never,
      } as never)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(RiConfigError)
    const options = (error as RiConfigError).problems.map((p) => p.option)
    expect(options).toEqual(
      expect.arrayContaining([
        'createDbRouter.primary',
        'createDbRouter.replicas[0]',
        'createDbRouter.replicas[1].weight',
        'createDbRouter.strategy',
        'createDbRouter.maxLagMs',
        'createDbRouter.healthCheck.interval',
        'createDbRouter.classifierCacheSize',
        'createDbRouter.replica',
      ]),
    )
    expect((error as RiConfigError).message).toMatch(/did you mean 'replicas'/)
  })

  it("refuses readYourWrites: 'lsn' when the nodes cannot report WAL positions", () => {
    expect(() => createDbRouter({ primary: memoryNode('p', []), replicas: [memoryNode('r', [])], readYourWrites: 'lsn', logger: noopLogger })).toThrow(
      /readYourWrites.*LSN mode needs walPosition/,
    )
  })

  it('refuses duplicate node names', () => {
    expect(() => createDbRouter({ primary: memoryNode('a', []), replicas: [memoryNode('a', [])], logger: noopLogger })).toThrow(/used only once/)
  })

  it('validates the feature options', () => {
    const db = createDbRouter({ primary: memoryNode('p', []), logger: noopLogger, healthCheck: false })
    expect(() => db.feature({ secret: 'short' })).toThrow(/db\.feature\.secret/)
    expect(() => db.feature({ secret: 'x'.repeat(16), cookie: false })).toThrow(/one carrier is needed/)
    expect(() => db.feature({ secret: 'x'.repeat(16), cookie: 'bad name;' })).toThrow(/db\.feature\.cookie/)
    expect(db.feature({ secret: 'x'.repeat(16) }).name).toBe('db')
  })
})

describe('strategies (health checks off: replicas trusted)', () => {
  const count = (log: string[]) => log.reduce<Record<string, number>>((acc, l) => ((acc[l.split(':')[0]!] = (acc[l.split(':')[0]!] ?? 0) + 1), acc), {})

  it('round-robin alternates, weighted follows weights, random uses every replica', async () => {
    for (const [strategy, expected] of [
      ['round-robin', { a: 50, b: 50 }],
      ['weighted', { a: 75, b: 25 }],
    ] as const) {
      const log: string[] = []
      const db = createDbRouter({
        primary: memoryNode('p', log),
        replicas: [{ node: memoryNode('a', log), weight: 3 }, { node: memoryNode('b', log), weight: 1 }],
        strategy,
        healthCheck: false,
        readYourWrites: 'time',
        logger: noopLogger,
      })
      for (let i = 0; i < 100; i++) await db.query('SELECT 1')
      expect(count(log)).toEqual(expected)
    }
    const log: string[] = []
    const db = createDbRouter({ primary: memoryNode('p', log), replicas: [memoryNode('a', log), memoryNode('b', log)], strategy: 'random', healthCheck: false, logger: noopLogger })
    for (let i = 0; i < 200; i++) await db.query('SELECT 1')
    expect(Object.keys(count(log)).sort()).toEqual(['a', 'b'])
  })

  it('least-busy prefers the replica with fewer waiting callers', async () => {
    const log: string[] = []
    const db = createDbRouter({
      primary: memoryNode('p', log),
      replicas: [memoryNode('a', log, { waiting: () => 5 }), memoryNode('b', log, { waiting: () => 0 })],
      strategy: 'least-busy',
      healthCheck: false,
      logger: noopLogger,
    })
    for (let i = 0; i < 10; i++) await db.query('SELECT 1')
    expect(count(log)).toEqual({ b: 10 })
  })
})

describe('scopes, tokens, status and close', () => {
  it('time mode: a write pins the scope to the primary; the token carries it to another scope', async () => {
    const log: string[] = []
    const db = createDbRouter({ primary: memoryNode('p', log), replicas: [memoryNode('r', log)], healthCheck: false, logger: noopLogger })
    const token = await db.scope(async () => {
      expect(db.sessionToken()).toBeUndefined()
      await db.query('UPDATE t SET a = 1')
      await db.query('SELECT a FROM t')
      return db.sessionToken()
    })
    expect(token).toMatch(/^t\d+$/)
    await db.runInScope(token, () => db.query('SELECT 2'))
    await db.query('SELECT 3') // no scope: replica
    expect(log).toEqual(['p:UPDATE t SET a = 1', 'p:SELECT a FROM t', 'p:SELECT 2', 'r:SELECT 3'])
  })

  it('reports status and readiness in @ri/health shape', async () => {
    const db = createDbRouter({ primary: memoryNode('p', []), replicas: [memoryNode('r', [])], logger: noopLogger, healthCheck: { interval: '1m' } })
    await db.ready()
    expect(db.status()).toEqual({
      primary: { name: 'p', healthy: true, walLsn: null },
      replicas: [{ name: 'r', healthy: true, lagMs: null, lagBytes: null, replayLsn: null }],
    })
    expect(db.readiness().status).toBe('pass')
    await db.close()
  })

  it('marks a replica whose probe fails as out, and reads fall back to the primary', async () => {
    const log: string[] = []
    const db = createDbRouter({
      primary: memoryNode('p', log),
      replicas: [memoryNode('r', log, { ping: async () => Promise.reject(new Error('connect ECONNREFUSED')) })],
      logger: noopLogger,
      healthCheck: { interval: '1m' },
    })
    await db.ready()
    const fallbacks: string[] = []
    db.events.on('db.fallback', (e) => fallbacks.push(e.reason))
    await db.query('SELECT 1')
    expect(log).toEqual(['p:SELECT 1'])
    expect(fallbacks).toEqual(['no-replica'])
    expect(db.readiness()).toMatchObject({ status: 'warn', output: 'replicas out of rotation: r (ping-failed)' })
    await db.close()
  })

  it('rejects with RiClosedError after close() and closes its nodes', async () => {
    let closed = 0
    const db = createDbRouter({ primary: memoryNode('p', [], { close: async () => void closed++ }), logger: noopLogger })
    await db.close()
    expect(closed).toBe(1)
    await expect(db.query('SELECT 1')).rejects.toBeInstanceOf(RiClosedError)
    await expect(db.primary.query('SELECT 1')).rejects.toBeInstanceOf(RiClosedError)
    await expect(db.transaction(async () => 1)).rejects.toBeInstanceOf(RiClosedError)
  })
})
