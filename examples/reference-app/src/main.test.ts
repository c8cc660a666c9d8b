import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const here = dirname(fileURLToPath(import.meta.url))

describe('the main job as started by the README', () => {
  it('starts, prints its URL and curl lines, answers, and stops on SIGTERM', async () => {
    // cwd: the package, as `pnpm --filter reference-app start` runs it (tsx reads its tsconfig: decorators)
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'main.ts')], {
      cwd: join(here, '..'),
      env: { ...process.env, PORT: '0', REDIS_URL: '', REDIS_CLUSTER_NODES: '', DATABASE_URL: '', DATABASE_REPLICA_URLS: '', ORDERS_SEED: '2000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stderr.on('data', (chunk: Buffer) => (out += chunk))
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 60_000)
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk
        const m = /ri reference app listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
        if (m && out.includes('load test:')) {
          clearTimeout(timer)
          resolve(m[1]!)
        }
      })
      child.once('exit', (code) => reject(new Error(`exited early (${code}): ${out}`)))
    })
    expect(url).not.toMatch(/:0$/)
    expect(out).toContain(`curl -i ${url}/products/1`)
    expect(out).toContain('database: PGlite')
    const res = await fetch(`${url}/products/1`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ id: 1 })
    child.kill('SIGTERM')
    const [code] = await once(child, 'exit')
    expect(code).toBe(0)
  }, 90_000)
})
