import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { createPipeline, type Feature, type PipelineOptions } from '@ri/core'
import { createNodeHandler, type NodeRoute } from '@ri/core/node'

export interface TestServer {
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/** A real node:http server running `features` around `routes` on a random loopback port. */
export async function startServer(
  features: Feature[],
  routes: NodeRoute[],
  options: PipelineOptions & { wrap?: (handler: http.RequestListener) => http.RequestListener } = {},
): Promise<TestServer> {
  const { wrap, ...pipelineOptions } = options
  const handler = createNodeHandler(createPipeline(features, pipelineOptions), routes)
  const server = http.createServer(wrap ? wrap(handler) : handler)
  server.keepAliveTimeout = 1000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/**
 * Sends `total` GET requests for `path(i)` over `sockets` keep-alive connections with HTTP/1.1
 * pipelining (batches of `batch`), counting responses by their status line. Far faster than a
 * request-per-round-trip client, so 1e5 requests fit in a unit test.
 */
export async function blast(port: number, total: number, path: (i: number) => string, sockets = 4, batch = 200): Promise<number> {
  let next = 0
  let received = 0
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1')
      let inFlight = 0
      let carry = ''
      const send = () => {
        let chunk = ''
        while (inFlight < batch && next < total) {
          chunk += `GET ${path(next++)} HTTP/1.1\r\nhost: t\r\n\r\n`
          inFlight++
        }
        if (chunk) socket.write(chunk)
        else if (inFlight === 0) {
          socket.end()
          resolve()
        }
      }
      socket.setEncoding('latin1')
      socket.on('data', (data: string) => {
        const text = carry + data
        let at = text.indexOf('HTTP/1.1 ')
        let count = 0
        let last = -1
        while (at !== -1) {
          count++
          last = at
          at = text.indexOf('HTTP/1.1 ', at + 9)
        }
        carry = text.slice(last === -1 ? Math.max(0, text.length - 8) : Math.max(last + 9, text.length - 8))
        inFlight -= count
        received += count
        if (inFlight < batch / 2) send()
      })
      socket.on('error', reject)
      socket.on('connect', send)
    })
  await Promise.all(Array.from({ length: sockets }, one))
  return received
}

/** Lines of a Prometheus scrape that are samples of `name` (exact family member). */
export function samples(body: string, name: string): string[] {
  return body.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
}
