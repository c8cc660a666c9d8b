import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

const here = dirname(fileURLToPath(import.meta.url))

/** One autocannon run; returns req/s and latency percentiles (ms). */
export async function autocannonRun(url: string, seconds: number, options: { connections?: number; pipelining?: number; headers?: Record<string, string> } = {}) {
  const result = await autocannon({
    url,
    duration: seconds,
    connections: options.connections ?? 50,
    pipelining: options.pipelining ?? 1,
    headers: options.headers,
  })
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  return { opsPerSec: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99 }
}

/**
 * The URL a server child prints (`listening <url>`, from servers/child.ts); rejects with what it
 * wrote to stderr (when piped) if it exits first or does not start within `timeoutMs`.
 */
export function listeningUrl(child: ChildProcess, label: string, timeoutMs: number): Promise<string> {
  let out = ''
  let err = ''
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk))
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start: ${out}${err.slice(-500)}`)), timeoutMs)
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk
      const m = /^listening (\S+)$/m.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${label} exited (${code}): ${out}${err.slice(-500)}`))
    })
  })
}

export interface ChildServer {
  readonly url: string
  close(): Promise<void>
}

/**
 * Starts the server a `servers/*.ts` module exports under `name` in its own Node process, so the
 * load generator and the server under test never share an event loop.
 */
export async function serveInChild(module: string, name: string): Promise<ChildServer> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(here, 'servers', 'child.ts'), module, name], {
    // tsx reads the tsconfig of its working directory: this package's enables the decorators the
    // NestJS servers use, whatever directory the caller (the suite at the root, a test) runs in.
    cwd: join(here, '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
  })
  const url = await listeningUrl(child, `${module}#${name}`, 30_000)
  const stop = async () => {
    if (child.exitCode !== null) return
    child.kill('SIGTERM')
    await once(child, 'exit')
  }
  let closing: Promise<void> | undefined
  return {
    url,
    // Idempotent: subjects that share a server close it once.
    close: () => (closing ??= stop()),
  }
}

export interface ServerSubject {
  readonly name: string
  readonly module: string
  readonly server: string
  readonly path: string
  readonly headers?: Record<string, string>
}

/** Starts the subjects' child servers, all at once; subjects naming the same server share one process. */
export function startServers(subjects: readonly ServerSubject[]): Promise<ChildServer[]> {
  const started = new Map<string, Promise<ChildServer>>()
  return Promise.all(
    subjects.map((s) => {
      const key = `${s.module}#${s.server}`
      let server = started.get(key)
      if (server === undefined) started.set(key, (server = serveInChild(s.module, s.server)))
      return server
    }),
  )
}

/** Measures each server in turn, in rounds, and keeps each subject's median round (noise control). */
export async function compareServers(subjects: readonly ServerSubject[], options: { seconds: number; rounds: number; progress: (m: string) => void }) {
  const servers = await startServers(subjects)
  try {
    return await measureServers(subjects, servers, options)
  } finally {
    await Promise.all(servers.map((s) => s.close()))
  }
}

/** `compareServers` on servers already started (`servers[i]` serves `subjects[i]`). */
export async function measureServers(
  subjects: readonly ServerSubject[],
  servers: readonly ChildServer[],
  options: { seconds: number; rounds: number; progress: (m: string) => void },
) {
  const runs = new Map<string, Array<{ opsPerSec: number; p50Ms: number; p99Ms: number }>>()
  for (let round = 0; round < options.rounds; round++) {
    // Rotate the order each round so no subject always runs first (warm-up, thermal drift).
    for (let k = 0; k < subjects.length; k++) {
      const i = (k + round) % subjects.length
      const s = subjects[i]!
      options.progress(`round ${round + 1}/${options.rounds}: ${s.name}`)
      const r = await autocannonRun(`${servers[i]!.url}${s.path}`, options.seconds, { headers: s.headers })
      runs.set(s.name, [...(runs.get(s.name) ?? []), r])
    }
  }
  return subjects.map((s) => {
    const rounds = runs.get(s.name)!
    const list = [...rounds].sort((a, b) => a.opsPerSec - b.opsPerSec)
    const median = list[Math.floor(list.length / 2)]!
    return { name: s.name, ...median, rounds: rounds.map((r) => r.opsPerSec) }
  })
}

/**
 * Median over rounds of `a`'s req/s divided by `b`'s in the same round. Subjects of one round run
 * seconds apart, so a machine that drifts over minutes (shared VMs) cancels out of each ratio,
 * which a ratio of the two medians (rounds minutes apart) does not do.
 */
export function pairedRatio(a: Rounds, b: Rounds): number {
  return median(perRoundRatios(a, b, 'pairedRatio'))
}

/** What was measured of one subject, round by round. */
export interface Rounds {
  readonly rounds: readonly number[]
}

/** `a / b` round by round, for subjects measured in the same rounds. */
function perRoundRatios(a: Rounds, b: Rounds, caller: string): number[] {
  if (a.rounds.length !== b.rounds.length || a.rounds.length === 0) throw new Error(`${caller}: subjects measured in different rounds`)
  return a.rounds.map((v, i) => v / b.rounds[i]!)
}

/**
 * A confidence interval for the median of `xs` that assumes nothing about their distribution: the
 * k-th smallest and k-th largest value, for the largest k whose coverage (1 - 2 P(Binomial(n, 1/2)
 * < k)) is still at least `confidence`. With 24 per-round ratios that is the 7th and 18th (97.7 %);
 * with 8, the smallest and largest (99.2 %). Undefined when even those do not cover (n < 6 at 95 %).
 */
export function medianInterval(xs: readonly number[], confidence = 0.95): { low: number; high: number; coverage: number } | undefined {
  const n = xs.length
  if (!(confidence > 0 && confidence < 1)) throw new Error(`medianInterval: confidence must be between 0 and 1, got ${confidence}`)
  const s = [...xs].sort((x, y) => x - y)
  // below = P(X < k) for X ~ Binomial(n, 1/2), built up term by term.
  let term = 0.5 ** n // P(X = 0)
  let below = 0
  let best: { low: number; high: number; coverage: number } | undefined
  for (let k = 1; 2 * k <= n + 1; k++) {
    below += term
    term = (term * (n - (k - 1))) / k // P(X = k)
    const coverage = 1 - 2 * below
    if (coverage < confidence) break
    best = { low: s[k - 1]!, high: s[n - k]!, coverage }
  }
  return best
}

/** `medianInterval` of the per-round ratios `a / b` (what `pairedRatio` takes the median of). */
export function pairedRatioInterval(a: Rounds, b: Rounds, confidence = 0.95) {
  return medianInterval(perRoundRatios(a, b, 'pairedRatioInterval'), confidence)
}

type Interval = { readonly low: number; readonly high: number } | undefined

/** Both ends through `show` (after `of`, in ascending order), or `n/a (too few rounds)`. */
function rangeText(iv: Interval, of: (ratio: number) => number, show: (v: number) => string): string {
  if (iv === undefined) return 'n/a (too few rounds)'
  const [a, b] = [of(iv.low), of(iv.high)].sort((x, y) => x - y)
  return `${show(a!)}-${show(b!)}`
}

/**
 * An interval of ratios as `a-b %` (`of` maps each end first, e.g. `(r) => 1 - r` for a loss), or
 * `n/a (too few rounds)`.
 *
 * @example
 * percentRange(pairedRatioInterval(ri, bare)) // "74.0-83.1 %"
 */
export function percentRange(iv: Interval, of: (ratio: number) => number = (r) => r): string {
  const text = rangeText(iv, of, (v) => (v * 100).toFixed(1))
  return iv === undefined ? text : `${text} %`
}

/** An interval of ratios as `a-bx` (`1.40-2.15x`), or `n/a (too few rounds)`. */
export function timesRange(iv: Interval): string {
  const text = rangeText(iv, (r) => r, (v) => v.toFixed(2))
  return iv === undefined ? text : `${text}x`
}

/** The median of `xs` (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
