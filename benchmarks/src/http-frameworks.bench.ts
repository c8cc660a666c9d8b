// Issue 8: ri on each framework, with autocannon in one run. Per framework: the bare app, the app
// with ri's full stack (metrics + slowlog + throttle on memory + health), the anchor stack users
// assemble today, the app with one empty middleware (what the framework charges any middleware),
// a warmed `cached()` route hit against a route returning a constant, and the full stack's
// per-request work hand-rolled without a library through the framework's documented API. Servers:
// servers/frameworks.ts, each in its own child process.
import { measureServers, pairedRatio, pairedRatioInterval, percentRange, type ServerSubject, startServers, timesRange } from './http.js'
import type { BenchComparison, BenchFile, BenchSubject } from './types.js'

interface Framework {
  readonly key: 'express' | 'fastify' | 'hono' | 'nest'
  readonly label: string
  readonly anchor: string
  /** The "beats the anchor stack by at least" factor; none stated for Hono and NestJS. */
  readonly vsAnchor?: number
}

const frameworks: readonly Framework[] = [
  { key: 'express', label: 'Express 5', anchor: 'express-prom-bundle + pino-http + express-rate-limit', vsAnchor: 1.5 },
  { key: 'fastify', label: 'Fastify 5', anchor: 'fastify-metrics + @fastify/rate-limit', vsAnchor: 1.2 },
  { key: 'hono', label: 'Hono 4 (@hono/node-server)', anchor: '@hono/prometheus + hono-rate-limiter' },
  { key: 'nest', label: 'NestJS 11 (Express platform)', anchor: '@willsoto/nestjs-prometheus (+ HTTP histogram interceptor) + @nestjs/throttler' },
]

const pct = (r: number) => `${(r * 100).toFixed(0)} %`

const bench: BenchFile = async ({ quick, rounds, progress }) => {
  // autocannon counts whole seconds (1.5 s runs for 2 s), so quick rounds are 1 s. Full runs use
  // more, shorter rounds: targets are judged on per-round ratios, and more rounds steady the median.
  const timing = { seconds: quick ? 1 : 3, rounds: rounds ?? (quick ? 2 : 8) }
  const out: BenchComparison[] = []
  const groups = frameworks.map((fw) => ({ fw, subjects: subjectsOf(fw) }))
  // Every server starts up front (idle ones cost no CPU while another group is measured).
  progress('starting the servers')
  const all = await startServers(groups.flatMap((g) => g.subjects))
  try {
    for (const [g, { fw, subjects: list }] of groups.entries()) {
      const servers = all.slice(g * list.length, (g + 1) * list.length)
      const subjects = await measureServers(list, servers, { ...timing, progress: (m) => progress(`${fw.key}: ${m}`) })
      out.push(...report(fw, subjects))
    }
  } finally {
    await Promise.all(all.map((s) => s.close()))
  }
  return out
}

function subjectsOf(fw: Framework): ServerSubject[] {
  return [
    { name: `bare ${fw.label}`, module: 'frameworks', server: `${fw.key}Bare`, path: '/users/1' },
    { name: 'ri full stack (metrics + slowlog + throttle + health)', module: 'frameworks', server: `${fw.key}Ri`, path: '/users/1' },
    { name: `anchor: ${fw.anchor}`, module: 'frameworks', server: `${fw.key}Anchor`, path: '/users/1' },
    { name: `${fw.label} + one empty ${fw.key === 'fastify' ? 'onRequest hook' : 'middleware'}`, module: 'frameworks', server: `${fw.key}Empty`, path: '/users/1' },
    { name: `${fw.label}: route returning a constant`, module: 'frameworks', server: `${fw.key}Cache`, path: '/constant' },
    { name: `ri cached() hit (${fw.label})`, module: 'frameworks', server: `${fw.key}Cache`, path: '/cached/1' },
    { name: `${fw.label} + the same per-request work hand-rolled (no library)`, module: 'frameworks', server: `${fw.key}HandRolled`, path: '/users/1' },
  ]
}

type Measured = BenchSubject & { readonly opsPerSec: number; readonly rounds: readonly number[] }

function report(fw: Framework, measured: readonly Measured[]): BenchComparison[] {
  // The table shows each subject's median round; the targets use per-round ratios (pairedRatio).
  const subjects = measured.map(({ rounds: _rounds, ...s }) => s)
  const [b, r, a, e, c, h, m] = subjects as [BenchSubject, BenchSubject, BenchSubject, BenchSubject, BenchSubject, BenchSubject, BenchSubject]
  const [mb, mr, ma, me, mc, mh, mm] = measured as [Measured, Measured, Measured, Measured, Measured, Measured, Measured]
  const keep = pairedRatio(mr, mb)
  // What the same work costs written by hand against the framework's documented API (no library).
  const handKeeps = pairedRatio(mm, mb)
  const handRange = percentRange(pairedRatioInterval(mm, mb))
  // What the framework charges any middleware (the empty one against bare), and what ri costs on top.
  const emptyKeeps = pairedRatio(me, mb)
  const overEmpty = pairedRatio(mr, me)
  const vsAnchor = pairedRatio(mr, ma)
  const anchorMet = fw.vsAnchor === undefined || vsAnchor >= fw.vsAnchor
  // 95 % intervals of the medians: how far this run's figures may sit from the machine's typical ones.
  const keepRange = percentRange(pairedRatioInterval(mr, mb))
  const anchorRange = timesRange(pairedRatioInterval(mr, ma))
  const keepText = `ri's full stack keeps at least 85 % of the bare app's req/s (measured ${pct(keep)}, 95 % interval ${keepRange}; the same work hand-rolled keeps ${pct(handKeeps)}, ${handRange})`
  const text =
    fw.vsAnchor === undefined
      ? `${keepText}; vs the anchor stack: no target stated (measured ${vsAnchor.toFixed(2)}x)`
      : `${keepText} and beats the anchor stack by at least ${fw.vsAnchor}x (measured ${vsAnchor.toFixed(2)}x, 95 % interval ${anchorRange})`
  const hitRatio = pairedRatio(mh, mc)
  const hitRange = percentRange(pairedRatioInterval(mh, mc))
  return [
    {
      id: `frameworks.${fw.key}`,
      title: `${fw.label}: bare vs ri full stack vs ${fw.anchor} (GET /users/:id, constant JSON)`,
      baseline: b.name,
      subjects: [
        b,
        { ...r, extra: { 'vs anchor': `${vsAnchor.toFixed(2)}x`, 'vs empty middleware': pct(overEmpty), 'vs hand-rolled': pct(pairedRatio(mr, mm)) } },
        a,
        { ...e, extra: { 'vs bare': pct(emptyKeeps) } },
        { ...m, extra: { 'vs bare': pct(handKeeps) } },
      ],
      target: { text, met: keep >= 0.85 && anchorMet },
      notes:
        'Same route and body on every subject; rate limits at 1e9 per minute (nothing refused); every logger (pino-http, slowlog) writes to /dev/null; ' +
        'ri health with shutdown: false; each server in its own process; table: median round per subject; ' +
        `the empty middleware (or Fastify onRequest hook) is the floor any middleware pays on this framework: it keeps ${pct(emptyKeeps)} of bare, and ri's full stack keeps ${pct(overEmpty)} of it; ` +
        'the hand-rolled subject does the same per-request work in a few lines without a library (histogram by route, active count, slow check, per-IP window, the two RateLimit headers; servers/frameworks.ts handRolled()): what this framework charges for that work through its own extension points; ' +
        'target figures and "vs anchor": medians of per-round ratios (subjects interleaved, order rotated each round); ' +
        `their 95 % intervals are distribution-free intervals of those medians over ${mb.rounds.length} rounds${mb.rounds.length === 8 ? ' (with 8: the lowest and highest round)' : ''}.`,
    },
    {
      id: `frameworks.${fw.key}-cached-hit`,
      title: `${fw.label}: cached() hit vs a route returning a constant (both under ri({ cache }))`,
      baseline: c.name,
      subjects: [c, h],
      target: { text: `a cached() hit serves at least 90 % of the req/s of a constant route (measured ${pct(hitRatio)}, 95 % interval ${hitRange})`, met: hitRatio >= 0.9 },
      notes:
        'In-memory createCache(), ttl 1m, warmed before the run (every measured request is a HIT); no Accept-Encoding sent; ' +
        'measured in the same interleaved rounds as the stack comparison above; target figure: median of per-round ratios.',
    },
  ]
}
export default bench
