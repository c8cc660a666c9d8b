// The docs' TypeScript blocks are compiled against the real built packages (and the `run` ones
// executed), so an API change that breaks an example fails CI instead of rotting in the docs.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const docsDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const repoRoot = join(docsDir, '..')
// Inside docs/ so the blocks resolve @ri/* and the frameworks through docs/node_modules.
const checkDir = join(docsDir, '.check')
const bin = (name: string) => join(docsDir, 'node_modules', '.bin', name)

interface Block {
  /** Markdown file relative to the repo root. */
  source: string
  /** 1-based line of the opening fence; block line n is markdown line `fenceLine + n`. */
  fenceLine: number
  flags: Set<string>
  code: string
  file: string
}

function markdownFiles(): string[] {
  const out: string[] = []
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name.startsWith('.')) continue
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (name.endsWith('.md')) out.push(path)
    }
  }
  walk(docsDir)
  for (const pkg of readdirSync(join(repoRoot, 'packages'))) {
    const readme = join(repoRoot, 'packages', pkg, 'README.md')
    try {
      if (statSync(readme).isFile()) out.push(readme)
    } catch {
      // a package without a README has nothing to check
    }
  }
  return out.sort()
}

/** Fenced ```ts / ```typescript blocks; the info string's other words are flags (`nocheck`, `run`). */
export function extractBlocks(markdown: string, source: string): Omit<Block, 'file'>[] {
  const blocks: Omit<Block, 'file'>[] = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(\S*)(.*)$/.exec(lines[i]!)
    if (!open) continue
    const [, indent, fence, lang, rest] = open as unknown as [string, string, string, string, string]
    const closing = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`)
    const end = lines.findIndex((l, j) => j > i && closing.test(l))
    const close = end === -1 ? lines.length : end
    if (lang === 'ts' || lang === 'typescript') {
      const body = lines.slice(i + 1, close).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
      blocks.push({ source, fenceLine: i + 1, flags: new Set(rest.split(/[\s,]+/).filter(Boolean)), code: body.join('\n') })
    }
    i = close
  }
  return blocks
}

function collect(): Block[] {
  const blocks: Block[] = []
  for (const path of markdownFiles()) {
    const source = relative(repoRoot, path)
    const slug = source.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-')
    for (const b of extractBlocks(readFileSync(path, 'utf8'), source)) {
      blocks.push({ ...b, file: `${slug}-L${b.fenceLine}.ts` })
    }
  }
  return blocks
}

function run(cmd: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env) {
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile(cmd, args, { cwd: checkDir, timeout: timeoutMs, env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
      resolve({ code, output: `${stdout}${stderr}` })
    })
  })
}

const blocks = collect()
const checked = blocks.filter((b) => !b.flags.has('nocheck'))

/**
 * Options tables that must list exactly the keys of the options type (both ways: a documented
 * option that no longer exists and an option nobody documented both fail).
 */
const optionTables = [
  { readme: 'packages/cache/README.md', heading: '## Options (defaults)', type: 'CacheOptions', from: '@ri/cache' },
  { readme: 'packages/throttle/README.md', heading: '### `createThrottle` options', type: 'ThrottleOptions', from: '@ri/throttle' },
  { readme: 'packages/throttle/README.md', heading: '### Rule options', type: 'RuleOptions', from: '@ri/throttle' },
  { readme: 'packages/slowlog/README.md', heading: '## Options', type: 'SlowLogOptions', from: '@ri/slowlog' },
  { readme: 'packages/health/README.md', heading: '## Options', type: 'HealthOptions', from: '@ri/health' },
  { readme: 'packages/db/README.md', heading: '## Options', type: 'DbRouterOptions', from: '@ri/db' },
  { readme: 'packages/db/README.md', heading: '`db.feature(options)`:', type: 'DbFeatureOptions', from: '@ri/db' },
  { readme: 'packages/metrics/README.md', heading: '## Options', type: 'MetricsOptions', from: '@ri/metrics' },
  { readme: 'packages/express/README.md', heading: '### `ri()` options', type: 'RiExpressOptions', from: '@ri/express' },
  { readme: 'packages/fastify/README.md', heading: '### Options', type: 'RiFastifyOptions', from: '@ri/fastify' },
  // documents only its own options on top of core's (`RiOptions`, documented in core's README)
  { readme: 'packages/hono/README.md', heading: '### Options', type: 'RiHonoOptions', from: '@ri/hono', inherits: 'RiOptions' },
] as { readme: string; heading: string; type: string; from: string; inherits?: string }[]

/** The option names of the first table after `heading` (first column; `a.b` counts as `a`). */
export function tableOptions(markdown: string, heading: string): { line: number; names: string[] } {
  const lines = markdown.split('\n')
  const start = lines.findIndex((l) => l.trim() === heading)
  if (start === -1) throw new Error(`heading not found: ${heading}`)
  let i = start + 1
  while (i < lines.length && !lines[i]!.startsWith('|')) {
    if (/^#{1,6} /.test(lines[i]!)) throw new Error(`no table under ${heading}`)
    i++
  }
  const names = new Set<string>()
  // skip the header row and the separator
  for (let j = i + 2; j < lines.length && lines[j]!.startsWith('|'); j++) {
    const first = lines[j]!.split(/(?<!\\)\|/)[1] ?? ''
    for (const m of first.matchAll(/`([A-Za-z_$][\w$]*)(?:\.[\w$.]+)?`/g)) names.add(m[1]!)
  }
  return { line: start + 1, names: [...names] }
}

const optionChecks = optionTables.map((t, n) => {
  const { line, names } = tableOptions(readFileSync(join(repoRoot, t.readme), 'utf8'), t.heading)
  const keys = t.inherits ? `Exclude<keyof ${t.type}, keyof ${t.inherits}>` : `keyof ${t.type}`
  const code = [
    `import type { ${t.type} } from '${t.from}'${t.inherits ? `; import type { ${t.inherits} } from '@ri/core'` : ''}`,
    `// every key of ${t.type}, no more, no less`,
    `export const documented: Record<${keys}, true> = { ${names.map((k) => `${k}: true`).join(', ')} }`,
  ].join('\n')
  return { ...t, file: `options-table-${n}.ts`, line, code }
})

describe('docs code blocks', () => {
  it('finds the TypeScript blocks of docs/ and the package READMEs', () => {
    expect(blocks.length).toBeGreaterThan(20)
    // Opting out is for fragments and other libraries' "before" code; it must stay the exception.
    expect(blocks.filter((b) => b.flags.has('nocheck')).length).toBeLessThan(checked.length)
  })

  it('type-check against the built packages (errors point at markdown file:line)', async () => {
    rmSync(checkDir, { recursive: true, force: true })
    mkdirSync(checkDir, { recursive: true })
    for (const b of checked) {
      // `export {}` keeps each block a module of its own; appended so line numbers still map 1:1.
      writeFileSync(join(checkDir, b.file), `${b.code}\nexport {}\n`)
    }
    for (const o of optionChecks) writeFileSync(join(checkDir, o.file), `${o.code}\n`)
    writeFileSync(
      join(checkDir, 'tsconfig.json'),
      JSON.stringify(
        {
          extends: '../../tsconfig.base.json',
          // Nest examples need legacy decorators; harmless for the others.
          compilerOptions: { experimentalDecorators: true, emitDecoratorMetadata: true, noEmit: true, declaration: false, noUnusedLocals: false },
          include: ['*.ts'],
        },
        null,
        2,
      ),
    )
    const { code, output } = await run(bin('tsc'), ['-p', 'tsconfig.json', '--pretty', 'false'], 150_000)
    const byFile = new Map<string, { source: string; fenceLine: number }>(checked.map((b) => [b.file, b]))
    // options-table errors point at the table's heading (the generated line numbers mean nothing there)
    for (const o of optionChecks) byFile.set(o.file, { source: `${o.readme} (${o.type} vs the options table)`, fenceLine: o.line - 3 })
    const errors = output
      .split('\n')
      .filter((l) => /error TS\d+/.test(l))
      .map((l) => {
        const m = /^(.+?)\((\d+),(\d+)\): (error TS\d+: .*)$/.exec(l.trim())
        const b = m ? byFile.get(m[1]!) : undefined
        return b && m ? `${b.source}:${b.fenceLine + Number(m[2])}:${m[3]} ${m[4]}` : l
      })
    expect(errors).toEqual([])
    expect(code, output).toBe(0)
  })

  it('relative links between the docs point at files that exist', () => {
    const broken: string[] = []
    for (const path of markdownFiles()) {
      const text = readFileSync(path, 'utf8').replace(/```[\s\S]*?```/g, '')
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!.split('#')[0]!
        if (!target || /^[a-z]+:/i.test(target)) continue
        if (!existsSync(join(dirname(path), decodeURI(target)))) broken.push(`${relative(repoRoot, path)}: ${m[1]}`)
      }
    }
    expect(broken).toEqual([])
  })

  const runnable = checked.filter((b) => b.flags.has('run'))
  it('has runnable examples', () => {
    expect(runnable.length).toBeGreaterThan(0)
  })
  for (const b of runnable) {
    // Embedded defaults only: no REDIS_URL/DATABASE_URL, so nothing touches a shared service.
    it(`runs ${b.source}:${b.fenceLine}`, async () => {
      mkdirSync(checkDir, { recursive: true })
      writeFileSync(join(checkDir, b.file), `${b.code}\nexport {}\n`)
      const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0' }
      for (const key of ['REDIS_URL', 'DATABASE_URL', 'REPLICA_URL']) delete env[key]
      const { code, output } = await run(bin('tsx'), [b.file], 60_000, env)
      expect(code, `${b.source}:${b.fenceLine}\n${output}`).toBe(0)
    })
  }
})
