// The smoke suite every framework example runs: start it as a user would (PORT=0, no Redis),
// call a cached route, a throttled route, the health probes and /metrics, then stop it.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/** `root` is the example's folder (the one holding src/main.ts). */
export function describeExample(name: string, root: string): void {
  describe(`${name} example`, () => {
    let child: ChildProcess
    let url = ''

    beforeAll(async () => {
      child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: root, env: { ...process.env, PORT: '0', REDIS_URL: '' } /* embedded: no Redis */, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stderr!.on('data', (c: Buffer) => (out += c))
      url = await new Promise<string>((resolve, reject) => {
        child.stdout!.on('data', (c: Buffer) => {
          out += c
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
          if (m) resolve(m[1]!)
        })
        child.once('exit', (code) => reject(new Error(`exited (${code}): ${out}`)))
      })
    })

    afterAll(async () => {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      const [code] = await once(child, 'exit')
      expect(code).toBe(0) // graceful shutdown through @ri/health
    })

    it('caches a route and purges it on write', async () => {
      const first = await fetch(`${url}/products/1`)
      expect([first.status, first.headers.get('x-cache')]).toEqual([200, 'MISS'])
      expect(await first.json()).toMatchObject({ id: 1, priceCents: 100 })
      const second = await fetch(`${url}/products/1`)
      expect(second.headers.get('x-cache')).toBe('HIT')
      await second.arrayBuffer()
      const write = await fetch(`${url}/products/1/price`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"priceCents":150}' })
      expect(write.status).toBe(200)
      const after = await fetch(`${url}/products/1`)
      expect([after.headers.get('x-cache'), ((await after.json()) as { priceCents: number }).priceCents]).toEqual(['MISS', 150])
    })

    it('throttles a route: 429 with Retry-After after its limit', async () => {
      const statuses: number[] = []
      for (let i = 0; i < 3; i++) statuses.push((await fetch(`${url}/reports/daily`)).status)
      expect(statuses).toEqual([200, 200, 429])
      expect((await fetch(`${url}/products/2`)).status).toBe(200) // other routes unaffected
    })

    it('answers health probes and /metrics with route templates', async () => {
      expect((await fetch(`${url}/health`)).status).toBe(200)
      expect((await fetch(`${url}/health/ready`)).status).toBe(200)
      const text = await (await fetch(`${url}/metrics`)).text()
      expect(text).toContain('route="/products/:id"')
      expect(text).toMatch(/ri_throttle_decisions_total\{[^}]*result="limited"/)
      expect(text).toMatch(/ri_cache_requests_total\{[^}]*result="hit"\} [1-9]/)
    })

    it('is shown verbatim in docs/getting-started.md', () => {
      const doc = readFileSync(join(root, '../../docs/getting-started.md'), 'utf8')
      expect(doc).toContain(readFileSync(join(root, 'src/main.ts'), 'utf8').trimEnd())
    })
  })
}
