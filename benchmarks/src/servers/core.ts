import { createServer } from 'node:http'
import { createPipeline } from '@ri/core'
import { createNodeHandler } from '@ri/core/node'

const body = JSON.stringify({ id: 1, name: 'Ada' })

export function bare() {
  return createServer((_req, res) => {
    res.setHeader('content-type', 'application/json; charset=utf-8')
    res.end(body)
  })
}

export function riPipeline() {
  return createServer(
    createNodeHandler(createPipeline([]), [{ method: 'GET', path: '/users/:id', handler: (_q, _s, ctx) => ctx.json(200, { id: 1, name: 'Ada' }) }]),
  )
}
