import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { context, type Span, type SpanOptions, trace, type Tracer } from '@opentelemetry/api'
import { createEvents, createPipeline, noopLogger, type RiEventMap } from '@ri/core'
import { createNodeHandler } from '@ri/core/node'
import { describeWithPostgres, type PostgresCluster, registerTestContextManager, startPostgres } from '@ri/testing'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { runDbNodeContract } from './node.contract.js'
import { type DbNode, pgNode } from './node.js'
import { createDbRouter, type DbRouter, type DbRouterOptions } from './router.js'

const APPLY_DELAY_MS = 500
const INTERVAL_MS = 100

/** A DbNode over one plain pg.Client (no pool): the "any driver" shape of the interface. */
function clientNode(url: string, name: string): DbNode<pg.QueryResult> & { open(): Promise<void> } {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {})
  const one = async (sql: string) => (await client.query(sql)).rows[0]
  return {
    name,
    open: async () => {
      await client.connect()
    },
    query: (sql, params) => client.query(sql, params as unknown[]),
    walPosition: async () => (await one('SELECT pg_current_wal_insert_lsn()::text AS l')).l,
    replayPosition: async () => (await one('SELECT pg_last_wal_replay_lsn()::text AS l')).l,
    ping: async () => {
      await client.query('SELECT 1')
    },
    close: () => client.end(),
  }
}

type Recorded = RiEventMap['db.query']

describeWithPostgres('@ri/db against a real primary + streaming replica', () => {
  let cluster: PostgresCluster
  const routers: DbRouter[] = []
  const pools: pg.Pool[] = []
  const pool = (url: string) => {
    const p = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 2_000 })
    pools.push(p)
    return p
  }
  const makeRouter = (extra: Partial<DbRouterOptions> = {}) => {
    const db = createDbRouter({
      primary: pgNode(pool(cluster.primary.url), { name: 'primary' }),
      replicas: [pgNode(pool(cluster.replicas[0]!.url), { name: 'replica1' })],
      healthCheck: { interval: INTERVAL_MS, timeout: 500 },
      logger: noopLogger,
      ...extra,
    })
    routers.push(db)
    return db
  }
  const record = (db: DbRouter) => {
    const seen: Recorded[] = []
    db.events.on('db.query', (e) => seen.push(e))
    return seen
  }

  beforeAll(async () => {
    cluster = await startPostgres({ replicas: 1, applyDelayMs: APPLY_DELAY_MS })
    const setup = new pg.Client({ connectionString: cluster.primary.url })
    await setup.connect()
    await setup.query('CREATE TABLE items (id serial PRIMARY KEY, v text NOT NULL)')
    await setup.query('CREATE TABLE ticks (id serial PRIMARY KEY, at timestamptz DEFAULT now())')
    await setup.end()
    // wait until the replica has the schema
    const probe = new pg.Client({ connectionString: cluster.replicas[0]!.url })
    await probe.connect()
    await vi.waitFor(async () => expect((await probe.query("SELECT to_regclass('ticks') AS t")).rows[0].t).toBe('ticks'), { timeout: 10_000, interval: 100 })
    await probe.end()
  })

  afterAll(async () => {
    await Promise.all(routers.map((r) => r.close()))
    await Promise.all(pools.map((p) => p.end().catch(() => {})))
    await cluster?.stop()
  })

  describe('node contract: pgNode(pool)', () => {
    runDbNodeContract({
      primary: () => pgNode(pool(cluster.primary.url), { name: 'contract-primary' }),
      replica: () => pgNode(pool(cluster.replicas[0]!.url), { name: 'contract-replica' }),
    })
  })

  describe('node contract: a hand-written node over one pg.Client', () => {
    const nodes: Array<ReturnType<typeof clientNode>> = []
    let primary: ReturnType<typeof clientNode>
    let replica: ReturnType<typeof clientNode>
    beforeAll(async () => {
      primary = clientNode(cluster.primary.url, 'client-primary')
      replica = clientNode(cluster.replicas[0]!.url, 'client-replica')
      nodes.push(primary, replica)
      await Promise.all(nodes.map((n) => n.open()))
    })
    afterAll(async () => {
      await Promise.all(nodes.map((n) => n.close?.()))
    })
    runDbNodeContract({ primary: () => primary, replica: () => replica })
  })

  it('routes by statement: reads to the replica, writes and locking reads to the primary', async () => {
    const db = makeRouter()
    await db.ready()
    const seen = record(db)
    await db.query('SELECT count(*) FROM items')
    await db.query("INSERT INTO items (v) VALUES ('a')")
    await db.query('SELECT * FROM items FOR UPDATE')
    await db.query('WITH x AS (INSERT INTO items (v) VALUES ($1) RETURNING id) SELECT id FROM x', ['b'])
    await db.query('/* ri:primary */ SELECT 1')
    await db.primary.query('SELECT 1')
    await db.replica.query('SELECT 1')
    expect(seen.map((e) => `${e.role}:${e.reason}`)).toEqual([
      'replica:read',
      'primary:write',
      'primary:locking',
      'primary:write',
      'primary:hint',
      'primary:explicit',
      'replica:explicit',
    ])
    expect(seen.every((e) => e.ok && e.durationMs >= 0)).toBe(true)
  })

  it('read-your-writes: 1,000 write-then-read iterations in a scope see the row every time; other scopes read the replica', async () => {
    const db = makeRouter()
    await db.ready()
    const seen = record(db)
    let stale = 0
    let otherScopeOnReplica = 0
    for (let i = 0; i < 1000; i++) {
      await db.scope(async () => {
        const { rows } = await db.query('INSERT INTO items (v) VALUES ($1) RETURNING id', [`ryw-${i}`])
        const read = await db.query('SELECT v FROM items WHERE id = $1', [rows[0].id])
        if (read.rows.length !== 1 || read.rows[0].v !== `ryw-${i}`) stale++
      })
      if (i % 50 === 0) {
        const before = seen.length
        await db.scope(() => db.query('SELECT count(*) FROM items'))
        if (seen[before]?.role === 'replica') otherScopeOnReplica++
      }
    }
    expect(stale).toBe(0)
    expect(otherScopeOnReplica).toBe(20)
    // the same-scope reads went to the primary because the replica was (500 ms) behind
    expect(seen.filter((e) => e.reason === 'read-your-writes').length).toBeGreaterThanOrEqual(990)
  }, 60_000)

  it('read-your-writes uses the replica once it has replayed the position, and can wait for it', async () => {
    const db = makeRouter()
    await db.ready()
    const seen = record(db)
    await db.scope(async () => {
      const { rows } = await db.query('INSERT INTO items (v) VALUES ($1) RETURNING id', ['later'])
      const token = db.sessionToken()
      expect(token).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
      await vi.waitFor(
        async () => {
          await db.refresh()
          const r = await db.query('SELECT v FROM items WHERE id = $1', [rows[0].id])
          expect(seen.at(-1)?.role).toBe('replica')
          expect(r.rows[0].v).toBe('later')
        },
        { timeout: 5_000, interval: 100 },
      )
    })

    const waiting = makeRouter({ readYourWrites: { mode: 'lsn', wait: '3s' } })
    await waiting.ready()
    const seenWaiting = record(waiting)
    await waiting.scope(async () => {
      const { rows } = await waiting.query('INSERT INTO items (v) VALUES ($1) RETURNING id', ['waited'])
      const r = await waiting.query('SELECT v FROM items WHERE id = $1', [rows[0].id])
      expect(r.rows[0].v).toBe('waited')
      expect(seenWaiting.at(-1)).toMatchObject({ role: 'replica', reason: 'read' })
    })
  })

  it('carries the position across scopes with sessionToken()/runInScope()', async () => {
    const db = makeRouter()
    await db.ready()
    const token = await db.scope(async () => {
      await db.query("INSERT INTO items (v) VALUES ('carried')")
      return db.sessionToken()
    })
    const seen = record(db)
    const rows = await db.runInScope(token, () => db.query("SELECT id FROM items WHERE v = 'carried'"))
    expect(rows.rows).toHaveLength(1)
    expect(seen[0]).toMatchObject({ role: 'primary', reason: 'read-your-writes' })
    await db.runInScope('garbage', () => db.query('SELECT 1'))
    expect(seen[1]).toMatchObject({ role: 'replica' })
  })

  it('time-window mode keeps reads on the primary after a write, for drivers without WAL positions', async () => {
    const db = makeRouter({ readYourWrites: { mode: 'time', window: '1s' } })
    await db.ready()
    const seen = record(db)
    await db.scope(async () => {
      await db.query("INSERT INTO items (v) VALUES ('tw')")
      expect(db.sessionToken()).toMatch(/^t\d+$/)
      await db.query("SELECT id FROM items WHERE v = 'tw'")
      expect(seen.at(-1)).toMatchObject({ role: 'primary', reason: 'read-your-writes' })
      await sleep(1_100)
      await db.query('SELECT 1')
      expect(seen.at(-1)).toMatchObject({ role: 'replica' })
    })
  })

  it('transactions pin one primary connection, never touch a replica, and roll back on throw', async () => {
    const db = makeRouter()
    await db.ready()
    const seen = record(db)
    const id = await db.transaction(async (tx) => {
      const { rows } = await tx.query("INSERT INTO items (v) VALUES ('tx') RETURNING id")
      await tx.query('SELECT * FROM items WHERE id = $1', [rows[0].id])
      await db.query('SELECT 1') // through the scope: same transaction
      await db.replica.query('SELECT 2') // even explicit replica reads stay in the transaction
      const pid1 = (await tx.query('SELECT pg_backend_pid() AS p')).rows[0].p
      const pid2 = (await db.query('SELECT pg_backend_pid() AS p')).rows[0].p
      expect(pid1).toBe(pid2)
      return rows[0].id as number
    })
    expect(seen.length).toBeGreaterThanOrEqual(8)
    expect(seen.every((e) => e.role === 'primary' && e.reason === 'transaction')).toBe(true)
    expect((await db.primary.query('SELECT v FROM items WHERE id = $1', [id])).rows[0].v).toBe('tx')

    await expect(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO items (v) VALUES ('rolled-back')")
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect((await db.primary.query("SELECT count(*)::int AS n FROM items WHERE v = 'rolled-back'")).rows[0].n).toBe(0)

    // nested transaction = savepoint: the inner failure is undone, the outer work commits
    await db.transaction(async (tx) => {
      await tx.query("INSERT INTO items (v) VALUES ('outer')")
      await expect(
        db.transaction(async (inner) => {
          await inner.query("INSERT INTO items (v) VALUES ('inner')")
          throw new Error('inner boom')
        }),
      ).rejects.toThrow('inner boom')
    })
    const counts = await db.primary.query("SELECT v, count(*)::int AS n FROM items WHERE v IN ('outer', 'inner') GROUP BY v")
    expect(counts.rows).toEqual([{ v: 'outer', n: 1 }])
    expect(seen.some((e) => e.role === 'replica')).toBe(false)
  })

  it('a write function the user marked volatile goes to the primary; a replica refusing a write is retried there and learned', async () => {
    const setup = new pg.Client({ connectionString: cluster.primary.url })
    await setup.connect()
    await setup.query("CREATE FUNCTION add_item(t text) RETURNS int LANGUAGE sql AS $$ INSERT INTO items (v) VALUES (t) RETURNING id $$")
    await setup.end()
    await sleep(APPLY_DELAY_MS + 300)
    const marked = makeRouter({ volatileFunctions: ['add_item'] })
    await marked.ready()
    const seen = record(marked)
    await marked.query("SELECT add_item('marked')")
    expect(seen.at(-1)).toMatchObject({ role: 'primary', reason: 'volatile' })

    const unmarked = makeRouter()
    await unmarked.ready()
    const seen2 = record(unmarked)
    const res = await unmarked.query("SELECT add_item('unmarked')")
    expect(res.rows[0].add_item).toBeGreaterThan(0)
    expect(seen2.map((e) => `${e.role}:${e.ok}`)).toEqual(['replica:false', 'primary:true'])
    await unmarked.query("SELECT add_item('unmarked')")
    expect(seen2.at(-1)).toMatchObject({ role: 'primary', reason: 'learned' })
    // explicit replica reads never turn into primary writes
    await expect(unmarked.replica.query("SELECT add_item('unmarked')")).rejects.toMatchObject({ code: 'RI_DB_READ_ONLY_VIOLATION' })
    const fresh = makeRouter()
    await fresh.ready()
    await expect(fresh.replica.query("SELECT add_item('explicit')")).rejects.toMatchObject({ code: 'RI_DB_READ_ONLY_VIOLATION' })
    await expect(unmarked.replica.query("INSERT INTO items (v) VALUES ('x')")).rejects.toMatchObject({ code: 'RI_DB_READ_ONLY_VIOLATION' })
  })

  it('carries read-your-writes across two real HTTP requests in a signed cookie or header', async () => {
    const db = makeRouter()
    await db.ready()
    const seen = record(db)
    const secret = 'test-secret-at-least-16-chars'
    const pipeline = createPipeline([db.feature({ secret, header: 'x-ri-lsn' })])
    const server = http.createServer(
      createNodeHandler(pipeline, [
        {
          method: 'POST',
          path: '/items/:v',
          handler: async (_req, _res, ctx) => {
            const { rows } = await db.query('INSERT INTO items (v) VALUES ($1) RETURNING id', [ctx.params.v])
            await ctx.json(201, { id: rows[0].id })
          },
        },
        {
          method: 'GET',
          path: '/items/:id',
          handler: async (_req, _res, ctx) => {
            const before = seen.length
            const { rows } = await db.query('SELECT v FROM items WHERE id = $1', [Number(ctx.params.id)])
            await ctx.json(rows.length ? 200 : 404, { v: rows[0]?.v, role: seen[before]?.role })
          },
        },
      ]),
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      for (let i = 0; i < 20; i++) {
        const post = await fetch(`${base}/items/http-${i}`, { method: 'POST' })
        expect(post.status).toBe(201)
        const setCookie = post.headers.get('set-cookie')!
        expect(setCookie).toMatch(/^ri_lsn=[^;]+; Max-Age=30; Path=\/; HttpOnly; SameSite=Lax$/)
        const cookie = setCookie.split(';')[0]!
        const { id } = (await post.json()) as { id: number }
        // next page load with the cookie: the user's own write, every time
        const get = await fetch(`${base}/items/${id}`, { headers: { cookie } })
        expect(get.status).toBe(200)
        expect(await get.json()).toEqual({ v: `http-${i}`, role: 'primary' })
        // API client using the header instead
        const viaHeader = await fetch(`${base}/items/${id}`, { headers: { 'x-ri-lsn': post.headers.get('x-ri-lsn')! } })
        expect(await viaHeader.json()).toEqual({ v: `http-${i}`, role: 'primary' })
      }
      // no token, or a tampered one: another user's read goes to the replica
      const anon = await fetch(`${base}/items/1`)
      expect(((await anon.json()) as { role: string }).role).toBe('replica')
      const post = await fetch(`${base}/items/tamper`, { method: 'POST' })
      const cookie = post.headers.get('set-cookie')!.split(';')[0]!
      const tampered = cookie.replace(/=([0-9A-F]+)\//, (_m, hi: string) => `=${hi === '0' ? '1' : '0'}/`)
      expect(tampered).not.toBe(cookie)
      const res = await fetch(`${base}/items/1`, { headers: { cookie: tampered } })
      expect(((await res.json()) as { role: string }).role).toBe('replica')
      // GETs that wrote nothing set no cookie
      expect(res.headers.get('set-cookie')).toBeNull()
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })

  it('emits OpenTelemetry spans with db.system, role and statement kind under a recording parent', async () => {
    const spans: Array<{ name: string; attributes: Record<string, unknown>; ended: boolean }> = []
    const makeSpan = (name: string, attributes: Record<string, unknown> = {}): Span => {
      const rec = { name, attributes: { ...attributes }, ended: false }
      spans.push(rec)
      const span: Span = {
        spanContext: () => ({ traceId: '0'.repeat(31) + '1', spanId: '0'.repeat(15) + '1', traceFlags: 1 }),
        setAttribute: (k, v) => ((rec.attributes[k] = v), span),
        setAttributes: (a) => (Object.assign(rec.attributes, a), span),
        addEvent: () => span,
        addLink: () => span,
        addLinks: () => span,
        setStatus: () => span,
        updateName: () => span,
        end: () => {
          rec.ended = true
        },
        isRecording: () => true,
        recordException: () => {},
      }
      return span
    }
    const tracer: Tracer = {
      startSpan: (name: string, options?: SpanOptions) => makeSpan(name, options?.attributes as Record<string, unknown>),
      startActiveSpan: (() => {
        throw new Error('unused')
      }) as Tracer['startActiveSpan'],
    }
    expect(trace.setGlobalTracerProvider({ getTracer: () => tracer })).toBe(true)
    const disposeContext = registerTestContextManager()
    try {
      const db = makeRouter()
      await db.ready()
      await db.query('SELECT 1') // no parent span: no span
      expect(spans).toHaveLength(0)
      const parent = makeSpan('GET /x')
      await context.with(trace.setSpan(context.active(), parent), async () => {
        await db.query('SELECT 1')
        await db.query("INSERT INTO items (v) VALUES ('span')")
      })
      expect(spans.slice(1)).toEqual([
        { name: 'db select', ended: true, attributes: expect.objectContaining({ 'db.system': 'postgresql', 'ri.db.role': 'replica', 'db.operation.name': 'select' }) },
        { name: 'db insert', ended: true, attributes: expect.objectContaining({ 'db.system': 'postgresql', 'ri.db.role': 'primary', 'db.operation.name': 'insert' }) },
      ])
    } finally {
      trace.disable()
      disposeContext()
    }
  })

  it('excludes a replica whose lag exceeds maxLagMs and brings it back when it catches up', async () => {
    const events = createEvents()
    const db = makeRouter({ maxLagMs: 300, events })
    await db.ready()
    const lags: number[] = []
    events.on('db.replica.lag', (e) => lags.push(e.lagMs))
    const states: string[] = []
    events.on('db.replica.state', (e) => states.push(`${e.healthy}:${e.reason}`))
    const replicaAdmin = new pg.Client({ connectionString: cluster.replicas[0]!.url })
    await replicaAdmin.connect()
    let writing = true
    const writer = (async () => {
      while (writing) {
        await db.primary.query('INSERT INTO ticks DEFAULT VALUES')
        await sleep(20)
      }
    })()
    try {
      await replicaAdmin.query('SELECT pg_wal_replay_pause()')
      await vi.waitFor(() => expect(db.status().replicas[0]).toMatchObject({ healthy: false, reason: 'lagging' }), { timeout: 5_000, interval: 50 })
      const seen = record(db)
      await db.query('SELECT 1')
      // The background writer's explicit primary inserts are recorded too: look at the routed read.
      expect(seen.filter((e) => e.reason !== 'explicit')).toMatchObject([{ role: 'primary', reason: 'no-replica' }])
      expect(db.readiness().status).toBe('warn')
      await replicaAdmin.query('SELECT pg_wal_replay_resume()')
      writing = false
      await writer
      await vi.waitFor(() => expect(db.status().replicas[0]).toMatchObject({ healthy: true }), { timeout: 10_000, interval: 50 })
      expect(states).toEqual(['false:lagging', 'true:ok'])
      expect(Math.max(...lags)).toBeGreaterThan(300)
    } finally {
      writing = false
      await writer
      await replicaAdmin.query('SELECT pg_wal_replay_resume()').catch(() => {})
      await replicaAdmin.end()
    }
  })

  it('replica stopped: traffic moves to the primary within one health interval with no failed query; restarted: it rejoins', async () => {
    const db = makeRouter()
    await db.ready()
    const seen = record(db)
    const fallbacks: string[] = []
    db.events.on('db.fallback', (e) => fallbacks.push(e.reason))
    let failed = 0
    let running = true
    let total = 0
    const readers = Array.from({ length: 4 }, async () => {
      while (running) {
        try {
          await db.query('SELECT count(*) FROM items')
          total++
        } catch {
          failed++
        }
        await sleep(2)
      }
    })
    try {
      await sleep(100)
      expect(seen.some((e) => e.role === 'replica')).toBe(true)
      await cluster.replicas[0]!.stop()
      // within one interval (plus the probe timeout) the replica is out of the rotation
      await vi.waitFor(() => expect(db.status().replicas[0]!.healthy).toBe(false), { timeout: INTERVAL_MS + 500 + 200, interval: 10 })
      const mark = seen.length
      await sleep(200)
      expect(seen.slice(mark).every((e) => e.role === 'primary')).toBe(true)
      expect(db.readiness().status).toBe('warn')

      await cluster.replicas[0]!.restart()
      await vi.waitFor(() => expect(db.status().replicas[0]!.healthy).toBe(true), { timeout: 10_000, interval: 50 })
      const back = seen.length
      await sleep(200)
      expect(seen.slice(back).some((e) => e.role === 'replica' && e.ok)).toBe(true)
      expect(db.readiness().status).toBe('pass')
    } finally {
      running = false
      await Promise.all(readers)
    }
    expect(failed).toBe(0)
    expect(total).toBeGreaterThan(50)
    expect(fallbacks).toContain('no-replica')
  }, 40_000)
})
