import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { resolveBinaries } from './binaries.js'
import { getFreePort, waitForPortFree } from './ports.js'
import { hasExited, indent, killTree, signal, tailFile, track, waitExit, waitGone } from './proc.js'

export interface RedisOptions {
  /** Fixed port; default: a random free one (re-picked if it gets taken before redis binds). */
  port?: number
  /** Extra redis-server arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[]
  /** How long to wait for PING to answer (default 15 000 ms). */
  startTimeoutMs?: number
}

export interface RedisServer {
  readonly host: string
  readonly port: number
  /** `redis://127.0.0.1:PORT` */
  readonly url: string
  /** PID of the current redis-server process (changes on restart). */
  readonly pid: number
  /** True while the process is alive (also while paused). */
  readonly running: boolean
  /** Temp dir (working dir and log); removed by stop(). */
  readonly dir: string
  /** Last lines of the server log. */
  logTail(lines?: number): string
  /** Graceful shutdown (SIGTERM), waits for exit, removes the temp dir. */
  stop(): Promise<void>
  /** SIGKILL, waits for exit and for the port to be free. Temp dir kept for restart(). */
  kill(): Promise<void>
  /** Start again on the same port (stopping first if running); waits for PING. */
  restart(): Promise<void>
  /** SIGSTOP: the server stops answering but keeps its connections. */
  pause(): void
  /** SIGCONT after pause(). */
  resume(): void
}

const HOST = '127.0.0.1'

/** One PING over a raw socket; true on +PONG. Avoids depending on a client library. */
function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port })
    let buf = ''
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(timeoutMs, () => done(false))
    sock.once('error', () => done(false))
    sock.once('connect', () => sock.write('PING\r\n'))
    sock.on('data', (d) => {
      buf += d.toString('latin1')
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'))
    })
  })
}

class RedisServerImpl implements RedisServer {
  readonly host = HOST
  private child: ChildProcess | undefined
  private paused = false
  private untrack: (() => void) | undefined

  constructor(
    private readonly bin: string,
    public port: number,
    readonly dir: string,
    private readonly extraArgs: string[],
    private readonly startTimeoutMs: number,
  ) {}

  get url(): string {
    return `redis://${HOST}:${this.port}`
  }
  get pid(): number {
    return this.child?.pid ?? -1
  }
  get running(): boolean {
    return !hasExited(this.child)
  }
  private get logFile(): string {
    return path.join(this.dir, 'redis.log')
  }

  logTail(lines = 30): string {
    return tailFile(this.logFile, lines)
  }

  /** Spawn and wait for PING. Returns 'addrinuse' so the caller can retry on another port. */
  async launch(): Promise<'ok' | 'addrinuse'> {
    // (Re)registered here too so a restart() after stop() is still killed on exit.
    this.untrack ??= track({
      killSync: () => {
        if (!hasExited(this.child)) killTree(this.child!.pid!) // tree: BGSAVE & co. fork
      },
      dir: this.dir,
    })
    fs.mkdirSync(this.dir, { recursive: true })
    const logOffset = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0
    const fd = fs.openSync(this.logFile, 'a')
    // redis-server parses `--save ""` as "no snapshots"; as an argv element that is ''.
    const args = ['--port', String(this.port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no', ...this.extraArgs]
    let child: ChildProcess
    try {
      child = spawn(this.bin, args, { cwd: this.dir, stdio: ['ignore', fd, fd] })
    } finally {
      fs.closeSync(fd)
    }
    this.child = child
    this.paused = false
    if (child.pid === undefined) {
      const error = await new Promise<Error>((resolve) => child.once('error', resolve))
      throw new Error(`redis-server (${this.bin}) failed to spawn: ${error.message}`)
    }

    const deadline = Date.now() + this.startTimeoutMs
    for (;;) {
      if (hasExited(child)) {
        const log = fs.readFileSync(this.logFile, 'utf8').slice(logOffset)
        if (/address already in use/i.test(log)) return 'addrinuse'
        throw new Error(`redis-server on port ${this.port} exited during startup (code ${child.exitCode}, signal ${child.signalCode}). Log tail:\n${indent(this.logTail())}`)
      }
      if (await ping(this.port)) return 'ok'
      if (Date.now() > deadline) {
        signal(child.pid!, 'SIGKILL')
        await waitExit(child, 5_000)
        throw new Error(`redis-server on port ${this.port} did not answer PING within ${this.startTimeoutMs} ms. Log tail:\n${indent(this.logTail())}`)
      }
      await sleep(25)
    }
  }

  private async terminate(): Promise<void> {
    const child = this.child
    if (!child || hasExited(child)) return
    this.resume() // a stopped process never handles SIGTERM
    signal(child.pid!, 'SIGTERM')
    if (!(await waitExit(child, 10_000))) {
      signal(child.pid!, 'SIGKILL')
      await waitExit(child, 5_000)
    }
  }

  async stop(): Promise<void> {
    await this.terminate()
    fs.rmSync(this.dir, { recursive: true, force: true })
    this.detach()
  }

  async kill(): Promise<void> {
    const child = this.child
    if (!child || hasExited(child)) return
    const kids = killTree(child.pid!)
    await waitExit(child, 10_000)
    await waitGone(kids, 5_000)
    this.paused = false
    await waitForPortFree(this.port, HOST)
  }

  async restart(): Promise<void> {
    await this.terminate()
    const res = await this.launch()
    if (res === 'addrinuse') throw new Error(`redis restart: port ${this.port} was taken by another process. Log tail:\n${indent(this.logTail())}`)
  }

  /** Forget this instance without touching its dir (used when retrying on another port). */
  detach(): void {
    this.untrack?.()
    this.untrack = undefined
  }

  pause(): void {
    if (!this.running) throw new Error('redis pause(): server is not running')
    signal(this.child!.pid!, 'SIGSTOP')
    this.paused = true
  }

  resume(): void {
    if (!this.paused) return
    if (this.running) signal(this.child!.pid!, 'SIGCONT')
    this.paused = false
  }
}

/**
 * Start a throwaway redis-server on 127.0.0.1 and a random free port, with no
 * persistence, in its own temp dir. Resolves once it answers PING.
 */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const { 'redis-server': bin } = resolveBinaries('redis')
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'ri-redis-'))
  const attempts = opts.port === undefined ? 5 : 1
  for (let i = 0; i < attempts; i++) {
    const port = opts.port ?? (await getFreePort(HOST))
    const server = new RedisServerImpl(bin, port, dir, opts.args ?? [], opts.startTimeoutMs ?? 15_000)
    try {
      if ((await server.launch()) === 'ok') return server
    } catch (err) {
      await server.stop().catch(() => {})
      throw err
    }
    // Port taken between getFreePort and bind: keep the dir, try another port.
    fs.rmSync(path.join(dir, 'redis.log'), { force: true })
    server.detach()
  }
  fs.rmSync(dir, { recursive: true, force: true })
  throw new Error(`startRedis: port ${opts.port ?? '(random)'} already in use${opts.port === undefined ? ` after ${attempts} attempts` : ''}`)
}
