import type { IncomingMessage, ServerResponse } from 'node:http'
import { beginSend, endSend, type Exchange, type MaybePromise, type SendSnapshot } from '@ri/core'
import { handlerHeadersOf } from '@ri/core/node'

type Chunk = string | Uint8Array
type Callback = (error?: Error | null) => void

const toBuffer = (chunk: Chunk, encoding?: BufferEncoding): Buffer =>
  typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)

/**
 * Buffers what the handler writes (`res.write`/`res.end`, which `res.send`/`res.json` use), hands
 * the complete body to `transform` (the pipeline's onSend features), then writes the result with
 * a matching Content-Length. Installed only for requests that have an onSend feature.
 *
 * onSend contract (core): the features see the handler's status in `ex.status` and its headers in
 * `ex.responseHeaders`; what they leave there is written back, so a header a feature set or
 * changed in onSend (ETag, Cache-Control, X-Cache) wins over the handler's.
 */
export function captureBody(
  req: IncomingMessage,
  res: ServerResponse,
  ex: Exchange,
  transform: (body: Uint8Array) => MaybePromise<Uint8Array | string>,
  skip: () => boolean,
): void {
  const write = res.write
  const end = res.end
  const chunks: Buffer[] = []
  res.write = function capturedWrite(chunk: Chunk, encoding?: BufferEncoding | Callback, cb?: Callback): boolean {
    if (typeof encoding === 'function') {
      cb = encoding
      encoding = undefined
    }
    if (chunk !== undefined && chunk !== null) chunks.push(toBuffer(chunk, encoding as BufferEncoding | undefined))
    if (cb) process.nextTick(cb)
    return true
  } as ServerResponse['write']
  res.end = function capturedEnd(this: ServerResponse, chunk?: Chunk | Callback, encoding?: BufferEncoding | Callback, cb?: Callback) {
    if (typeof chunk === 'function') {
      cb = chunk
      chunk = undefined
    } else if (typeof encoding === 'function') {
      cb = encoding
      encoding = undefined
    }
    if (chunk !== undefined && chunk !== null) chunks.push(toBuffer(chunk as Chunk, encoding as BufferEncoding | undefined))
    res.write = write
    res.end = end
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
    const passThrough = skip() || res.headersSent
    let snapshot: SendSnapshot | undefined
    const flush = (out: Uint8Array | string) => {
      if (res.destroyed) return
      let payload: Uint8Array | string = out
      const changed = snapshot ? endSend(ex, snapshot) : undefined
      if (!res.headersSent) {
        if (changed) for (const name in changed) res.setHeader(name, changed[name]!)
        if (out !== body) {
          res.setHeader('content-length', Buffer.byteLength(out))
          // computed by Express on the body that was replaced
          if (changed?.etag === undefined) res.removeHeader('etag')
        } else if (!res.hasHeader('content-length') && !res.hasHeader('transfer-encoding')) {
          res.setHeader('content-length', body.byteLength)
        }
      } else if (out !== body) {
        payload = body // the head is out already: the original length is the only honest body
      }
      const rest = req.method === 'HEAD' ? undefined : payload
      ;(end as (this: ServerResponse, chunk?: Chunk, cb?: Callback) => ServerResponse).call(res, rest, cb)
    }
    let result: MaybePromise<Uint8Array | string> = body
    if (!passThrough) {
      snapshot = beginSend(ex, res.statusCode, handlerHeadersOf(res))
      try {
        result = transform(body)
      } catch {
        result = body
      }
    }
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      ;(result as Promise<Uint8Array | string>).then(flush, () => flush(body))
    } else {
      flush(result as Uint8Array | string)
    }
    return this
  } as ServerResponse['end']
}
