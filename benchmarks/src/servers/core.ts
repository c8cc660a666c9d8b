import { createServer } from 'node:http'
import { createPipeline } from '@ri/core'
import { createNodeHandler } from '@ri/core/node'

// Both handlers serialise the same object per request: the comparison is the pipeline's cost,
// not JSON.stringify's.
export function bare() {
  return createServer((_req, res) => {
    res.setHeader('content-type', 'application/json; charset=utf-8')
    res.end(JSON.stringify({ id: 1, name: 'Ada' }))
  })
}

export function riPipeline() {
  return createServer(
    createNodeHandler(createPipeline([]), [{ method: 'GET', path: '/users/:id', handler: (_q, _s, ctx) => ctx.json(200, { id: 1, name: 'Ada' }) }]),
  )
}
