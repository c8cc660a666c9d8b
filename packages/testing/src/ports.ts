import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/** Resolves true when `port` can be bound on `host` right now. */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', () => resolve(false))
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

/**
 * Returns a port the OS considers free on `host` (listen on 0, read, close).
 * Another process can still grab it before the caller binds: servers that
 * use it must retry with a new port when they hit EADDRINUSE.
 */
export async function getFreePort(host = '127.0.0.1', attempts = 10): Promise<number> {
  let lastError: unknown
  for (let i = 0; i < attempts; i++) {
    try {
      return await new Promise<number>((resolve, reject) => {
        const srv = net.createServer()
        srv.unref()
        srv.once('error', reject)
        srv.listen({ port: 0, host, exclusive: true }, () => {
          const addr = srv.address()
          const port = typeof addr === 'object' && addr ? addr.port : 0
          srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))))
        })
      })
    } catch (err) {
      lastError = err
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    }
  }
  throw new Error(`getFreePort: no free port on ${host} after ${attempts} attempts`, { cause: lastError })
}

/** Polls until `port` is bindable again (e.g. after a kill), or throws after `timeoutMs`. */
export async function waitForPortFree(port: number, host = '127.0.0.1', timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await isPortFree(port, host))) {
    if (Date.now() > deadline) throw new Error(`port ${host}:${port} still in use after ${timeoutMs} ms`)
    await sleep(25)
  }
}
