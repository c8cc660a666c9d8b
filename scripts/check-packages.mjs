#!/usr/bin/env node
// Checks every publishable package as users consume it: publint --strict, attw --pack, and a
// smoke test that installs the packed tarballs into a fresh project and loads them (ESM and CJS).
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const bin = (name) => join(root, 'node_modules', '.bin', name)
const failures = []

function run(label, cmd, args, cwd = root) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } })
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim()
  if (r.status !== 0) {
    failures.push(label)
    console.log(`✖ ${label}\n${out}\n`)
  } else {
    console.log(`✔ ${label}`)
  }
  return out
}

const packages = readdirSync(join(root, 'packages'))
  .map((dir) => ({ dir: join(root, 'packages', dir), manifest: JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) }))
  .filter((p) => !p.manifest.private)

const packDir = mkdtempSync(join(tmpdir(), 'ri-pack-'))
const tarballs = {}
for (const { dir, manifest } of packages) {
  run(`publint --strict ${manifest.name}`, bin('publint'), ['--strict', dir])
  run(`attw --pack ${manifest.name}`, bin('attw'), ['--pack', dir, '--profile', 'node16', '--format', 'ascii'])
  const out = run(`pack ${manifest.name}`, 'pnpm', ['pack', '--pack-destination', packDir], dir)
  const file = out.split('\n').map((l) => l.trim()).find((l) => l.endsWith('.tgz'))
  if (file) tarballs[manifest.name] = file.startsWith('/') ? file : join(packDir, file)
}

// Smoke project: install the tarballs (internal @ri deps resolved to the tarballs, never the registry).
const smoke = mkdtempSync(join(tmpdir(), 'ri-smoke-'))
const deps = Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`]))
writeFileSync(join(smoke, 'package.json'), JSON.stringify({ name: 'ri-smoke', private: true, dependencies: deps, overrides: deps }, null, 2))
run('npm install packed tarballs into a fresh project', 'npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], smoke)
const names = Object.keys(tarballs)
writeFileSync(
  join(smoke, 'esm.mjs'),
  `${names.map((n, i) => `import * as m${i} from '${n}'`).join('\n')}\nconst mods = [${names.map((_, i) => `m${i}`).join(', ')}]\nfor (const m of mods) if (Object.keys(m).length === 0) throw new Error('empty ESM module')\nconsole.log('esm ok', mods.length)\n`,
)
writeFileSync(
  join(smoke, 'cjs.cjs'),
  `const names = ${JSON.stringify(names)}\nfor (const n of names) { const m = require(n); if (Object.keys(m).length === 0) throw new Error('empty CJS module ' + n) }\nconsole.log('cjs ok', names.length)\n`,
)
// Embedded defaults must work with no optional peer installed (no ioredis, no pg).
writeFileSync(
  join(smoke, 'defaults.mjs'),
  `import { createCache } from '@ri/cache'
import { createThrottle } from '@ri/throttle'
import { createPipeline, parseDuration } from '@ri/core'
const cache = createCache()
await cache.set('k', { v: 1 })
const got = await cache.get('k')
if (got?.v !== 1) throw new Error('L1-only cache did not round-trip')
const throttle = createThrottle({ default: { limit: 1, window: '1m' } })
const p = createPipeline([])
const ex = () => p.exchange({ method: 'GET', url: '/', route: '/', headers: {}, remoteAddress: '203.0.113.1' })
const a = await throttle.check(ex()), b = await throttle.check(ex())
if (!a.allowed || b.allowed) throw new Error('in-memory throttle did not limit')
if (parseDuration('5m') !== 300000) throw new Error('parseDuration')
await cache.close()
console.log('embedded defaults ok')
`,
)
run('load every package as ESM', 'node', ['esm.mjs'], smoke)
run('embedded defaults work without optional peers (ESM)', 'node', ['defaults.mjs'], smoke)
run('load every package as CJS', 'node', ['cjs.cjs'], smoke)
rmSync(smoke, { recursive: true, force: true })
rmSync(packDir, { recursive: true, force: true })

if (failures.length) {
  console.log(`\n${failures.length} package check(s) failed: ${failures.join(', ')}`)
  process.exit(1)
}
console.log(`\nall ${packages.length} publishable package(s) pass publint, attw and the ESM/CJS smoke test`)
