import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { resolveBinaries, type BinaryName } from './binaries.js'
import { getFreePort, waitForPortFree } from './ports.js'
import { descendants, hasExited, indent, isRoot, killTree, postgresOsUser, signal, tailFile, track, waitExit, waitGone } from './proc.js'

export interface PostgresOptions {
  /** Number of streaming replicas (default 0). */
  replicas?: number
  /** `recovery_min_apply_delay` on the replicas in ms (default 0 = none). */
  applyDelayMs?: number
  /** Extra postgresql.conf settings for the primary (replicas inherit them through pg_basebackup). */
  settings?: Record<string, string>
  /** Bound for each wait (initdb, base backup, readiness); default 30 000 ms. */
  startTimeoutMs?: number
}

export interface PgNode {
  readonly role: 'primary' | 'replica'
  readonly host: string
  readonly port: number
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth, no password). */
  readonly url: string
  readonly database: 'postgres'
  readonly user: 'postgres'
  /** PID of the postmaster (changes on restart), -1 when never started. */
  readonly pid: number
  /** True while the postmaster is alive (also while paused). */
  readonly running: boolean
  readonly dataDir: string
  /** Last lines of this server's log. */
  logTail(lines?: number): string
  /** Fast shutdown (SIGINT), waits for exit. Data dir is kept (cluster.stop() removes it). */
  stop(): Promise<void>
  /** SIGKILL of the postmaster and all its children, waits until gone and the port is free. */
  kill(): Promise<void>
  /** Start again on the same port and data dir; waits until ready (a replica: in recovery and streaming again). */
  restart(): Promise<void>
  /** SIGSTOP of the postmaster and every child: connections stay open but nothing answers. */
  pause(): void
  /** SIGCONT after pause(). */
  resume(): void
}

export interface PostgresCluster {
  readonly primary: PgNode
  readonly replicas: PgNode[]
  /** Temp dir holding all data dirs, logs and unix sockets. */
  readonly dir: string
  /** Stop every node (replicas first) and remove the temp dir. */
  stop(): Promise<void>
}

const HOST = '127.0.0.1'

interface Ctx {
  bins: Record<BinaryName, string>
  root: string
  /** Set when we are root: every postgres tool runs as this OS user. */
  runAs: { uid: number; gid: number } | undefined
  env: NodeJS.ProcessEnv
  timeoutMs: number
}

function spawnOptions(ctx: Ctx, fd: number): SpawnOptions {
  return {
    cwd: ctx.root,
    env: ctx.env,
    stdio: ['ignore', fd, fd],
    ...(ctx.runAs ? { uid: ctx.runAs.uid, gid: ctx.runAs.gid } : {}),
  }
}

function spawnLogged(ctx: Ctx, bin: string, args: string[], logFile: string): ChildProcess {
  const fd = fs.openSync(logFile, 'a')
  try {
    return spawn(bin, args, spawnOptions(ctx, fd))
  } finally {
    fs.closeSync(fd)
  }
}

/** Run a one-shot tool (initdb, pg_basebackup) to completion, bounded by ctx.timeoutMs. */
async function runTool(ctx: Ctx, bin: string, args: string[], logFile: string): Promise<void> {
  const child = spawnLogged(ctx, bin, args, logFile)
  const result = await new Promise<{ code: number | null; sig: NodeJS.Signals | null; err?: Error }>((resolve) => {
    const timer = setTimeout(() => signal(child.pid!, 'SIGKILL'), ctx.timeoutMs)
    child.once('error', (err) => {
      clearTimeout(timer)
      resolve({ code: null, sig: null, err })
    })
    child.once('exit', (code, sig) => {
      clearTimeout(timer)
      resolve({ code, sig })
    })
  })
  if (result.code !== 0) {
    const why = result.err ? result.err.message : result.sig === 'SIGKILL' ? `timed out after ${ctx.timeoutMs} ms` : `exit code ${result.code}, signal ${result.sig}`
    throw new Error(`${path.basename(bin)} ${args.join(' ')} failed (${why}). Log tail:\n${indent(tailFile(logFile))}`)
  }
}

function confLine(key: string, value: string | number): string {
  return `${key} = '${String(value).replace(/'/g, "''")}'\n`
}

async function query<T extends pg.QueryResultRow>(port: number, sql: string): Promise<T[]> {
  const client = new pg.Client({ host: HOST, port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2_000, query_timeout: 5_000 })
  client.on('error', () => {}) // a dying server must not become an uncaught 'error' event
  await client.connect()
  try {
    return (await client.query<T>(sql)).rows
  } finally {
    await client.end().catch(() => {})
  }
}

class PgNodeImpl implements PgNode {
  readonly host = HOST
  readonly database = 'postgres' as const
  readonly user = 'postgres' as const
  child: ChildProcess | undefined
  private paused = false

  constructor(
    private readonly ctx: Ctx,
    readonly role: 'primary' | 'replica',
    readonly name: string,
    public port: number,
    private readonly upstream?: PgNodeImpl,
  ) {}

  get dataDir(): string {
    return path.join(this.ctx.root, this.name)
  }
  get logFile(): string {
    return path.join(this.ctx.root, `${this.name}.log`)
  }
  get url(): string {
    return `postgres://postgres@${HOST}:${this.port}/postgres`
  }
  get pid(): number {
    return this.child?.pid ?? -1
  }
  get running(): boolean {
    return !hasExited(this.child)
  }

  logTail(lines = 30): string {
    return tailFile(this.logFile, lines)
  }

  /** Start the postmaster and wait until ready. 'addrinuse' lets the first start retry on another port. */
  async launch(): Promise<'ok' | 'addrinuse'> {
    const logOffset = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0
    // Spawned directly (not via pg_ctl) so child.pid is the postmaster: kill/pause hit the real thing.
    const child = spawnLogged(this.ctx, this.ctx.bins.postgres, ['-D', this.dataDir], this.logFile)
    this.child = child
    this.paused = false
    if (child.pid === undefined) {
      const error = await new Promise<Error>((resolve) => child.once('error', resolve))
      throw new Error(`postgres ${this.name} (${this.ctx.bins.postgres}) failed to spawn: ${error.message}`)
    }

    const deadline = Date.now() + this.ctx.timeoutMs
    let last: unknown
    for (;;) {
      if (hasExited(child)) {
        const log = fs.readFileSync(this.logFile, 'utf8').slice(logOffset)
        if (/could not bind .*Address already in use/i.test(log)) return 'addrinuse'
        throw new Error(`postgres ${this.name} on port ${this.port} exited during startup (code ${child.exitCode}, signal ${child.signalCode}). Log tail:\n${indent(this.logTail())}`)
      }
      try {
        const rows = await query<{ rec: boolean }>(this.port, 'select pg_is_in_recovery() as rec')
        if (rows[0]?.rec === (this.role === 'replica')) break
        last = new Error(`pg_is_in_recovery() = ${rows[0]?.rec}`)
      } catch (err) {
        last = err
      }
      if (Date.now() > deadline) {
        killTree(child.pid!)
        await waitExit(child, 5_000)
        throw new Error(`postgres ${this.name} on port ${this.port} not ready within ${this.ctx.timeoutMs} ms (last: ${(last as Error)?.message}). Log tail:\n${indent(this.logTail())}`)
      }
      await sleep(50)
    }
    // A replica counts as ready once it streams again, when its primary is up to stream from.
    if (this.role === 'replica' && this.upstream?.running) await this.waitStreaming(deadline)
    return 'ok'
  }

  private async waitStreaming(deadline: number): Promise<void> {
    let status: string | undefined
    for (;;) {
      try {
        status = (await query<{ status: string }>(this.port, 'select status from pg_stat_wal_receiver'))[0]?.status
        if (status === 'streaming') return
      } catch {
        // transient: retry until the deadline
      }
      if (Date.now() > deadline) {
        throw new Error(`replica ${this.name} (port ${this.port}) is not streaming from the primary within ${this.ctx.timeoutMs} ms (wal receiver: ${status ?? 'none'}). Log tail:\n${indent(this.logTail())}`)
      }
      await sleep(50)
    }
  }

  async stop(): Promise<void> {
    const child = this.child
    if (!child || hasExited(child)) return
    this.resume() // stopped processes cannot shut down
    signal(child.pid!, 'SIGINT') // fast shutdown
    if (!(await waitExit(child, 15_000))) await this.kill()
  }

  async kill(): Promise<void> {
    const child = this.child
    if (!child || hasExited(child)) return
    const kids = killTree(child.pid!)
    await waitExit(child, 10_000)
    // Children hold shared memory and would block a restart ("shared memory block still in use").
    if (!(await waitGone(kids, 10_000))) throw new Error(`postgres ${this.name}: children ${kids.join(',')} survived SIGKILL`)
    this.paused = false
    this.removeSysvShm()
    await waitForPortFree(this.port, HOST)
  }

  /** A SIGKILLed postmaster leaves its small SysV segment behind: remove it so nothing leaks. */
  removeSysvShm(): void {
    try {
      const line = fs.readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[6] ?? ''
      const shmid = line.trim().split(/\s+/)[1]
      if (shmid && /^\d+$/.test(shmid)) execFileSync('ipcrm', ['-m', shmid], { stdio: 'ignore' })
    } catch {
      // already gone or no ipcrm: harmless
    }
  }

  killSync(): void {
    if (hasExited(this.child)) return
    killTree(this.child!.pid!)
    this.removeSysvShm() // IPC_RMID on an attached segment frees it once the dying processes detach
  }

  async restart(): Promise<void> {
    await this.stop()
    const res = await this.launch()
    if (res === 'addrinuse') throw new Error(`postgres ${this.name}: port ${this.port} was taken by another process. Log tail:\n${indent(this.logTail())}`)
  }

  pause(): void {
    if (!this.running) throw new Error(`postgres ${this.name} pause(): not running`)
    const pid = this.child!.pid!
    signal(pid, 'SIGSTOP') // first, so it cannot fork between listing and stopping children
    for (const k of descendants(pid)) signal(k, 'SIGSTOP')
    this.paused = true
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    if (!this.running) return
    const pid = this.child!.pid!
    for (const k of descendants(pid)) signal(k, 'SIGCONT')
    signal(pid, 'SIGCONT')
  }

  /** First start: on EADDRINUSE pick another port, rewrite it in the config and retry. */
  async firstStart(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      if (i > 0) {
        this.port = await getFreePort(HOST)
        fs.appendFileSync(path.join(this.dataDir, 'postgresql.conf'), confLine('port', this.port))
      }
      if ((await this.launch()) === 'ok') return
    }
    throw new Error(`postgres ${this.name}: could not bind a free port after 5 attempts. Log tail:\n${indent(this.logTail())}`)
  }
}

function childEnv(root: string, asOtherUser: boolean): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  // Drop PG* variables (PGHOST, PGPORT, PGDATA...) so the caller's environment cannot redirect the tools.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v
  if (asOtherUser) env.HOME = root // root's HOME is unreadable for the postgres user
  return env
}

/**
 * Start a throwaway PostgreSQL primary (plus optional streaming replicas) on
 * 127.0.0.1 and random ports, trust auth as user `postgres`, in one temp dir.
 * Resolves once every node accepts connections and each replica is in
 * recovery and streaming. Runs the server as the `postgres` OS user when root.
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresCluster> {
  const bins = resolveBinaries('postgres')
  const replicaCount = opts.replicas ?? 0
  const applyDelayMs = opts.applyDelayMs ?? 0
  const runAs = isRoot() ? postgresOsUser() : undefined
  if (isRoot() && !runAs) throw new Error("startPostgres: running as root but there is no 'postgres' OS user (PostgreSQL refuses to run as root)")

  const root = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'ri-pg-'))
  const ctx: Ctx = { bins, root, runAs, env: childEnv(root, runAs !== undefined), timeoutMs: opts.startTimeoutMs ?? 30_000 }
  const nodes: PgNodeImpl[] = []
  const untrack = track({
    killSync: () => {
      for (const n of nodes) n.killSync()
    },
    dir: root,
  })
  if (runAs) await fs.promises.chown(root, runAs.uid, runAs.gid)
  await fs.promises.chmod(root, 0o700)

  let stopped = false
  const stopAll = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    for (const n of nodes) n.resume()
    await Promise.all(nodes.filter((n) => n.role === 'replica').map((n) => n.stop()))
    await Promise.all(nodes.filter((n) => n.role === 'primary').map((n) => n.stop()))
    await fs.promises.rm(root, { recursive: true, force: true })
    untrack()
  }

  try {
    const primary = new PgNodeImpl(ctx, 'primary', 'primary', await getFreePort(HOST))
    nodes.push(primary)
    await runTool(ctx, bins.initdb, ['-D', primary.dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], primary.logFile)
    const settings: Record<string, string | number> = {
      listen_addresses: HOST,
      port: primary.port,
      unix_socket_directories: root,
      wal_level: 'replica',
      max_wal_senders: 10,
      max_replication_slots: 10,
      hot_standby: 'on',
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      shared_buffers: '16MB',
      max_connections: 50,
      // Keep WAL around so a killed replica can catch up without a slot.
      wal_keep_size: '256MB',
      // Faster reconnects after a node is killed/restarted (defaults are 5s/10s).
      wal_retrieve_retry_interval: '500ms',
      wal_receiver_status_interval: '1s',
      // DSM in the data dir instead of /dev/shm: nothing leaks when a node is SIGKILLed.
      dynamic_shared_memory_type: 'mmap',
      jit: 'off',
      log_line_prefix: '%m [%p] %q%a ',
      ...opts.settings,
    }
    fs.appendFileSync(path.join(primary.dataDir, 'postgresql.conf'), '\n# @ri/testing\n' + Object.entries(settings).map(([k, v]) => confLine(k, v)).join(''))
    fs.appendFileSync(path.join(primary.dataDir, 'pg_hba.conf'), `\nhost replication postgres ${HOST}/32 trust\nhost all all ${HOST}/32 trust\n`)
    await primary.firstStart()

    const replicas = await Promise.all(
      Array.from({ length: replicaCount }, async (_, i) => {
        const replica = new PgNodeImpl(ctx, 'replica', `replica${i + 1}`, await getFreePort(HOST), primary)
        nodes.push(replica)
        await runTool(
          ctx,
          bins.pg_basebackup,
          ['-h', HOST, '-p', String(primary.port), '-U', 'postgres', '-D', replica.dataDir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync'],
          replica.logFile,
        )
        await fs.promises.chmod(replica.dataDir, 0o700)
        let conf = `\n# @ri/testing replica\n${confLine('port', replica.port)}${confLine('hot_standby', 'on')}${confLine('cluster_name', replica.name)}`
        if (applyDelayMs > 0) conf += confLine('recovery_min_apply_delay', `${applyDelayMs}ms`)
        fs.appendFileSync(path.join(replica.dataDir, 'postgresql.conf'), conf)
        await replica.firstStart()
        return replica
      }),
    )
    return { primary, replicas, dir: root, stop: stopAll }
  } catch (err) {
    for (const n of nodes) n.killSync()
    await Promise.all(nodes.map((n) => (n.child ? waitExit(n.child, 5_000) : undefined)))
    await fs.promises.rm(root, { recursive: true, force: true }).catch(() => {})
    untrack()
    throw err
  }
}

/** Create database `name` on the server at `url`; returns the URL of the new database. */
export async function createDatabase(url: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 })
  client.on('error', () => {})
  await client.connect()
  try {
    await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`)
  } finally {
    await client.end().catch(() => {})
  }
  const u = new URL(url)
  u.pathname = `/${encodeURIComponent(name)}`
  return u.toString()
}
