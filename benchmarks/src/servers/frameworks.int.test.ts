import { afterAll, describe, expect, it } from 'vitest'
import { type ChildServer, serveInChild } from '../http.js'

// The hand-rolled subjects of http-frameworks.bench.ts stand for "the same per-request work
// without a library": they must answer with the same body and the same rate-limit headers as
// ri's full stack, or the comparison measures different work.
const started: ChildServer[] = []
afterAll(() => Promise.all(started.map((s) => s.close())))

async function get(module: string, name: string) {
  const server = await serveInChild(module, name)
  started.push(server)
  const first = await fetch(`${server.url}/users/1`)
  await first.arrayBuffer()
  const res = await fetch(`${server.url}/users/1`)
  return { status: res.status, body: await res.text(), policy: res.headers.get('ratelimit-policy'), limit: res.headers.get('ratelimit') }
}

describe.each(['express', 'fastify', 'hono', 'nest'])('%s hand-rolled subject', (fw) => {
  it("sends the body and RateLimit headers ri's full stack sends", async () => {
    const [ri, hand] = await Promise.all([get('frameworks', `${fw}Ri`), get('frameworks', `${fw}HandRolled`)])
    expect(ri.status).toBe(200)
    expect(hand).toEqual(ri)
    // The second request of each server: one counted before it, so both report the same quota left.
    expect(hand.limit).toBe('"1000000000-per-1m";r=999999998;t=60')
    expect(hand.policy).toBe('"1000000000-per-1m";q=1000000000;w=60')
  })
})
