import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

/** Debian package that ships promtool (CI installs it). */
export const PROMTOOL_PACKAGE = 'prometheus'

/** Absolute path of `promtool` on PATH (or `RI_PROMTOOL`), or undefined. */
export function findPromtool(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env.RI_PROMTOOL
  if (explicit) return isExecutable(explicit) ? explicit : undefined
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue
    const file = path.join(dir, 'promtool')
    if (isExecutable(file)) return file
  }
  return undefined
}

const warned = new Set<string>()

/**
 * Gate for promtool tests, mirroring @ri/testing's requireService: true when promtool is
 * there; under CI (env CI truthy) a missing promtool throws (a failure, not a skip);
 * elsewhere it warns once and returns false so the suite can `describe.skipIf(!ok)`.
 */
export function requirePromtool(env: NodeJS.ProcessEnv = process.env): boolean {
  if (findPromtool(env)) return true
  const msg = `@ri/metrics: promtool is not available (searched ${env.RI_PROMTOOL ? `RI_PROMTOOL=${env.RI_PROMTOOL}` : 'PATH'}). Install with: apt-get install ${PROMTOOL_PACKAGE}`
  if (isCI(env.CI)) throw new Error(`${msg}. CI is set, so this is a failure, not a skip.`)
  if (!warned.has(msg)) {
    warned.add(msg)
    console.warn(`${msg}. Skipping promtool tests (they fail instead when CI=true).`)
  }
  return false
}

/** Runs promtool with `args`, feeding `stdin`; resolves with the exit code and output. */
export function runPromtool(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = findPromtool()
  if (!bin) return Promise.reject(new Error('promtool not found'))
  return new Promise((resolve) => {
    const child = execFile(bin, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? ((error as unknown as { code: number }).code) : 1) : 0
      resolve({ code, stdout, stderr })
    })
    if (stdin !== undefined) child.stdin?.end(stdin)
    else child.stdin?.end()
  })
}

function isExecutable(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false
    fs.accessSync(file, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

function isCI(value: string | undefined): boolean {
  if (value === undefined) return false
  return !['', '0', 'false', 'no', 'off'].includes(value.trim().toLowerCase())
}
