import fs from 'node:fs'
import path from 'node:path'
import { describe } from 'vitest'
import { isCITruthy, isRoot, postgresOsUser } from './proc.js'

/** Services the harness can start. */
export type ServiceName = 'redis' | 'postgres'

/** Executables the harness looks up. */
export type BinaryName = 'redis-server' | 'redis-cli' | 'initdb' | 'pg_ctl' | 'postgres' | 'pg_basebackup' | 'psql'

/** Where to look; defaults are the real process environment. */
export interface LookupOptions {
  /** Environment to read PATH, CI and RI_PG_BINDIR from (default: process.env). */
  env?: NodeJS.ProcessEnv
  /** Directories holding one sub-directory per PostgreSQL version (default: ['/usr/lib/postgresql']). */
  pgRoots?: string[]
}

export interface ServiceAvailability {
  available: boolean
  /** Binaries (or, when running as root for postgres, the OS user) that were not found. */
  missing: string[]
  /** Install hint, e.g. `apt-get install redis-server`. */
  install: string
}

export const SERVICE_BINARIES: Record<ServiceName, readonly BinaryName[]> = {
  redis: ['redis-server', 'redis-cli'],
  postgres: ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup', 'psql'],
}

const INSTALL_HINT: Record<ServiceName, string> = {
  redis: 'apt-get install redis-server',
  postgres: 'apt-get install postgresql',
}

const PG_BINARIES = new Set<BinaryName>(SERVICE_BINARIES.postgres)

function isExecutable(file: string): boolean {
  try {
    const st = fs.statSync(file)
    if (!st.isFile()) return false
    fs.accessSync(file, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

function pathDirs(env: NodeJS.ProcessEnv): string[] {
  return (env.PATH ?? '').split(path.delimiter).filter(Boolean)
}

/** `<root>/<version>/bin` directories, highest version first. */
function pgVersionDirs(roots: string[]): string[] {
  const out: { v: number; dir: string }[] = []
  for (const root of roots) {
    let names: string[]
    try {
      names = fs.readdirSync(root)
    } catch {
      continue
    }
    for (const name of names) {
      const v = Number.parseFloat(name)
      if (Number.isFinite(v)) out.push({ v, dir: path.join(root, name, 'bin') })
    }
  }
  return out.sort((a, b) => b.v - a.v).map((x) => x.dir)
}

/**
 * Absolute path of `name`, or undefined.
 * PostgreSQL tools come preferably from one versioned directory (the highest
 * `/usr/lib/postgresql/<v>/bin` holding all server tools) so initdb, postgres
 * and pg_basebackup always match; Debian's PATH entries for some of them are
 * version-picking wrappers. `RI_PG_BINDIR` overrides this.
 */
export function findBinary(name: BinaryName, opts: LookupOptions = {}): string | undefined {
  const env = opts.env ?? process.env
  if (PG_BINARIES.has(name)) {
    const override = env.RI_PG_BINDIR
    if (override) {
      const p = path.join(override, name)
      return isExecutable(p) ? p : undefined
    }
    const versioned = pgVersionDirs(opts.pgRoots ?? ['/usr/lib/postgresql'])
    const server: BinaryName[] = ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup']
    const complete = versioned.find((d) => server.every((b) => isExecutable(path.join(d, b))))
    for (const dir of [...(complete ? [complete] : []), ...pathDirs(env), ...versioned]) {
      const p = path.join(dir, name)
      if (isExecutable(p)) return p
    }
    return undefined
  }
  for (const dir of pathDirs(env)) {
    const p = path.join(dir, name)
    if (isExecutable(p)) return p
  }
  return undefined
}

/** Paths of every binary a service needs; throws (with the install hint) if any is missing. */
export function resolveBinaries(service: ServiceName, opts: LookupOptions = {}): Record<BinaryName, string> {
  const a = serviceAvailability(service, opts)
  if (!a.available) throw new Error(unavailableMessage(service, a, opts.env ?? process.env))
  const out: Partial<Record<BinaryName, string>> = {}
  for (const b of SERVICE_BINARIES[service]) out[b] = findBinary(b, opts)!
  return out as Record<BinaryName, string>
}

/** Which binaries of `service` are missing and how to install them. */
export function serviceAvailability(service: ServiceName, opts: LookupOptions = {}): ServiceAvailability {
  const missing: string[] = SERVICE_BINARIES[service].filter((b) => !findBinary(b, opts))
  // As root we must drop to the postgres OS user: PostgreSQL refuses to run as root.
  if (service === 'postgres' && isRoot() && !postgresOsUser()) missing.push("OS user 'postgres' (needed when running as root)")
  return { available: missing.length === 0, missing, install: INSTALL_HINT[service] }
}

function unavailableMessage(service: ServiceName, a: ServiceAvailability, env: NodeJS.ProcessEnv): string {
  const where = service === 'redis' ? 'PATH' : env.RI_PG_BINDIR ? `RI_PG_BINDIR=${env.RI_PG_BINDIR}` : 'PATH and /usr/lib/postgresql/*/bin'
  return `@ri/testing: ${service} is not available: missing ${a.missing.join(', ')} (searched ${where}). Install with: ${a.install}`
}

const warned = new Set<string>()

/**
 * Gate for integration tests. Returns true when `service` can be started.
 * When it cannot: under CI (env CI truthy) throws, since a missing service must
 * fail the run rather than silently skip; otherwise prints the reason to
 * stderr once and returns false so the caller can `describe.skipIf(!ok)`.
 */
export function requireService(service: ServiceName, opts: LookupOptions = {}): boolean {
  const a = serviceAvailability(service, opts)
  if (a.available) return true
  const env = opts.env ?? process.env
  const msg = unavailableMessage(service, a, env)
  if (isCITruthy(env.CI)) throw new Error(`${msg}. CI is set, so this is a failure, not a skip.`)
  if (!warned.has(msg)) {
    warned.add(msg)
    console.warn(`${msg}. Skipping ${service} integration tests (they fail instead when CI=true).`)
  }
  return false
}

/** `describe` that runs only when Redis is available (fails under CI when it is not). */
export function describeWithRedis(name: string, fn: () => void): void {
  describe.skipIf(!requireService('redis'))(name, fn)
}

/** `describe` that runs only when PostgreSQL is available (fails under CI when it is not). */
export function describeWithPostgres(name: string, fn: () => void): void {
  describe.skipIf(!requireService('postgres'))(name, fn)
}
