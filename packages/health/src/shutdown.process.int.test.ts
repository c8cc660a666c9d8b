import { type ChildProcess, spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { get, sleep } from './test-helpers.js'
import { startLoad } from './test-load.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const packageDir = path.resolve(here, '..')
const children: ChildProcess[] = []
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

interface Fixture {
  child: ChildProcess
  port: number
  lines: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

async function startFixture(env: Record<string, string>): Promise<Fixture> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'shutdown-server.ts')], {
    cwd: packageDir,
    env: { ...process.env, ...env, KUBERNETES_SERVICE_HOST: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  const lines: string[] = []
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  )
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fixture did not start: ${stderr}`)), 20_000)
    let buf = ''
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString()
      let i: number
      while ((i = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        lines.push(line)
        if (line.startsWith('listening ')) {
          clearTimeout(timer)
          resolve(Number(line.slice('listening '.length)))
        }
      }
    })
    child.once('exit', (code) => reject(new Error(`fixture exited with ${code}: ${stderr}`)))
  })
  return { child, port, lines, exited }
}

describe('graceful shutdown (real process, real SIGTERM)', () => {
  it('drains under load with zero failed requests, runs hooks once in reverse order, exits 0', async () => {
    const fx = await startFixture({ DRAIN_MS: '600', TIMEOUT_MS: '5000' })
    const base = `http://127.0.0.1:${fx.port}`
    expect((await get(`${base}/health/ready`)).status).toBe(200)
    const load = startLoad(base, { keepAlive: 6, fresh: 3, workMs: 40 })
    await sleep(500)
    const slow = get(`${base}/work?ms=500`)
    await sleep(20)
    const sentAt = performance.now()
    fx.child.kill('SIGTERM')
    await sleep(50)
    fx.child.kill('SIGTERM') // a second signal must not run the hooks again
    const exit = await fx.exited
    load.stop()
    await load.done
    const slowRes = await slow

    expect(load.stats.errors).toEqual([])
    expect(load.stats.failed).toBe(0)
    expect(load.stats.ok).toBeGreaterThan(20)
    expect(slowRes.status).toBe(200)
    expect(exit).toMatchObject({ code: 0, signal: null })
    // Within the budget: drain delay (600 ms) + in-flight timeout (5 s); typically ~1.2 s.
    expect(exit.at - sentAt).toBeLessThan(5_600)
    expect(fx.lines.filter((l) => l.startsWith('hook '))).toEqual(['hook last-registered', 'hook first-registered'])
    expect(fx.lines.filter((l) => l.startsWith('state '))).toEqual(['state ready', 'state draining', 'state stopped'])
  })

  it('a hanging hook does not hold the exit past its timeout (exit 1)', async () => {
    const fx = await startFixture({ DRAIN_MS: '0', HANG_HOOK: '1', HOOK_TIMEOUT_MS: '300' })
    const sentAt = performance.now()
    fx.child.kill('SIGTERM')
    fx.child.kill('SIGTERM')
    const exit = await fx.exited
    expect(exit.code).toBe(1)
    expect(exit.at - sentAt).toBeLessThan(3_000)
    expect(exit.at - sentAt).toBeGreaterThanOrEqual(290)
    expect(fx.lines.filter((l) => l.startsWith('hook '))).toEqual(['hook last-registered', 'hook hangs', 'hook first-registered'])
  })
})
