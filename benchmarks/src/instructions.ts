// `pnpm instructions [--requests N] [--top N] [--keep DIR] [--cache-sim] <module:export:path> ...`: CPU work per request of
// HTTP servers, counted in instructions by valgrind's callgrind, for changes too small for req/s
// to show on a shared machine. Each subject is a factory of src/servers/<module>.ts (as in the
// HTTP benchmarks), served in its own process under callgrind; after a warm-up, the main thread's
// user-space instructions over N requests are divided by N. Kernel time (the socket writes) is not
// counted, so a ratio here is larger than the same change's req/s ratio. Repeatable to about 1 %
// on the same machine and build (a run that catches a full GC reads a few % higher: measure twice).
//
// `--cache-sim` also simulates the caches and branch predictor (several times slower): V8's code
// for a request overflows the first-level instruction cache, so code that runs once per request
// costs misses as well as instructions; the table then adds misses and callgrind's cycle estimate.
//
//   pnpm instructions frameworks:fastifyBare:/users/1 frameworks:fastifyRi:/users/1 --top 25
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { listeningUrl } from './http.js'

const here = dirname(fileURLToPath(import.meta.url))

export interface Subject {
  readonly module: string
  readonly name: string
  readonly path: string
}

/** `module:export:path` (the path may itself hold colons). */
export function parseSubject(spec: string): Subject {
  const [module, name, ...rest] = spec.split(':')
  const path = rest.join(':')
  if (!module || !name || !path.startsWith('/')) throw new Error(`subject "${spec}": expected module:export:/path, e.g. frameworks:expressRi:/users/1`)
  return { module, name, path }
}

/** The `totals:` (or `summary:`) line of a callgrind output file. */
export function callgrindTotal(text: string): number {
  const m = /^(?:totals|summary):\s+(\d+)/m.exec(text)
  if (!m) throw new Error('no totals line in the callgrind output')
  return Number(m[1])
}

/** Every event of a callgrind dump's `totals:` (or `summary:`) line, by the names its `events:` line gives. */
export function callgrindEvents(text: string): Record<string, number> {
  const names = /^events:\s+(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/)
  const values = /^(?:totals|summary):\s+(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/).map(Number)
  if (!names || !values) throw new Error('no events or totals line in the callgrind output')
  const out: Record<string, number> = {}
  names.forEach((name, i) => {
    out[name] = values[i] ?? 0 // callgrind leaves off trailing zeros
  })
  return out
}

/** What `--cache-sim` reports per request: misses, mispredictions and callgrind's cycle estimate. */
export interface CacheFigures {
  /** First-level cache misses: instruction fetches, data reads and data writes. */
  readonly l1Misses: number
  /** Last-level cache misses (all three kinds). */
  readonly llMisses: number
  /** Mispredicted conditional and indirect branches. */
  readonly mispredicts: number
  /** Ir + 10 x mispredicts + 10 x L1 misses + 100 x LL misses: KCachegrind's cycle estimate. */
  readonly cycles: number
}

/** The cache and branch figures of a dump made with `--cache-sim=yes --branch-sim=yes`, divided by `per`. */
export function cacheFigures(events: Readonly<Record<string, number>>, per: number): CacheFigures {
  const sum = (...names: string[]) =>
    names.reduce((total, name) => {
      const v = events[name]
      if (v === undefined) throw new Error(`the callgrind dump has no ${name} event: was it made with --cache-sim=yes --branch-sim=yes?`)
      return total + v
    }, 0) / per
  const l1Misses = sum('I1mr', 'D1mr', 'D1mw')
  const llMisses = sum('ILmr', 'DLmr', 'DLmw')
  const mispredicts = sum('Bcm', 'Bim')
  return { l1Misses, llMisses, mispredicts, cycles: sum('Ir') + 10 * mispredicts + 10 * l1Misses + 100 * llMisses }
}

/** A perf map (`/tmp/perf-<pid>.map`, written by node --perf-basic-prof) as sorted address ranges. */
export function parsePerfMap(text: string): Array<{ start: number; size: number; name: string }> {
  const out: Array<{ start: number; size: number; name: string }> = []
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line)
    if (m) out.push({ start: Number.parseInt(m[1]!, 16), size: Number.parseInt(m[2]!, 16), name: m[3]! })
  }
  return out.sort((a, b) => a.start - b.start)
}

/** The JIT-compiled function holding `address`, or undefined. */
export function lookup(map: ReadonlyArray<{ start: number; size: number; name: string }>, address: number): string | undefined {
  let lo = 0
  let hi = map.length - 1
  let found: { start: number; size: number; name: string } | undefined
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (map[mid]!.start <= address) {
      found = map[mid]
      lo = mid + 1
    } else hi = mid - 1
  }
  return found !== undefined && address < found.start + found.size ? found.name : undefined
}

/**
 * Self instructions by function from `callgrind_annotate` output, JIT frames named through the
 * perf map (callgrind knows them only by address).
 */
export function selfByFunction(annotated: string, map: ReadonlyArray<{ start: number; size: number; name: string }>): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of annotated.split('\n')) {
    const m = /^\s*([\d,]+)\s+\([^)]*\)\s+(.*)$/.exec(line)
    if (!m || m[2]!.includes('PROGRAM TOTALS')) continue
    let name = m[2]!.replace(/\s+\[[^\]]*\]$/, '')
    const address = /^\?\?\?:0x([0-9a-f]+)$/.exec(name)
    if (address) name = lookup(map, Number.parseInt(address[1]!, 16)) ?? name
    out.set(name, (out.get(name) ?? 0) + Number(m[1]!.replace(/,/g, '')))
  }
  return out
}

async function load(url: string, amount: number): Promise<void> {
  const result = await autocannon({ url, amount, connections: 10 })
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
}

/** Instructions per request of one subject (and, with `top`, its busiest functions). */
export async function measure(subject: Subject, options: { requests: number; warmup: number; top: number; keep?: string; cacheSim?: boolean }) {
  const dir = mkdtempSync(join(tmpdir(), 'ri-instructions-'))
  const child: ChildProcess = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no', // nothing counted until the warm-up is over
      '--separate-threads=yes', // the main thread only: no background JIT compiler or GC helpers
      '--smc-check=all-non-file', // V8 writes and rewrites machine code
      ...(options.cacheSim ? ['--cache-sim=yes', '--branch-sim=yes'] : []),
      `--callgrind-out-file=${join(dir, 'cg.%p')}`,
      process.execPath,
      '--perf-basic-prof', // names for JIT frames (in /tmp/perf-<pid>.map)
      `--logfile=${join(dir, 'v8.log')}`, // the V8 log that flag also writes: into the scratch directory
      '--import',
      'tsx',
      join(here, 'servers', 'child.ts'),
      subject.module,
      subject.name,
    ],
    { cwd: join(here, '..'), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'production' } },
  )
  try {
    const url = await listeningUrl(child, `${subject.module}#${subject.name} under valgrind`, 300_000)
    await load(url + subject.path, options.warmup)
    const pid = String(child.pid)
    execFileSync('callgrind_control', ['-z', pid], { stdio: 'ignore' })
    execFileSync('callgrind_control', ['-i', 'on', pid], { stdio: 'ignore' })
    await load(url + subject.path, options.requests)
    execFileSync('callgrind_control', ['-d', pid], { stdio: 'ignore' })
    const main = readdirSync(dir).filter((f) => /^cg\.\d+\.\d+-01$/.test(f))
    if (main.length !== 1) throw new Error(`expected one main-thread dump in ${dir}, found ${main.join(', ') || 'none'}`)
    const file = join(dir, main[0]!)
    const dump = readFileSync(file, 'utf8')
    const perRequest = callgrindTotal(dump) / options.requests
    const cache = options.cacheSim ? cacheFigures(callgrindEvents(dump), options.requests) : undefined
    if (options.keep !== undefined) keepDump(options.keep, subject, file, `/tmp/perf-${pid}.map`)
    let top: Array<[string, number]> = []
    if (options.top > 0) {
      // --show=Ir: one column (a cache-sim dump has thirteen), the one selfByFunction reads.
      const annotated = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', '--show=Ir', file], { maxBuffer: 1 << 28 }).toString()
      const map = parsePerfMap(readFileSync(`/tmp/perf-${pid}.map`, 'utf8'))
      top = [...selfByFunction(annotated, map)].sort((a, b) => b[1] - a[1]).slice(0, options.top).map(([n, v]) => [n, v / options.requests])
    }
    return { perRequest, cache, top }
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
    rmSync(dir, { recursive: true, force: true })
    rmSync(`/tmp/perf-${child.pid}.map`, { force: true }) // written by --perf-basic-prof
  }
}

/**
 * `--keep DIR`: the main thread's dump and the perf map, for reading callers and callees:
 * `callgrind_annotate --tree=caller --inclusive=yes DIR/<name>.cg` (JIT frames are addresses there:
 * look them up in DIR/<name>.map).
 */
function keepDump(dir: string, subject: Subject, dump: string, perfMap: string): void {
  mkdirSync(dir, { recursive: true })
  const base = join(dir, `${subject.module}-${subject.name}`)
  copyFileSync(dump, `${base}.cg`)
  copyFileSync(perfMap, `${base}.map`)
  console.error(`kept ${base}.cg and ${base}.map`)
}

function text(args: string[], name: string): string | undefined {
  const i = args.indexOf(name)
  if (i === -1) return undefined
  const v = args[i + 1]
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} takes a directory`)
  args.splice(i, 2)
  return v
}

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name)
  if (i === -1) return fallback
  const v = Number(args[i + 1])
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} takes a whole number, got ${args[i + 1]}`)
  args.splice(i, 2)
  return v
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const requests = flag(args, '--requests', 10_000)
  if (requests < 1) throw new Error('--requests must be at least 1')
  const warmup = flag(args, '--warmup', 30_000)
  const top = flag(args, '--top', 0)
  const keep = text(args, '--keep')
  const cacheSim = args.includes('--cache-sim')
  if (cacheSim) args.splice(args.indexOf('--cache-sim'), 1)
  const subjects = args.map(parseSubject)
  if (subjects.length === 0) throw new Error('usage: pnpm instructions [--requests N] [--warmup N] [--top N] [--keep DIR] [--cache-sim] module:export:/path ...')
  for (const tool of ['valgrind', 'callgrind_control', 'callgrind_annotate']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    } catch {
      throw new Error(`${tool} not found: install Debian's valgrind package`)
    }
  }
  const rows: Row[] = []
  for (const s of subjects) {
    const spec = `${s.module}:${s.name}:${s.path}`
    console.error(`measuring ${spec} (${warmup} warm-up + ${requests} counted requests under callgrind${cacheSim ? ' with cache and branch simulation' : ''}) ...`)
    const r = await measure(s, { requests, warmup, top, keep, cacheSim })
    rows.push({ spec, perRequest: r.perRequest, cache: r.cache })
    if (top > 0) {
      console.log(`\n${spec}: busiest functions (self instructions per request)`)
      for (const [name, v] of r.top) console.log(`${v.toFixed(0).padStart(8)}  ${name.slice(0, 130)}`)
    }
  }
  console.log(`\n${renderTable(rows)}`)
}

export interface Row {
  readonly spec: string
  readonly perRequest: number
  readonly cache?: CacheFigures | undefined
}

/** The result table: instructions per request and, with `--cache-sim`, misses and estimated cycles; ratios to the first row. */
export function renderTable(rows: readonly Row[]): string {
  const first = rows[0]
  if (first === undefined) return ''
  const ratio = (v: number, base: number) => `${(v / base).toFixed(3)}x`
  if (first.cache === undefined) {
    const lines = ['| subject | instructions / request | vs first |', '| --- | ---: | ---: |']
    for (const r of rows) lines.push(`| ${r.spec} | ${Math.round(r.perRequest)} | ${ratio(r.perRequest, first.perRequest)} |`)
    return lines.join('\n')
  }
  const lines = [
    '| subject | instructions / request | vs first | L1 misses | LL misses | mispredicted branches | estimated cycles | vs first |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const r of rows) {
    const c = r.cache
    if (c === undefined) throw new Error(`renderTable: ${r.spec} has no cache figures while ${first.spec} has`)
    lines.push(
      `| ${r.spec} | ${Math.round(r.perRequest)} | ${ratio(r.perRequest, first.perRequest)} | ${Math.round(c.l1Misses)} | ${c.llMisses.toFixed(1)} | ${Math.round(c.mispredicts)} | ${Math.round(c.cycles)} | ${ratio(c.cycles, first.cache.cycles)} |`,
    )
  }
  return lines.join('\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error)
    process.exit(1)
  })
}
