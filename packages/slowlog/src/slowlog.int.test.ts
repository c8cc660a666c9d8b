import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { context as otelContext } from '@opentelemetry/api'
import { createEvents, createPipeline, type Feature, type Logger, RiConfigError } from '@ri/core'
import { createNodeHandler, type NodeRoute } from '@ri/core/node'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSlowLog, redactQuery, setSlowThreshold, type SlowLogLine } from './index.js'
import { contextWithSpan, registerTestContextManager } from '@ri/testing'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/**
 * The server logs on its response's 'finish', which can run just after the client (in this
 * same process) has read the response: give it a moment before asserting.
 */
const settle = () => sleep(40)
const routes: NodeRoute[] = [
  { method: 'GET', path: '/fast', handler: (_q, _s, ctx) => ctx.json(200, { ok: true }) },
  { method: 'GET', path: '/slow', handler: async (_q, _s, ctx) => (await sleep(60), ctx.json(200, {})) },
  { method: 'POST', path: '/slow', handler: async (_q, _s, ctx) => (await sleep(60), ctx.json(200, {})) },
  { method: 'GET', path: '/reports/:id', handler: async (_q, _s, ctx) => (await sleep(60), ctx.json(200, {})) },
  { method: 'GET', path: '/fail', handler: (_q, _s, ctx) => ctx.json(500, { error: 'x' }) },
  {
    method: 'GET',
    path: '/marked',
    handler: async (_q, _s, ctx) => {
      const end = ctx.exchange.timings.start('db')
      await sleep(5)
      end()
      ctx.exchange.timings.add('cache', 0.25, 'miss')
      await ctx.json(200, {})
    },
  },
  {
    method: 'GET',
    path: '/override',
    handler: async (_q, _s, ctx) => {
      setSlowThreshold(ctx.exchange, 1)
      await sleep(5)
      await ctx.json(200, {})
    },
  },
]

async function startServer(features: Feature[], wrap?: (h: http.RequestListener) => http.RequestListener) {
  const handler = createNodeHandler(createPipeline(features), routes)
  const server = http.createServer(wrap ? wrap(handler) : handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    close: () => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())),
  }
}

/** A pino logger writing through its asynchronous destination into a temp file. */
async function fileLogger() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ri-slowlog-'))
  const file = path.join(dir, 'log.ndjson')
  const dest = pino.destination({ dest: file, sync: false })
  await new Promise((r) => dest.once('ready', r))
  const logger = pino({ level: 'trace' }, dest)
  return {
    logger: logger as unknown as Logger,
    read: async () => {
      await new Promise<void>((r) => dest.flush(() => r()))
      return fs.readFileSync(file, 'utf8')
    },
    lines: async (): Promise<(SlowLogLine & { msg: string; level: number })[]> => {
      await new Promise<void>((r) => dest.flush(() => r()))
      return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    },
    cleanup: () => {
      dest.end()
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A non-pino logger (the ri Logger shape) that keeps every call. */
function captureLogger() {
  const out: unknown[][] = []
  const rec = (...args: unknown[]) => void out.push(args)
  const logger: Logger = { trace: rec, debug: rec, info: rec, warn: rec, error: rec, fatal: rec, child: () => logger }
  return { logger, out }
}

describe('slow-request logging over a real server', () => {
  it('logs a slow route once with the threshold that fired; fast routes and disabled routes not at all', async () => {
    const log = await fileLogger()
    const slowlog = createSlowLog({ logger: log.logger, thresholdMs: 30, routes: { '/reports/:id': '1s', 'POST /slow': false } })
    const server = await startServer([slowlog.feature()])
    try {
      await fetch(`${server.url}/fast`).then((r) => r.text())
      await fetch(`${server.url}/slow`).then((r) => r.text())
      await fetch(`${server.url}/slow`, { method: 'POST' }).then((r) => r.text())
      await fetch(`${server.url}/reports/42`).then((r) => r.text())
      await settle()
      const lines = await log.lines()
      expect(lines).toHaveLength(1)
      const line = lines[0]!
      expect(line).toMatchObject({ msg: 'slow request', reason: 'slow', method: 'GET', route: '/slow', path: '/slow', status: 200, thresholdMs: 30, aborted: false })
      expect(line.level).toBe(40)
      expect(line.durationMs).toBeGreaterThanOrEqual(55)
      expect(line.requestId).toMatch(/\S+/)
      expect(line.headers).toBeUndefined()
      expect(slowlog.thresholdFor('/reports/:id', 'GET')).toBe(1000)
      expect(slowlog.thresholdFor('/slow', 'POST')).toBe(Number.POSITIVE_INFINITY)
      expect(slowlog.thresholdFor('/slow', 'GET')).toBe(30)
    } finally {
      await server.close()
      log.cleanup()
    }
  })

  it('durations have sub-millisecond precision; phase timings are logged', async () => {
    const log = await fileLogger()
    const slowlog = createSlowLog({ logger: log.logger, thresholdMs: 1 })
    const server = await startServer([slowlog.feature()])
    try {
      for (let i = 0; i < 5; i++) await fetch(`${server.url}/marked`).then((r) => r.text())
      await settle()
      const lines = await log.lines()
      expect(lines).toHaveLength(5)
      expect(lines.some((l) => !Number.isInteger(l.durationMs))).toBe(true)
      for (const l of lines) {
        expect(l.timings.db).toBeGreaterThanOrEqual(4)
        expect(l.timings.cache).toBe(0.25)
      }
    } finally {
      await server.close()
      log.cleanup()
    }
  })

  it('always logs 5xx, however fast, unless errors is off', async () => {
    const on = captureLogger()
    const off = captureLogger()
    const a = createSlowLog({ logger: on.logger, thresholdMs: 10_000 })
    const b = createSlowLog({ logger: off.logger, thresholdMs: 10_000, errors: false })
    const server = await startServer([a.feature(), b.feature()])
    try {
      await fetch(`${server.url}/fail`).then((r) => r.text())
      await fetch(`${server.url}/fast`).then((r) => r.text())
      await settle()
      expect(on.out).toHaveLength(1)
      expect(on.out[0]![0]).toMatchObject({ reason: 'error', status: 500, route: '/fail', thresholdMs: 10_000 })
      expect(on.out[0]![1]).toBe('request failed')
      expect(off.out).toHaveLength(0)
    } finally {
      await server.close()
    }
  })

  it('samples fast requests at sampleRate', async () => {
    const all = captureLogger()
    const none = captureLogger()
    const server = await startServer([
      createSlowLog({ logger: all.logger, thresholdMs: 10_000, sampleRate: 1 }).feature(),
      createSlowLog({ logger: none.logger, thresholdMs: 10_000, sampleRate: 0 }).feature(),
    ])
    try {
      for (let i = 0; i < 3; i++) await fetch(`${server.url}/fast`).then((r) => r.text())
      await settle()
      expect(all.out).toHaveLength(3)
      expect(all.out[0]![0]).toMatchObject({ reason: 'sampled', thresholdMs: undefined })
      expect(none.out).toHaveLength(0)
    } finally {
      await server.close()
    }
  })

  it('a per-request override (setSlowThreshold) wins', async () => {
    const cap = captureLogger()
    const server = await startServer([createSlowLog({ logger: cap.logger, thresholdMs: 10_000 }).feature()])
    try {
      await fetch(`${server.url}/override`).then((r) => r.text())
      await settle()
      expect(cap.out).toHaveLength(1)
      expect(cap.out[0]![0]).toMatchObject({ reason: 'slow', thresholdMs: 1, route: '/override' })
    } finally {
      await server.close()
    }
  })

  it('flags requests the client aborted', async () => {
    const cap = captureLogger()
    const server = await startServer([createSlowLog({ logger: cap.logger, thresholdMs: 10 }).feature()])
    try {
      const controller = new AbortController()
      const pending = fetch(`${server.url}/slow`, { signal: controller.signal }).catch(() => undefined)
      await sleep(25)
      controller.abort()
      await pending
      for (let i = 0; i < 50 && cap.out.length === 0; i++) await sleep(10)
      expect(cap.out).toHaveLength(1)
      expect(cap.out[0]![0]).toMatchObject({ reason: 'slow', aborted: true, route: '/slow' })
    } finally {
      await server.close()
    }
  })

  it('publishes slowlog.slow for @ri/metrics', async () => {
    const events = createEvents()
    const seen: unknown[] = []
    events.on('slowlog.slow', (e) => seen.push(e))
    const slowlog = createSlowLog({ logger: captureLogger().logger, thresholdMs: 30, events })
    expect(slowlog.events).toBe(events)
    const server = await startServer([slowlog.feature()])
    try {
      await fetch(`${server.url}/slow`).then((r) => r.text())
      await fetch(`${server.url}/fast`).then((r) => r.text())
      await settle()
      expect(seen).toHaveLength(1)
      expect(seen[0]).toMatchObject({ method: 'GET', route: '/slow' })
    } finally {
      await server.close()
    }
  })
})

describe('secrets never reach the log', () => {
  const secrets = {
    authorization: 'Bearer AUTH-SECRET-1111',
    cookie: 'sid=COOKIE-SECRET-2222; theme=dark',
    'x-api-key': 'APIKEY-SECRET-3333',
    'proxy-authorization': 'Basic PROXY-SECRET-4444',
    'x-session': 'SESSION-SECRET-5555',
  }
  const query = '?token=QUERY-SECRET-6666&QUERYKEY-SECRET-7777&page=2'
  const planted = ['AUTH-SECRET-1111', 'COOKIE-SECRET-2222', 'APIKEY-SECRET-3333', 'PROXY-SECRET-4444', 'SESSION-SECRET-5555', 'QUERY-SECRET-6666', 'QUERYKEY-SECRET-7777']

  const hit = async (url: string) => {
    for (const p of ['/slow', '/fail', '/fast']) await fetch(`${url}${p}${query}`, { headers: secrets }).then((r) => r.text())
  }

  it('with a pino logger (async destination, pino redact), headers on', async () => {
    const log = await fileLogger()
    const slowlog = createSlowLog({ logger: log.logger, thresholdMs: 30, sampleRate: 1, headers: true, redact: ['headers["x-session"]', 'path'] })
    const server = await startServer([slowlog.feature()])
    try {
      await hit(server.url)
      await settle()
      const text = await log.read()
      expect(text.split('\n').filter(Boolean)).toHaveLength(3)
      for (const s of planted) expect(text).not.toContain(s)
      const first = JSON.parse(text.split('\n')[0]!)
      expect(first.headers.authorization).toBe('[Redacted]')
      expect(first.headers.cookie).toBe('[Redacted]')
      expect(first.headers['x-session']).toBe('[Redacted]')
      // a user-configured pino path
      expect(first.path).toBe('[Redacted]')
    } finally {
      await server.close()
      log.cleanup()
    }
  })

  it('with the default query handling and a non-pino logger', async () => {
    const cap = captureLogger()
    const slowlog = createSlowLog({ logger: cap.logger, thresholdMs: 30, sampleRate: 1, headers: true, redact: ['headers.x-session'] })
    const server = await startServer([slowlog.feature()])
    try {
      await hit(server.url)
      await settle()
      const text = JSON.stringify(cap.out)
      expect(cap.out).toHaveLength(3)
      for (const s of planted) expect(text).not.toContain(s)
      expect((cap.out[0]![0] as SlowLogLine).path).toBe('/slow?token=[Redacted]&[Redacted]&page=[Redacted]')
      expect((cap.out[0]![0] as SlowLogLine).headers!['user-agent']).toBeDefined()
    } finally {
      await server.close()
    }
  })

  it('headers are off by default', async () => {
    const cap = captureLogger()
    const server = await startServer([createSlowLog({ logger: cap.logger, thresholdMs: 30 }).feature()])
    try {
      await fetch(`${server.url}/slow`, { headers: { 'user-agent': 'UA-MARK' } }).then((r) => r.text())
      await settle()
      expect(cap.out).toHaveLength(1)
      expect(JSON.stringify(cap.out)).not.toContain('UA-MARK')
    } finally {
      await server.close()
    }
  })

  it('redactQuery keeps names, drops values', () => {
    expect(redactQuery('a=1&b=&c&&d=x=y')).toBe('a=[Redacted]&b=[Redacted]&[Redacted]&d=[Redacted]')
  })
})

describe('tracing and Server-Timing', () => {
  let restore: () => void
  beforeAll(() => {
    restore = registerTestContextManager()
  })
  afterAll(() => restore())

  it('adds trace_id and span_id when a span is active', async () => {
    const cap = captureLogger()
    const traceId = '0af7651916cd43dd8448eb211c80319c'
    const spanId = 'b7ad6b7169203331'
    const server = await startServer([createSlowLog({ logger: cap.logger, thresholdMs: 30 }).feature()], (h) => (req, res) =>
      req.headers['x-traced'] ? otelContext.with(contextWithSpan(traceId, spanId), () => h(req, res)) : h(req, res),
    )
    try {
      await fetch(`${server.url}/slow`, { headers: { 'x-traced': '1' } }).then((r) => r.text())
      await fetch(`${server.url}/slow`).then((r) => r.text())
      await settle()
      expect(cap.out[0]![0]).toMatchObject({ trace_id: traceId, span_id: spanId })
      expect(cap.out[1]![0]).not.toHaveProperty('trace_id')
    } finally {
      await server.close()
    }
  })

  it('Server-Timing is off by default and on for a predicate', async () => {
    const plain = await startServer([createSlowLog({ logger: captureLogger().logger }).feature()])
    const gated = await startServer([
      createSlowLog({ logger: captureLogger().logger, serverTiming: (ex) => ex.header('x-internal') === '1' }).feature(),
    ])
    try {
      expect((await fetch(`${plain.url}/marked`, { headers: { 'x-internal': '1' } })).headers.get('server-timing')).toBeNull()
      expect((await fetch(`${gated.url}/marked`)).headers.get('server-timing')).toBeNull()
      const header = (await fetch(`${gated.url}/marked`, { headers: { 'x-internal': '1' } })).headers.get('server-timing')
      expect(header).toMatch(/^db;dur=[\d.]+, cache;dur=0\.25;desc="miss", total;dur=[\d.]+$/)
    } finally {
      await plain.close()
      await gated.close()
    }
  })
})

describe('options', () => {
  it('names every invalid option at once', () => {
    let error: unknown
    try {
      createSlowLog({ thresholdMs: 'soon', sampleRate: 2, query: 'hide', routes: { 'users/:id': 100, '/x': 'never' }, treshold: 1 } as never)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(RiConfigError)
    const names = (error as RiConfigError).problems.map((p) => p.option)
    expect(names).toEqual(
      expect.arrayContaining([
        'createSlowLog.thresholdMs',
        'createSlowLog.sampleRate',
        'createSlowLog.query',
        'createSlowLog.routes["users/:id"]',
        'createSlowLog.routes["/x"]',
        'createSlowLog.treshold',
      ]),
    )
  })

  it('rejects redact paths pino cannot compile', () => {
    expect(() => createSlowLog({ logger: pino({ enabled: false }) as unknown as Logger, redact: ['a[b'] })).toThrow(/createSlowLog.redact/)
  })
})
