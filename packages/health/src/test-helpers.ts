// Test helpers (not exported from the package): a real node:http server and a tiny client.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createPipeline } from '@ri/core'
import { createNodeHandler, type NodeRoute } from '@ri/core/node'
import type { Health } from './health.js'

export interface TestServer {
  readonly server: http.Server
  readonly port: number
  readonly url: string
  close(): Promise<void>
}

/** Starts a node:http server on 127.0.0.1 with the health feature mounted and `routes`. */
export async function startServer(health: Health, routes: NodeRoute[] = [], attach = true): Promise<TestServer> {
  const pipeline = createPipeline([health.feature()], { events: health.events })
  const server = http.createServer({ keepAliveTimeout: 30_000 }, createNodeHandler(pipeline, routes))
  if (attach) health.attach(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export interface Reply {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  json<T = any>(): T
}

/** One request; `agent` false opens a new connection. */
export function get(url: string, options: { agent?: http.Agent | false; method?: string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', agent: options.agent ?? false, headers: options.headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) }))
      res.on('error', reject)
    })
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error('client timeout')))
    req.on('error', reject)
    req.end()
  })
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
