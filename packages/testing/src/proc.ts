// Internal process helpers shared by redis.ts and postgres.ts (not re-exported).
import type { ChildProcess } from 'node:child_process'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

export function isCITruthy(value: string | undefined): boolean {
  if (value === undefined) return false
  return !['', '0', 'false', 'no', 'off'].includes(value.trim().toLowerCase())
}

/** Linux: state letter from /proc/<pid>/stat, undefined if the process is gone. */
function procState(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    // comm (field 2) may contain spaces and parens: parse after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { state: rest[0] ?? '', ppid: Number(rest[1]) }
  } catch {
    return undefined
  }
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const st = procState(pid)
  if (st) return st.state !== 'Z' && st.state !== 'X'
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** All descendants of `pid` (children, grandchildren...), found by scanning /proc. */
export function descendants(pid: number): number[] {
  let entries: string[]
  try {
    entries = fs.readdirSync('/proc')
  } catch {
    return []
  }
  const byParent = new Map<number, number[]>()
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    const st = procState(Number(e))
    if (!st) continue
    const list = byParent.get(st.ppid) ?? []
    list.push(Number(e))
    byParent.set(st.ppid, list)
  }
  const out: number[] = []
  const queue = [pid]
  while (queue.length > 0) {
    const p = queue.shift()!
    for (const c of byParent.get(p) ?? []) {
      out.push(c)
      queue.push(c)
    }
  }
  return out
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}

/**
 * SIGKILL a process and everything below it. The root is SIGSTOPped first so
 * it cannot fork between listing its children and killing them; children
 * must die too or they get orphaned (and, for postgres, keep shared memory
 * attached, which blocks a restart).
 */
export function killTree(pid: number): number[] {
  signal(pid, 'SIGSTOP')
  const kids = descendants(pid)
  signal(pid, 'SIGKILL')
  for (const k of kids) signal(k, 'SIGKILL')
  return kids
}

export async function waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (pids.some(isAlive)) {
    if (Date.now() > deadline) return false
    await sleep(10)
  }
  return true
}

/** Resolves when the child has exited (and has been reaped by Node). */
export function exitPromise(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.once('error', () => resolve())
  })
}

export function hasExited(child: ChildProcess | undefined): boolean {
  return !child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined
}

export async function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs)
  })
  const done = await Promise.race([exitPromise(child).then(() => true as const), timeout])
  clearTimeout(timer)
  return done
}

/** Last `lines` lines of a log file ('' if it does not exist). */
export function tailFile(file: string, lines = 30): string {
  try {
    const fd = fs.openSync(file, 'r')
    try {
      const size = fs.fstatSync(fd).size
      const len = Math.min(size, 16 * 1024)
      const buf = Buffer.alloc(len)
      fs.readSync(fd, buf, 0, len, size - len)
      return buf.toString('utf8').split('\n').slice(-lines - 1).join('\n').trimEnd()
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    return ''
  }
}

export function indent(text: string): string {
  return text ? text.replace(/^/gm, '    ') : '    (log empty)'
}

/** uid/gid to run postgres tools as when we are root (postgres refuses root). */
export function postgresOsUser(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid }
  } catch {
    // no such user
  }
  return undefined
}

export function isRoot(): boolean {
  return process.getuid?.() === 0
}

// ---------------------------------------------------------------------------
// Orphan protection: every started server registers here; on process exit
// (or a fatal signal) each one still running is SIGKILLed and its temp dir
// removed. Kept on globalThis so several copies of this module (vitest
// isolation) share one set of handlers.

export interface Tracked {
  /** Synchronous: SIGKILL whatever is still running. */
  killSync(): void
  /** Temp dir to remove after the kill. */
  dir?: string
}

interface Registry {
  items: Set<Tracked>
}

const KEY = Symbol.for('@ri/testing/registry')

function registry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>
  let reg = g[KEY]
  if (!reg) {
    const created: Registry = { items: new Set() }
    reg = created
    g[KEY] = created
    const cleanupAll = () => {
      for (const t of created.items) {
        try {
          t.killSync()
        } catch {
          // best effort: keep going with the others
        }
        if (t.dir) {
          try {
            fs.rmSync(t.dir, { recursive: true, force: true })
          } catch {
            // files may still be held by a dying process
          }
        }
      }
      created.items.clear()
    }
    process.on('exit', cleanupAll)
    // 'exit' does not run when a signal kills us: clean up, then re-raise
    // the signal when nobody else handles it so the default action happens.
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const onSignal = () => {
        cleanupAll()
        if (process.listenerCount(sig) === 1) {
          process.removeListener(sig, onSignal)
          process.kill(process.pid, sig)
        }
      }
      process.on(sig, onSignal)
    }
  }
  return reg
}

export function track(t: Tracked): () => void {
  const reg = registry()
  reg.items.add(t)
  return () => {
    reg.items.delete(t)
  }
}
