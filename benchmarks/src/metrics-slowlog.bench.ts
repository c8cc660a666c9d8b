/**
 * Per-request overhead of @ri/metrics + @ri/slowlog on a node:http server, against the same
 * handler bare and against express + express-prom-bundle + pino-http, all measured with
 * autocannon in one run. Each server runs in its own child process (this file, forked with
 * `--ri-bench-serve <subject>`) so the load generator never shares an event loop with it.
 * Every pino writes to /dev/null through an asynchronous destination.
 */
import { type ChildProcess, fork } from 'node:child_process'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { median, pairedRatio, pairedRatioInterval, percentRange } from './http.js'
import { metricsAndSlowlog } from './servers/core.js'
import type { BenchComparison, BenchContext, BenchFile, BenchSubject } from './types.js'

const SUBJECTS = {
  bare: 'bare node:http',
  pipeline: 'ri pipeline, no features (node:http)',
  ri: 'ri metrics + slowlog (node:http)',
  express: 'express (bare)',
  expressAnchors: 'express + express-prom-bundle + pino-http',
} as const
type SubjectKey = keyof typeof SUBJECTS
const SERVE_FLAG = '--ri-bench-serve'
const BODY_HEADERS = { 'content-type': 'application/json; charset=utf-8' }

async function serve(subject: SubjectKey): Promise<http.Server> {
  const { pino } = await import('pino')
  const devNull = () => pino(pino.destination({ dest: '/dev/null', sync: false }))
  if (subject === 'bare') {
    return http.createServer((req, res) => {
      const url = req.url ?? '/'
      if (req.method === 'GET' && url.startsWith('/users/')) {
        res.writeHead(200, BODY_HEADERS)
        res.end(JSON.stringify({ id: url.slice(7) }))
      } else {
        res.writeHead(404)
        res.end()
      }
    })
  }
  if (subject === 'pipeline' || subject === 'ri') {
    const { createPipeline } = await import('@ri/core')
    const { createNodeHandler } = await import('@ri/core/node')
    const features = subject === 'ri' ? await metricsAndSlowlog() : []
    const pipeline = createPipeline(features)
    return http.createServer(
      createNodeHandler(pipeline, [
        {
          method: 'GET',
          path: '/users/:id',
          handler: (_req, res, ctx) => {
            res.writeHead(200, BODY_HEADERS)
            res.end(JSON.stringify({ id: ctx.params.id }))
          },
        },
      ]),
    )
  }
  const express = (await import('express')).default
  const app = express()
  app.disable('x-powered-by')
  app.disable('etag')
  if (subject === 'expressAnchors') {
    const promBundle = (await import('express-prom-bundle')).default
    const { pinoHttp } = await import('pino-http')
    app.use(promBundle({ includeMethod: true, includePath: true, includeStatusCode: true }))
    app.use(pinoHttp({ logger: devNull() }))
  }
  app.get('/users/:id', (req, res) => {
    res.writeHead(200, BODY_HEADERS)
    res.end(JSON.stringify({ id: req.params.id }))
  })
  return http.createServer(app)
}

// Child process: start the server, report its port, live until the parent disconnects.
if (process.argv.includes(SERVE_FLAG)) {
  const subject = process.argv[process.argv.indexOf(SERVE_FLAG) + 1] as SubjectKey
  process.on('disconnect', () => process.exit(0))
  serve(subject).then((server) => {
    server.keepAliveTimeout = 30_000
    server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }))
  })
}

async function startChild(subject: SubjectKey): Promise<{ port: number; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), [SERVE_FLAG, subject], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${subject} server did not start`)), 30_000)
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer)
      resolve(m.port)
    })
    child.once('exit', (code) => reject(new Error(`${subject} server exited with ${code}`)))
  })
  return { port, child }
}

interface Run {
  rps: number
  p50: number
  p99: number
  errors: number
}

async function load(port: number, seconds: number): Promise<Run> {
  const autocannon = (await import('autocannon')).default
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/users/42`,
    connections: 32,
    pipelining: 1,
    duration: seconds,
  })
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }
}

/**
 * CPU per request of the features without sockets: exchange + onRequest + onResponse through the
 * core pipeline, with and without metrics + slowlog. Much less sensitive to a loaded machine
 * than the HTTP figures; reported in the same run.
 */
async function inProcess(quick: boolean): Promise<{ empty: number; features: number }> {
  const { createPipeline } = await import('@ri/core')
  const pipelines = { empty: createPipeline([]), features: createPipeline(await metricsAndSlowlog()) }
  const headers = { host: 'bench', 'user-agent': 'autocannon' }
  const one = (p: (typeof pipelines)['empty']) => {
    const ex = p.exchange({ method: 'GET', path: '/users/42', route: '/users/:id', headers, remoteAddress: '127.0.0.1' })
    p.request(ex)
    p.headers(ex)
    p.finish(ex, { status: 200 })
  }
  const n = quick ? 15_000 : 200_000
  const best = { empty: 0, features: 0 }
  for (let round = 0; round < 5; round++) {
    for (const key of ['empty', 'features'] as const) {
      const p = pipelines[key]
      const t0 = performance.now()
      for (let i = 0; i < n; i++) one(p)
      best[key] = Math.max(best[key], n / ((performance.now() - t0) / 1000))
    }
  }
  return best
}

const bench: BenchFile = async (ctx: BenchContext): Promise<BenchComparison[]> => {
  // Many short interleaved rounds, ratios taken within a round: on a shared machine the load
  // drifts, and neighbouring measurements drift together. The machine's speed swings by a fifth
  // between runs a few seconds apart, so one round's ratio is off by about a tenth either way:
  // 24 one-second rounds (each subject twice per round, see below) put the median's error near
  // 2-3 %, where six three-second rounds left it near 5 % (two runs twenty minutes apart read 8 % and 24 %).
  const seconds = 1
  const rounds = ctx.rounds ?? (ctx.quick ? 2 : 24)
  const keys = Object.keys(SUBJECTS) as SubjectKey[]
  const servers = new Map<SubjectKey, { port: number; child: ChildProcess }>()
  ctx.progress('metrics+slowlog: in-process CPU per request')
  const cpu = await inProcess(ctx.quick)
  const perRequestUs = (1e6 / cpu.features - 1e6 / cpu.empty)
  try {
    for (const key of keys) servers.set(key, await startChild(key))
    // Warm every server up (JIT) before measuring.
    for (const key of keys) await load(servers.get(key)!.port, 1)
    const runs = new Map<SubjectKey, Run[]>(keys.map((k) => [k, []]))
    // Each round runs the subjects in an order and then in the reverse order (A B C D E E D C B A),
    // and a subject's figure for the round is the mean of its two runs: every subject then sits
    // at the same mean position in time, so a machine whose speed drifts during the round (it
    // swings by a fifth within seconds here) shifts all of them alike. The order rotates per round.
    for (let round = 0; round < rounds; round++) {
      const order = keys.map((_, j) => keys[(round + j) % keys.length]!)
      const pass: Partial<Record<SubjectKey, Run>> = {}
      for (const key of [...order, ...[...order].reverse()]) {
        ctx.progress(`metrics+slowlog: ${SUBJECTS[key]} (round ${round + 1}/${rounds})`)
        const r = await load(servers.get(key)!.port, seconds)
        const first = pass[key]
        if (first === undefined) pass[key] = r
        else runs.get(key)!.push({ rps: (first.rps + r.rps) / 2, p50: Math.max(first.p50, r.p50), p99: Math.max(first.p99, r.p99), errors: first.errors + r.errors })
      }
    }
    const summary = (key: SubjectKey): BenchSubject => {
      const r = runs.get(key)!
      return {
        name: SUBJECTS[key],
        opsPerSec: Math.round(median(r.map((x) => x.rps))),
        p50Ms: median(r.map((x) => x.p50)),
        p99Ms: median(r.map((x) => x.p99)),
        extra: { errors: r.reduce((s, x) => s + x.errors, 0), rounds: r.length, secondsPerRun: seconds, perRound: r.map((x) => Math.round(x.rps)).join(' ') },
      }
    }
    const subjects = keys.map(summary)
    const rps = (key: SubjectKey) => subjects[keys.indexOf(key)]!.opsPerSec!
    // Median over rounds of the per-round ratio.
    const perRound = (key: SubjectKey) => ({ rounds: runs.get(key)!.map((r) => r.rps) })
    const ratio = (a: SubjectKey, b: SubjectKey) => pairedRatio(perRound(a), perRound(b))
    // 95 % intervals of the median per-round losses (distribution-free, see medianInterval).
    const lossRange = (a: SubjectKey, b: SubjectKey) => percentRange(pairedRatioInterval(perRound(a), perRound(b)), (r) => 1 - r)
    const loss = 1 - ratio('ri', 'bare')
    const featureLoss = 1 - ratio('ri', 'pipeline')
    const anchorLoss = 1 - ratio('expressAnchors', 'express')
    const riOverAnchors = ratio('ri', 'expressAnchors')
    const notes =
      `ri metrics + slowlog vs bare node:http: ${(loss * 100).toFixed(1)} % fewer req/s (95 % interval ${lossRange('ri', 'bare')}), of which the core pipeline with no feature accounts for ` +
      `${((1 - ratio('pipeline', 'bare')) * 100).toFixed(1)} % and the two features for ${(featureLoss * 100).toFixed(1)} % (vs the empty pipeline; 95 % interval ${lossRange('ri', 'pipeline')}); ` +
      `ri metrics + slowlog serve ${riOverAnchors.toFixed(2)}x the req/s of express + express-prom-bundle + pino-http; ` +
      `express-prom-bundle + pino-http cost ${(anchorLoss * 100).toFixed(1)} % against bare express. ` +
      `Ratios are medians of per-round ratios over ${rounds} rounds; a round runs every subject for ${seconds} s in an order and then in the reverse order, and takes the mean of its two runs. ` +
      'pino-http logs every request while ri slowlog logs only slow/5xx ones (its documented behaviour); every pino writes to /dev/null asynchronously.'
    return [
      {
        id: 'metrics-slowlog.overhead',
        title: 'metrics + slowlog on node:http vs the bare handler (autocannon, 32 connections)',
        baseline: SUBJECTS.bare,
        subjects,
        target: {
          text:
            `at most 10 % req/s loss against the bare node:http handler (measured ${(loss * 100).toFixed(1)} %, 95 % interval ${lossRange('ri', 'bare')}), ` +
            `and more req/s than express + express-prom-bundle + pino-http (measured ${riOverAnchors.toFixed(2)}x)`,
          met: loss <= 0.1 && riOverAnchors > 1,
        },
        notes,
      },
      {
        id: 'metrics-slowlog.features',
        title: 'metrics + slowlog features alone: ri pipeline with vs without them (autocannon, 32 connections)',
        baseline: SUBJECTS.pipeline,
        subjects: [subjects[keys.indexOf('pipeline')]!, subjects[keys.indexOf('ri')]!, subjects[keys.indexOf('express')]!, subjects[keys.indexOf('expressAnchors')]!],
        target: {
          text:
            `the features cost at most 10 % req/s (measured ${(featureLoss * 100).toFixed(1)} %, 95 % interval ${lossRange('ri', 'pipeline')}), ` +
            `and less than express-prom-bundle + pino-http cost express (measured ${(anchorLoss * 100).toFixed(1)} %)`,
          met: featureLoss <= 0.1 && featureLoss < anchorLoss,
        },
        notes,
      },
      {
        id: 'metrics-slowlog.cpu',
        title: 'CPU per request in process (exchange + hooks, no sockets): core pipeline with vs without metrics + slowlog',
        baseline: 'ri pipeline, no features (in process)',
        subjects: [
          { name: 'ri pipeline, no features (in process)', opsPerSec: Math.round(cpu.empty) },
          { name: 'ri metrics + slowlog (in process)', opsPerSec: Math.round(cpu.features), extra: { addedMicrosecondsPerRequest: Number(perRequestUs.toFixed(3)) } },
        ],
        notes:
          `metrics + slowlog add ${perRequestUs.toFixed(2)} µs of CPU per request (best of 5 rounds); ` +
          `against the bare node:http server's measured ${Math.round(rps('bare'))} req/s that is ${(perRequestUs * rps('bare') / 1e4).toFixed(1)} % of one core's time at that rate.`,
      },
    ]
  } finally {
    for (const { child } of servers.values()) child.disconnect?.()
  }
}

export default bench
