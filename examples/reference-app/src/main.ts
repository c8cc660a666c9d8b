import { createApp } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const { server } = createApp()

server.listen(port, host, () => {
  const address = server.address()
  const actual = typeof address === 'object' && address ? address.port : port
  const url = `http://${host}:${actual}`
  console.log(`ri reference app listening on ${url}  (embedded defaults: no Redis or PostgreSQL needed)`)
  console.log('try:')
  console.log(`  curl -i ${url}/products/1`)
  console.log(`  curl -s '${url}/products?limit=5'`)
  console.log(`  curl -s -X POST ${url}/orders -H 'content-type: application/json' -d '{"productId":1,"quantity":2}'`)
  console.log(`  curl -i ${url}/analytics/revenue`)
})

const shutdown = () => {
  server.close(() => process.exit(0))
  server.closeIdleConnections()
  setTimeout(() => process.exit(0), 5_000).unref()
}
process.once('SIGTERM', shutdown)
process.once('SIGINT', shutdown)
