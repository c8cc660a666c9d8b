// A small HTTP load balancer for running several reference-app instances on one machine (tests,
// the chaos and soak scripts, a local recipe). Not a production proxy: use nginx, HAProxy or your
// platform's balancer there. What it does is what those do by default and what the scaling tests
// rely on:
// - round robin over the upstreams that pass `GET /health/ready` (polled; a failing one is taken
//   out of rotation until it passes again; with none ready it tries them all rather than 503);
// - a request whose connection is refused is retried on the next upstream (nothing was sent), and
//   an idempotent one (GET/HEAD/OPTIONS/PUT/DELETE) also when its connection is reset or closed
//   before the response started (a restarting instance closing a keep-alive socket);
// - X-Forwarded-For gets the client's address appended (the app trusts a loopback proxy).
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'

export interface Upstream {
  readonly url: string
  /** In rotation: the last readiness poll passed (and no connection was refused since). */
  healthy: boolean
}

export interface LoadBalancerOptions {
  upstreams: readonly string[]
  /** Readiness poll interval (default 200 ms) and per-poll timeout (default 1 000 ms). */
  healthIntervalMs?: number
  healthTimeoutMs?: number
  /** Port on 127.0.0.1 (default 0: a free one). */
  port?: number
}

export interface LoadBalancerStats {
  requests: number
  /** Requests sent again to another upstream after a refused/reset connection. */
  retries: number
  /** Answered 502 by the balancer: every upstream refused or reset. */
  failed: number
  /** Times an upstream left the rotation. */
  removals: number
  /** Requests answered per upstream url. */
  perUpstream: Record<string, number>
}

export interface LoadBalancer {
  readonly url: string
  readonly upstreams: readonly Upstream[]
  readonly stats: LoadBalancerStats
  close(): Promise<void>
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])
const RETRYABLE_ANY = new Set(['ECONNREFUSED'])
const RETRYABLE_IDEMPOTENT = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET'])
// Hop-by-hop headers (RFC 9110 7.6.1) are not forwarded.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])

export async function startLoadBalancer(options: LoadBalancerOptions): Promise<LoadBalancer> {
  const upstreams: Upstream[] = options.upstreams.map((url) => ({ url, healthy: true }))
  const stats: LoadBalancerStats = { requests: 0, retries: 0, failed: 0, removals: 0, perUpstream: Object.create(null) }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
  const setHealthy = (u: Upstream, ok: boolean) => {
    if (u.healthy && !ok) stats.removals++
    u.healthy = ok
  }
  let next = 0

  /** Upstreams in the order this request tries them: healthy ones round robin, then the rest. */
  const order = (): Upstream[] => {
    const start = next++
    const rotated = upstreams.map((_, i) => upstreams[(start + i) % upstreams.length]!)
    return [...rotated.filter((u) => u.healthy), ...rotated.filter((u) => !u.healthy)]
  }

  const forward = (u: Upstream, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<'done' | { code: string }> =>
    new Promise((resolve) => {
      const target = new URL(req.url ?? '/', u.url)
      const headers: http.OutgoingHttpHeaders = {}
      for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k) && v !== undefined) headers[k] = v
      const client = req.socket.remoteAddress ?? ''
      headers['x-forwarded-for'] = req.headers['x-forwarded-for'] ? `${req.headers['x-forwarded-for']}, ${client}` : client
      headers['content-length'] = String(body.length)
      let started = false
      const up = http.request(target, { method: req.method, headers, agent }, (upRes) => {
        started = true
        stats.perUpstream[u.url] = (stats.perUpstream[u.url] ?? 0) + 1
        const out: http.OutgoingHttpHeaders = {}
        for (const [k, v] of Object.entries(upRes.headers)) if (!HOP.has(k) && v !== undefined) out[k] = v
        res.writeHead(upRes.statusCode ?? 502, out)
        upRes.pipe(res)
        upRes.on('end', () => resolve('done'))
        upRes.on('error', () => {
          res.destroy() // the response had started: the client sees a cut, not a wrong body
          resolve('done')
        })
      })
      up.on('error', (error: NodeJS.ErrnoException) => {
        if (started) return
        resolve({ code: error.code ?? (error.message === 'socket hang up' ? 'ECONNRESET' : 'EUNKNOWN') })
      })
      up.end(body)
    })

  const server = http.createServer(async (req, res) => {
    stats.requests++
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks)
    let last = 'no upstream'
    for (const u of order()) {
      const result = await forward(u, req, body, res)
      if (result === 'done') return
      last = result.code
      if (result.code === 'ECONNREFUSED') setHealthy(u, false)
      const retry = RETRYABLE_ANY.has(result.code) || (IDEMPOTENT.has(req.method ?? '') && RETRYABLE_IDEMPOTENT.has(result.code))
      if (!retry) break
      stats.retries++
    }
    stats.failed++
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' })
    res.end(`bad gateway: ${last}\n`)
  })
  server.keepAliveTimeout = 5_000

  const interval = options.healthIntervalMs ?? 200
  const timeout = options.healthTimeoutMs ?? 1_000
  const poll = (u: Upstream) =>
    new Promise<boolean>((resolve) => {
      const r = http.get(new URL('/health/ready', u.url), { timeout }, (res) => {
        res.resume()
        resolve(res.statusCode === 200)
      })
      r.on('timeout', () => r.destroy())
      r.on('error', () => resolve(false))
    })
  let polling = true
  const loop = async () => {
    while (polling) {
      await Promise.all(upstreams.map(async (u) => setHealthy(u, await poll(u))))
      await new Promise((r) => setTimeout(r, interval).unref())
    }
  }
  void loop()

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    upstreams,
    stats,
    async close() {
      polling = false
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      agent.destroy()
    },
  }
}

// CLI: pnpm --filter reference-app scale:lb [--port 8080] http://127.0.0.1:3001 http://127.0.0.1:3002 ...
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2)
  const p = args.indexOf('--port')
  const port = p >= 0 ? Number(args[p + 1]) : 8080
  const upstreams = args.filter((a) => /^https?:\/\//.test(a))
  if (upstreams.length === 0) {
    console.error('usage: scale:lb [--port 8080] http://127.0.0.1:3001 http://127.0.0.1:3002 ...')
    process.exit(2)
  }
  const lb = await startLoadBalancer({ upstreams, port })
  console.log(`load balancer on ${lb.url} -> ${upstreams.join(', ')}`)
  setInterval(() => {
    const out = lb.upstreams.filter((u) => !u.healthy).map((u) => u.url)
    if (out.length > 0) console.log(`out of rotation: ${out.join(', ')}`)
  }, 5_000).unref()
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void lb.close().then(() => process.exit(0)))
}
