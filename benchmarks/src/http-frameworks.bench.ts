// Issue 8: ri on each framework, with autocannon in one run. Per framework: the bare app, the app
// with ri's full stack (metrics + slowlog + throttle on memory + health) and the anchor stack users
// assemble today, and a warmed `cached()` route hit against a route returning a
// constant. Servers: servers/frameworks.ts, each in its own child process.
import { compareServers } from './http.js'
import type { BenchComparison, BenchFile } from './types.js'

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

const bench: BenchFile = async ({ quick, progress }) => {
  // autocannon counts whole seconds (1.5 s runs for 2 s), so quick rounds are 1 s.
  const timing = { seconds: quick ? 1 : 5, rounds: quick ? 2 : 5 }
  const out: BenchComparison[] = []

  for (const fw of frameworks) {
    const bare = `bare ${fw.label}`
    const riName = 'ri full stack (metrics + slowlog + throttle + health)'
    const anchorName = `anchor: ${fw.anchor}`
    const constant = `${fw.label}: route returning a constant`
    const hit = `ri cached() hit (${fw.label})`
    // One group per framework: its five servers start together, rounds interleave all five.
    const subjects = await compareServers(
      [
        { name: bare, module: 'frameworks', server: `${fw.key}Bare`, path: '/users/1' },
        { name: riName, module: 'frameworks', server: `${fw.key}Ri`, path: '/users/1' },
        { name: anchorName, module: 'frameworks', server: `${fw.key}Anchor`, path: '/users/1' },
        { name: constant, module: 'frameworks', server: `${fw.key}Cache`, path: '/constant' },
        { name: hit, module: 'frameworks', server: `${fw.key}Cache`, path: '/cached/1' },
      ],
      { ...timing, progress: (m) => progress(`${fw.key}: ${m}`) },
    )
    const [b, r, a, c, h] = subjects as [(typeof subjects)[0], (typeof subjects)[0], (typeof subjects)[0], (typeof subjects)[0], (typeof subjects)[0]]
    const keep = r.opsPerSec / b.opsPerSec
    const vsAnchor = r.opsPerSec / a.opsPerSec
    const keepMet = keep >= 0.85
    const anchorMet = fw.vsAnchor === undefined || vsAnchor >= fw.vsAnchor
    const text =
      fw.vsAnchor === undefined
        ? `ri's full stack keeps at least 85 % of the bare app's req/s (measured ${pct(keep)}); vs the anchor stack: no target stated (measured ${vsAnchor.toFixed(2)}x)`
        : `ri's full stack keeps at least 85 % of the bare app's req/s (measured ${pct(keep)}) and beats the anchor stack by at least ${fw.vsAnchor}x (measured ${vsAnchor.toFixed(2)}x)`
    out.push({
      id: `frameworks.${fw.key}`,
      title: `${fw.label}: bare vs ri full stack vs ${fw.anchor} (GET /users/:id, constant JSON)`,
      baseline: bare,
      subjects: [b, { ...r, extra: { 'vs anchor': `${vsAnchor.toFixed(2)}x` } }, a],
      target: { text, met: keepMet && anchorMet },
      notes:
        'Same route and body on every subject; rate limits at 1e9 per minute (nothing refused); every logger (pino-http, slowlog) writes to /dev/null; ' +
        'ri health with shutdown: false; each server in its own process, median of rounds.',
    })
    const hitRatio = h.opsPerSec / c.opsPerSec
    out.push({
      id: `frameworks.${fw.key}-cached-hit`,
      title: `${fw.label}: cached() hit vs a route returning a constant (both under ri({ cache }))`,
      baseline: constant,
      subjects: [c, h],
      target: { text: `a cached() hit serves at least 90 % of the req/s of a constant route (measured ${pct(hitRatio)})`, met: hitRatio >= 0.9 },
      notes: 'In-memory createCache(), ttl 1m, warmed before the run (every measured request is a HIT); no Accept-Encoding sent; measured in the same interleaved rounds as the stack comparison above.',
    })
  }
  return out
}
export default bench
