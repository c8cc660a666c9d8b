#!/usr/bin/env node
// The README's two commands (`npm start`, `npm test`) run through here so they work on a machine
// that has only Node.js and npm: pnpm is used if present, else installed locally (never globally).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const PNPM_VERSION = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager.split('@')[1]
const toolsDir = join(root, '.ri-tmp', 'tools')
const isCI = process.env.CI === 'true' || process.env.CI === '1'

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env, ...options })
  if (result.error) throw result.error
  return result.status ?? 1
}

function must(cmd, args, options) {
  const status = run(cmd, args, options)
  if (status !== 0) {
    console.error(`\n✖ ${cmd} ${args.join(' ')} failed (exit ${status})`)
    process.exit(status)
  }
}

function pnpmWorks() {
  const r = spawnSync('pnpm', ['--version'], { encoding: 'utf8', env: process.env })
  return r.status === 0 && r.stdout.trim().split('.')[0] === PNPM_VERSION.split('.')[0]
}

function ensurePnpm() {
  process.env.PATH = [join(toolsDir, 'node_modules', '.bin'), process.env.PATH].join(delimiter)
  if (pnpmWorks()) return
  console.log(`• installing pnpm ${PNPM_VERSION} locally into .ri-tmp/tools (npm registry)`)
  mkdirSync(toolsDir, { recursive: true })
  must('npm', ['install', '--prefix', toolsDir, '--no-audit', '--no-fund', '--loglevel=error', `pnpm@${PNPM_VERSION}`])
  if (!pnpmWorks()) {
    console.error('✖ pnpm could not be installed; install it with `npm install -g pnpm@10` and retry.')
    process.exit(1)
  }
}

function newestMtime(dir) {
  let newest = 0
  if (!existsSync(dir)) return newest
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

function ensureInstalled() {
  const marker = join(root, 'node_modules', '.modules.yaml')
  const stale = !existsSync(marker) || statSync(join(root, 'pnpm-lock.yaml')).mtimeMs > statSync(marker).mtimeMs
  if (stale || isCI) must('pnpm', ['install', '--frozen-lockfile'])
}

function buildNeeded() {
  const pkgs = join(root, 'packages')
  for (const name of readdirSync(pkgs)) {
    const manifest = JSON.parse(readFileSync(join(pkgs, name, 'package.json'), 'utf8'))
    if (!manifest.scripts?.build) continue
    const dist = join(pkgs, name, 'dist')
    if (!existsSync(dist) || newestMtime(join(pkgs, name, 'src')) > newestMtime(dist)) return true
  }
  return false
}

function ensureBuilt(force) {
  if (force || buildNeeded()) must('pnpm', ['run', 'build'])
}

const [command = 'test', ...rest] = process.argv.slice(2)
ensurePnpm()
ensureInstalled()

if (command === 'start') {
  ensureBuilt(false)
  process.exit(run('pnpm', ['--filter', 'reference-app', 'start', ...rest]))
} else if (command === 'test') {
  ensureBuilt(true)
  const report = join(root, '.ri-tmp', 'vitest-report.json')
  mkdirSync(dirname(report), { recursive: true })
  const status = run('pnpm', ['exec', 'vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...rest])
  // A plain closing line any CI can read, whatever the test runner prints above it.
  if (existsSync(report)) {
    const r = JSON.parse(readFileSync(report, 'utf8'))
    const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)
    console.log(`\ntests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`)
    if (r.numTotalTests === 0) {
      console.error('✖ no test ran')
      process.exit(1)
    }
  }
  process.exit(status)
} else {
  console.error(`usage: node scripts/bootstrap.mjs start|test`)
  process.exit(2)
}
