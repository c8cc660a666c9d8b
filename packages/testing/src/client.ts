import { request } from 'node:http'

/**
 * A client that goes away mid-body: requests `url` and destroys the connection once the first
 * chunk of the response body arrived. Resolves then; rejects when no body came within `timeoutMs`.
 *
 * @example
 * await leaveMidBody(`${base}/stream`) // the server's response now finishes as aborted
 */
export function leaveMidBody(url: string, timeoutMs = 5000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = request(url, (res) => {
      res.once('data', () => {
        req.destroy()
        resolve()
      })
    })
    req.on('error', () => {}) // the destroy above, or a server that hung up
    req.setTimeout(timeoutMs, () => {
      req.destroy()
      reject(new Error(`${url}: no body within ${timeoutMs} ms`))
    })
    req.end()
  })
}
