// @ri/health vs @nestjs/terminus: readiness probes under a ~1,000 probes/s flood against a real
// Redis. Measures probe latency (p50/p99) and Redis PINGs per probe, counted by Redis itself
// (INFO commandstats), so a cached check shows up as ~0 dependency calls per probe.
import 'reflect-metadata'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Controller, Get, Inject, Module } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { HealthCheckService, HealthIndicatorService, TerminusModule } from '@nestjs/terminus'
import { createPipeline } from '@ri/core'
import { createNodeHandler } from '@ri/core/node'
import { createHealth, redisCheck } from '@ri/health'
import { startRedis } from '@ri/testing'
import { Redis } from 'ioredis'
import type { BenchComparison, BenchContext, BenchFile, BenchSubject } from './types.js'

const RATE = 1_000 // probes per second
const TICK_MS = 10
const CACHE_MS = 1_000

interface Target {
  readonly name: string
  readonly url: string
  close(): Promise<void>
}

async function pingCalls(admin: Redis): Promise<number> {
  const m = /cmdstat_ping:calls=(\d+)/.exec(await admin.info('commandstats'))
  return m ? Number(m[1]) : 0
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)))
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
}

async function riTarget(redis: Redis, cacheMs: number, name: string): Promise<Target> {
  const health = createHealth({ cacheMs, shutdown: false, checks: [redisCheck(redis)] })
  const server = http.createServer(createNodeHandler(createPipeline([health.feature()]), []))
  const url = `${await listen(server)}/health/ready`
  return {
    name,
    url,
    async close() {
      health.close()
      await closeServer(server)
    },
  }
}

async function baselineTarget(): Promise<Target> {
  const body = '{"status":"pass"}'
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/health+json', 'content-length': body.length })
    res.end(body)
  })
  const url = `${await listen(server)}/health/ready`
  return { name: 'node:http static 200 (no check, no framework)', url, close: () => closeServer(server) }
}

async function terminusTarget(redis: Redis): Promise<Target> {
  // Decorators applied by hand: tsx/esbuild does not emit decorator metadata, and explicit
  // @Inject tokens make the DI independent of it.
  class ReadyController {
    constructor(
      private readonly health: HealthCheckService,
      private readonly indicators: HealthIndicatorService,
    ) {}
    ready() {
      return this.health.check([
        async () => {
          const session = this.indicators.check('redis')
          try {
            await redis.ping()
            return session.up()
          } catch (error) {
            return session.down({ message: (error as Error).message })
          }
        },
      ])
    }
  }
  Inject(HealthCheckService)(ReadyController, undefined as never, 0)
  Inject(HealthIndicatorService)(ReadyController, undefined as never, 1)
  const descriptor = Object.getOwnPropertyDescriptor(ReadyController.prototype, 'ready')!
  Get('ready')(ReadyController.prototype, 'ready', descriptor)
  Controller('health')(ReadyController)
  class AppModule {}
  Module({ imports: [TerminusModule.forRoot({ logger: false })], controllers: [ReadyController] })(AppModule)
  const app = await NestFactory.create(AppModule, { logger: false })
  await app.listen(0, '127.0.0.1')
  const server = app.getHttpServer() as http.Server
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health/ready`
  return {
    name: '@nestjs/terminus 11 (express)',
    url,
    async close() {
      await app.close()
    },
  }
}

interface FloodResult {
  readonly probes: number
  readonly ok: number
  readonly failed: number
  readonly latencies: Float64Array
  readonly seconds: number
}

/** Paced open-loop flood: RATE probes/s in ticks of TICK_MS, each request timed on its own. */
async function flood(url: string, seconds: number): Promise<FloodResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
  const perTick = Math.round((RATE * TICK_MS) / 1_000)
  const total = Math.round(RATE * seconds)
  const latencies = new Float64Array(total)
  let sent = 0
  let done = 0
  let ok = 0
  let failed = 0
  const started = performance.now()
  await new Promise<void>((resolve) => {
    const one = () => {
      const i = sent++
      const t0 = performance.now()
      const req = http.get(url, { agent }, (res) => {
        res.resume()
        res.on('end', () => {
          latencies[i] = performance.now() - t0
          if (res.statusCode === 200) ok++
          else failed++
          if (++done === total) resolve()
        })
      })
      req.on('error', () => {
        latencies[i] = performance.now() - t0
        failed++
        if (++done === total) resolve()
      })
    }
    const tick = (n: number) => {
      for (let k = 0; k < perTick && sent < total; k++) one()
      if (sent < total) {
        const next = started + (n + 1) * TICK_MS
        setTimeout(() => tick(n + 1), Math.max(0, next - performance.now()))
      }
    }
    tick(0)
  })
  const elapsed = (performance.now() - started) / 1_000
  agent.destroy()
  return { probes: total, ok, failed, latencies, seconds: elapsed }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  return Math.round(sorted[Math.max(0, i)]! * 1000) / 1000
}

interface Samples {
  readonly target: Target
  probes: number
  failed: number
  seconds: number
  pings: number
  latencies: number[]
  roundP99: number[]
}

/**
 * Subjects are measured in interleaved rounds (A B C D, A B C D ...) so a burst of noise from
 * other processes on the machine is spread over every subject instead of hitting one.
 */
async function measureAll(ctx: BenchContext, targets: Target[], admin: Redis, rounds: number, secondsPerRound: number): Promise<BenchSubject[]> {
  const samples: Samples[] = targets.map((target) => ({ target, probes: 0, failed: 0, seconds: 0, pings: 0, latencies: [], roundP99: [] }))
  // Warm up (JIT, connections, first check) outside the measurement.
  for (const s of samples) await flood(s.target.url, ctx.quick ? 0.5 : 1)
  for (let round = 0; round < rounds; round++) {
    for (const s of samples) {
      const before = await pingCalls(admin)
      const r = await flood(s.target.url, secondsPerRound)
      s.pings += (await pingCalls(admin)) - before
      s.probes += r.probes
      s.failed += r.failed
      s.seconds += r.seconds
      for (const l of r.latencies) s.latencies.push(l)
      s.roundP99.push(percentile(r.latencies.slice().sort(), 99))
    }
    ctx.progress(`health: round ${round + 1}/${rounds} done`)
  }
  return samples.map((s) => {
    const sorted = Float64Array.from(s.latencies).sort()
    const medianRoundP99 = s.roundP99.slice().sort((a, b) => a - b)[Math.floor(s.roundP99.length / 2)]!
    const subject: BenchSubject = {
      name: s.target.name,
      opsPerSec: Math.round(s.probes / s.seconds),
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      extra: {
        probes: s.probes,
        non200: s.failed,
        redisPings: s.pings,
        pingsPerProbe: Math.round((s.pings / s.probes) * 10_000) / 10_000,
        medianRoundP99Ms: medianRoundP99,
        seconds: Math.round(s.seconds * 100) / 100,
      },
    }
    ctx.progress(`health: ${subject.name}: p50 ${subject.p50Ms} ms, p99 ${subject.p99Ms} ms (median round p99 ${medianRoundP99}), ${s.pings} PINGs for ${s.probes} probes`)
    return subject
  })
}

const bench: BenchFile = async (ctx) => {
  const rounds = ctx.quick ? 2 : 5
  const secondsPerRound = ctx.quick ? 1 : 2
  const server = await startRedis()
  const redis = new Redis(server.url, { maxRetriesPerRequest: 1 })
  const admin = new Redis(server.url, { maxRetriesPerRequest: 1 })
  const targets: Target[] = []
  let subjects: BenchSubject[]
  try {
    targets.push(await riTarget(redis, CACHE_MS, `@ri/health (cacheMs ${CACHE_MS})`))
    targets.push(await riTarget(redis, 0, '@ri/health (cacheMs 0: single-flight only)'))
    targets.push(await terminusTarget(redis))
    targets.push(await baselineTarget())
    subjects = await measureAll(ctx, targets, admin, rounds, secondsPerRound)
  } finally {
    for (const t of targets) await t.close()
    redis.disconnect()
    admin.disconnect()
    await server.stop()
  }
  const ri = subjects[0]!
  const allowed = Math.ceil(Number(ri.extra!.seconds) / (CACHE_MS / 1_000)) + 2 * rounds
  const comparison: BenchComparison = {
    id: 'health.probe-flood',
    title: `Readiness probe flood (~${RATE}/s, ${rounds} × ${secondsPerRound} s per subject) with a Redis check`,
    baseline: subjects[2]!.name,
    subjects,
    target: {
      text: `zero dependency calls beyond the refresh rate: at most ${allowed} PINGs (1 per ${CACHE_MS} ms, +2 per round) for ${ri.extra!.probes} probes`,
      met: Number(ri.extra!.redisPings) <= allowed && Number(ri.extra!.non200) === 0,
    },
    notes:
      'Open-loop paced client in the same process (keep-alive, up to 64 sockets); subjects interleaved per round. ' +
      'PINGs are counted by Redis (INFO commandstats). @nestjs/terminus runs every indicator on every probe, so it sends one PING per probe. ' +
      'p99 on a shared 2-core machine is noisy: compare within one run only.',
  }
  return [comparison]
}

export default bench
