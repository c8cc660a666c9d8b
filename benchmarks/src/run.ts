// `pnpm bench [--quick] [--rounds=N] [filter]`: runs every benchmarks/src/*.bench.ts in one process, one after
// another, with a live progress line, then writes results/latest.json, results/latest.md and one
// SVG chart per comparison. A filtered run writes the same files under results/tmp/ (not
// committed), so the published results always come from one run of the whole suite.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem, type } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { renderMarkdown, renderSvg, ratio } from './report.js'
import type { BenchComparison, BenchFile } from './types.js'

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const roundsArg = args.find((a) => a.startsWith('--rounds='))
const rounds = roundsArg === undefined ? undefined : Number(roundsArg.slice('--rounds='.length))
if (rounds !== undefined && !(Number.isInteger(rounds) && rounds >= 2)) throw new Error(`--rounds: expected an integer of at least 2, got "${roundsArg}"`)
const unknown = args.filter((a) => a.startsWith('--') && a !== '--quick' && a !== roundsArg)
if (unknown.length > 0) throw new Error(`unknown option ${unknown.join(', ')} (options: --quick, --rounds=N)`)
const filters = args.filter((a) => !a.startsWith('--'))
const resultsDir = join(here, '..', 'results', ...(filters.length > 0 ? ['tmp'] : []))

const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((flt) => f.includes(flt)))
  .sort()

const machine = {
  cpu: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
  memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
  os: type(),
  node: process.version,
  date: new Date().toISOString(),
  mode: `${quick ? 'quick' : 'full'}${rounds === undefined ? '' : `, --rounds=${rounds}`}`,
}

const started = Date.now()
const status = (msg: string) => {
  const line = `[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${msg}`
  if (process.stdout.isTTY) process.stdout.write(`\r\x1b[K${line.slice(0, (process.stdout.columns || 120) - 1)}`)
  else console.log(line)
}

const comparisons: BenchComparison[] = []
const failures: string[] = []
const seconds: Record<string, number> = {}
for (const [i, file] of files.entries()) {
  status(`(${i + 1}/${files.length}) ${file}`)
  const fileStarted = Date.now()
  try {
    const mod = (await import(pathToFileURL(join(here, file)).href)) as { default: BenchFile }
    const result = await mod.default({ quick, rounds, progress: (m) => status(`(${i + 1}/${files.length}) ${file}: ${m}`) })
    comparisons.push(...result)
  } catch (error) {
    failures.push(file)
    console.error(`\n✖ ${file} failed:`, error)
  }
  seconds[file] = Math.round((Date.now() - fileStarted) / 100) / 10
}
const totalSeconds = Math.round((Date.now() - started) / 1000)
if (process.stdout.isTTY) process.stdout.write('\n')

mkdirSync(join(resultsDir, 'charts'), { recursive: true })
writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify({ machine, seconds: { total: totalSeconds, ...seconds }, comparisons }, null, 2)}\n`)
writeFileSync(join(resultsDir, 'latest.md'), renderMarkdown(comparisons, machine, quick))
for (const c of comparisons) writeFileSync(join(resultsDir, 'charts', `${c.id}.svg`), renderSvg(c))

for (const c of comparisons) {
  console.log(`\n${c.title}`)
  console.table(
    c.subjects.map((s) => ({
      subject: s.name,
      'ops/s': s.opsPerSec === undefined ? '' : Math.round(s.opsPerSec),
      ratio: ratio(c, s)?.toFixed(2) ?? '',
      ...(s.p99Ms === undefined ? {} : { 'p99 ms': s.p99Ms.toFixed(3) }),
      ...s.extra,
    })),
  )
  if (c.target) console.log(`target: ${c.target.text} -> ${c.target.met ? 'met' : 'NOT met'}`)
}
console.log(`\n${Object.entries(seconds).map(([f, s]) => `${f} ${s} s`).join(', ')}`)
const written = join('benchmarks', 'results', ...(filters.length > 0 ? ['tmp'] : []), 'latest.md')
console.log(`wrote ${written} and ${comparisons.length} chart(s) in ${totalSeconds} s`)
if (filters.length > 0) console.log('filtered run: benchmarks/results/latest.* still hold the last run of the whole suite')
if (failures.length > 0) {
  console.error(`${failures.length} benchmark file(s) failed: ${failures.join(', ')}`)
  process.exit(1)
}
