import http from 'node:http'
import { leaveMidBody } from '@ri/testing'
import { afterEach, describe, expect, it } from 'vitest'
import type { NodeRoute } from '@ri/core/node'
import { createHealth, type Health } from './health.js'
import type { ShutdownOptions } from './options.js'
import { get, sleep, startServer } from './test-helpers.js'
import { startLoad } from './test-load.js'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

const workRoute: NodeRoute = {
  method: 'GET',
  path: '/work',
  handler: async (req, _res, ctx) => {
    const ms = Number(new URL(req.url!, 'http://x').searchParams.get('ms') ?? 0)
    await sleep(ms)
    await ctx.send(200, 'done', { 'content-type': 'text/plain' })
  },
}

async function setup(shutdown: ShutdownOptions, routes: NodeRoute[] = [workRoute]) {
  const exits: number[] = []
  const health: Health = createHealth({ shutdown: { signals: [], exit: (code) => exits.push(code), ...shutdown } })
  const srv = await startServer(health, routes)
  cleanup.push(() => health.close(), () => srv.close())
  return { health, srv, exits }
}

describe('graceful shutdown (in process)', () => {
  it('counts in-flight responses without a listener per response: completed, aborted, and ones whose prototype is swapped later (Express), whose prototype emit still runs', async () => {
    const health = createHealth({ shutdown: { signals: [], exit: () => {} } })
    cleanup.push(() => health.close())
    const appResponse = Object.create(http.ServerResponse.prototype) as http.ServerResponse
    const protoCloses: string[] = []
    appResponse.emit = function (this: http.ServerResponse, event: string | symbol, ...args: unknown[]) {
      if (event === 'close') protoCloses.push(String(this.req.url))
      return http.ServerResponse.prototype.emit.call(this, event, ...args)
    } as http.ServerResponse['emit']
    const added: number[] = []
    const during: number[] = []
    const heard: string[] = []
    const server = http.createServer((req, res) => {
      if (req.url === '/swapped') Object.setPrototypeOf(res, appResponse)
      added.push(res.listenerCount('close') + res.listenerCount('finish'))
      during.push(health.inFlight)
      res.on('finish', (...args: unknown[]) => void heard.push(`finish:${req.url}:${args.length}`))
      if (req.url === '/abort') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('partial') // never ended: the client goes away
        return
      }
      res.end('ok')
    })
    const detach = health.attach(server)
    server.listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
    cleanup.push(() => new Promise((r) => server.close(r)), detach)
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    expect((await get(`${url}/ok`)).body).toBe('ok')
    expect((await get(`${url}/swapped`)).body).toBe('ok')
    await leaveMidBody(`${url}/abort`)
    for (let i = 0; i < 100 && health.inFlight !== 0; i++) await sleep(10)
    expect(health.inFlight).toBe(0)
    expect(during).toEqual([1, 1, 1])
    expect(added).toEqual([1, 1, 1]) // node's own 'finish' listener, nothing of health's
    expect(protoCloses).toEqual(['/swapped'])
    expect(heard).toEqual(['finish:/ok:0', 'finish:/swapped:0'])
  })

  it('two health instances attached to one server both count every response (their emits chain)', async () => {
    const a = createHealth({ shutdown: { signals: [], exit: () => {} } })
    const b = createHealth({ shutdown: { signals: [], exit: () => {} } })
    cleanup.push(() => a.close(), () => b.close())
    const seen: Array<[number, number]> = []
    const server = http.createServer((_req, res) => {
      seen.push([a.inFlight, b.inFlight])
      res.end('ok')
    })
    cleanup.push(a.attach(server), b.attach(server))
    server.listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
    cleanup.push(() => new Promise((r) => server.close(r)))
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    for (let i = 0; i < 3; i++) expect((await get(`${url}/`)).body).toBe('ok')
    for (let i = 0; i < 100 && a.inFlight + b.inFlight !== 0; i++) await sleep(10)
    expect(seen).toEqual([[1, 1], [1, 1], [1, 1]])
    expect([a.inFlight, b.inFlight]).toEqual([0, 0])
  })

  it('drains under constant keep-alive and new-connection load with zero failed requests', async () => {
    const { health, srv, exits } = await setup({ drainDelayMs: 500, timeoutMs: 5_000 })
    const order: string[] = []
    health.onShutdown('redis', async () => {
      await sleep(10)
      order.push('redis')
    })
    health.onShutdown('pg', () => void order.push('pg'))
    const load = startLoad(srv.url, { keepAlive: 6, fresh: 3, workMs: 40 })
    cleanup.push(() => load.stop())
    await sleep(400)
    // A slow request that is still running when the server stops accepting.
    const slow = get(`${srv.url}/work?ms=600`)
    await sleep(20)
    const started = performance.now()
    const statesSeen: string[] = []
    health.events.on('health.state', (e) => statesSeen.push(e.state))
    const result = await health.shutdown('test')
    const took = performance.now() - started
    await load.done
    const slowRes = await slow

    expect(load.stats.errors).toEqual([])
    expect(load.stats.failed).toBe(0)
    expect(load.stats.ok).toBeGreaterThan(20)
    expect(load.stats.outOfRotationAt! - started).toBeLessThan(500) // the LB saw 503 during the drain delay
    expect(slowRes.status).toBe(200)
    expect(slowRes.body).toBe('done')
    expect(slowRes.headers.connection).toBe('close')
    expect(result).toMatchObject({ code: 0, timedOut: false, reason: 'test' })
    expect(result.hooks.map((h) => [h.name, h.outcome])).toEqual([
      ['pg', 'ok'],
      ['redis', 'ok'],
    ])
    expect(order).toEqual(['pg', 'redis'])
    expect(exits).toEqual([0])
    expect(statesSeen).toEqual(['draining', 'stopped'])
    expect(took).toBeGreaterThanOrEqual(550) // waited for the slow request
    expect(took).toBeLessThan(5_000)
    expect(srv.server.listening).toBe(false)
    expect(health.inFlight).toBe(0)
  })

  it('keeps liveness 200 and sends Connection: close on kept-alive sockets while draining', async () => {
    const { health, srv } = await setup({ drainDelayMs: 1_000 })
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    cleanup.push(() => agent.destroy())
    const before = await get(`${srv.url}/work?ms=0`, { agent })
    expect(before.headers.connection).toBe('keep-alive')
    const done = health.shutdown('test')
    const live = await get(`${srv.url}/health`, { agent })
    expect(live.status).toBe(200)
    expect(live.headers.connection).toBe('close')
    const ready = await get(`${srv.url}/health/ready`)
    expect(ready.status).toBe(503)
    expect(ready.json()).toEqual({ status: 'fail', output: 'shutting down' })
    // New connections are still accepted during the drain delay.
    expect((await get(`${srv.url}/work?ms=0`)).status).toBe(200)
    expect((await done).code).toBe(0)
  })

  it('runs hooks once when the signal arrives twice', async () => {
    const exits: number[] = []
    let runs = 0
    const health = createHealth({ shutdown: { signals: ['SIGUSR2'], exit: (code) => exits.push(code) } })
    cleanup.push(() => health.close())
    health.onShutdown('once', () => void runs++)
    process.emit('SIGUSR2', 'SIGUSR2')
    process.emit('SIGUSR2', 'SIGUSR2')
    const result = await health.shutdown('again')
    process.emit('SIGUSR2', 'SIGUSR2')
    await sleep(20)
    expect(runs).toBe(1)
    expect(exits).toEqual([0])
    expect(result.reason).toBe('SIGUSR2')
    // Handlers are removed once the shutdown is over.
    expect(process.listenerCount('SIGUSR2')).toBe(0)
  })

  it('a hanging cleanup hook does not block exit past its timeout', async () => {
    const { health, exits } = await setup({ hookTimeoutMs: 5_000 })
    const ran: string[] = []
    let aborted = false
    health.onShutdown('last', () => void ran.push('last'))
    health.onShutdown('hangs', (signal) => {
      signal.addEventListener('abort', () => (aborted = true))
      return new Promise(() => {})
    }, { timeoutMs: 150 })
    health.onShutdown('throws', () => {
      throw new Error('boom')
    })
    const started = performance.now()
    const result = await health.shutdown()
    const took = performance.now() - started
    expect(took).toBeGreaterThanOrEqual(140)
    expect(took).toBeLessThan(3_000)
    expect(result.hooks.map((h) => [h.name, h.outcome])).toEqual([
      ['throws', 'error'],
      ['hangs', 'timeout'],
      ['last', 'ok'],
    ])
    expect(aborted).toBe(true)
    expect(ran).toEqual(['last'])
    expect(result.code).toBe(1)
    expect(exits).toEqual([1])
  })

  it('exits 1 and destroys connections when in-flight requests outlast timeoutMs', async () => {
    const hang: NodeRoute = { method: 'GET', path: '/hang', handler: () => new Promise(() => {}) }
    const { health, srv, exits } = await setup({ timeoutMs: 200 }, [hang])
    const pending = get(`${srv.url}/hang`).catch((e: Error) => e)
    await sleep(50)
    expect(health.inFlight).toBe(1)
    const started = performance.now()
    const result = await health.shutdown()
    expect(performance.now() - started).toBeLessThan(1_500)
    expect(result).toMatchObject({ code: 1, timedOut: true })
    expect(exits).toEqual([1])
    expect(await pending).toBeInstanceOf(Error)
  })

  it('sends Connection: close through the feature when the server is not attached', async () => {
    const health = createHealth({ shutdown: { signals: [], exit: false, drainDelayMs: 1_000 } })
    const srv = await startServer(health, [workRoute], false)
    cleanup.push(() => health.close(), () => srv.close())
    const agent = new http.Agent({ keepAlive: true })
    cleanup.push(() => agent.destroy())
    void health.shutdown()
    const res = await get(`${srv.url}/work?ms=0`, { agent })
    expect(res.status).toBe(200)
    expect(res.headers.connection).toBe('close')
  })
})
