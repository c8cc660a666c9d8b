import { spawn } from 'node:child_process'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { noopLogger } from '@ri/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from './app.js'

const here = dirname(fileURLToPath(import.meta.url))

describe('reference app over real HTTP', () => {
  const { server } = createApp({ logger: noopLogger })
  let base = ''
  beforeAll(async () => {
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => {
    server.closeAllConnections()
    server.close()
  })

  it('serves products with a request id and Server-Timing', async () => {
    const res = await fetch(`${base}/products/7`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ id: 7, name: 'Product 7' })
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(res.headers.get('server-timing')).toMatch(/total;dur=/)
    expect((await fetch(`${base}/products/99999`)).status).toBe(404)
  })

  it('takes orders, validates input and aggregates them', async () => {
    const created = await fetch(`${base}/orders`, { method: 'POST', body: JSON.stringify({ productId: 1, quantity: 2 }) })
    expect(created.status).toBe(201)
    expect((await fetch(`${base}/orders`, { method: 'POST', body: '{oops' })).status).toBe(400)
    expect((await fetch(`${base}/orders`, { method: 'POST', body: '{"productId":0}' })).status).toBe(422)
    const revenue = await fetch(`${base}/analytics/revenue`)
    const { totals } = (await revenue.json()) as { totals: Record<string, { orders: number }> }
    expect(Object.values(totals).reduce((n, t) => n + t.orders, 0)).toBe(1)
    expect(revenue.headers.get('server-timing')).toMatch(/^aggregate;dur=[\d.]+, total;dur=/)
  })
})

describe('the main job as started by the README', () => {
  it('starts, prints its URL and curl lines, answers, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'main.ts')], {
      env: { ...process.env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 20_000)
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk
        const m = /listening on (http:\/\/\S+)/.exec(out)
        if (m && out.includes('curl')) {
          clearTimeout(timer)
          resolve(m[1]!)
        }
      })
      child.once('exit', (code) => reject(new Error(`exited early (${code}): ${out}`)))
    })
    expect(out).toContain(`curl -i ${url}/products/1`)
    const res = await fetch(`${url}/products/1`)
    expect(res.status).toBe(200)
    child.kill('SIGTERM')
    const [code] = await once(child, 'exit')
    expect(code).toBe(0)
  })
})
