// Cost of the core pipeline itself on a bare node:http server: the floor every feature adds to.
import { once } from 'node:events'
import { createServer, type RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createPipeline } from '@ri/core'
import { createNodeHandler } from '@ri/core/node'
import { autocannonRun } from './http.js'
import type { BenchFile } from './types.js'

async function measure(name: string, listener: RequestListener, seconds: number) {
  const server = createServer(listener)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/users/1`
  try {
    return { name, ...(await autocannonRun(url, seconds)) }
  } finally {
    server.closeAllConnections()
    server.close()
  }
}

const bench: BenchFile = async ({ quick, progress }) => {
  const seconds = quick ? 3 : 10
  const body = JSON.stringify({ id: 1, name: 'Ada' })
  progress('bare node:http')
  const bare = await measure(
    'bare node:http',
    (_req, res) => {
      res.setHeader('content-type', 'application/json; charset=utf-8')
      res.end(body)
    },
    seconds,
  )
  progress('ri core pipeline (no features)')
  const pipeline = createPipeline([])
  const ri = await measure(
    'ri core pipeline (node binding, no features)',
    createNodeHandler(pipeline, [{ method: 'GET', path: '/users/:id', handler: (_q, _s, ctx) => ctx.json(200, { id: 1, name: 'Ada' }) }]),
    seconds,
  )
  const r = ri.opsPerSec! / bare.opsPerSec!
  return [
    {
      id: 'core.pipeline-overhead',
      title: 'Core pipeline on node:http (routing, exchange, request id, finish event)',
      baseline: 'bare node:http',
      subjects: [bare, ri],
      target: { text: 'keeps at least 85 % of bare node:http req/s', met: r >= 0.85 },
    },
  ]
}
export default bench
