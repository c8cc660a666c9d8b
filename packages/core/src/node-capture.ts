import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Exchange } from './exchange.js'
import type { MaybePromise } from './pipeline.js'
import { beginSend, endSend, type SendSnapshot } from './send-contract.js'

type Chunk = string | Uint8Array
type Callback = (error?: Error | null) => void

const toBuffer = (chunk: Chunk, encoding?: BufferEncoding): Buffer =>
  typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)

/** The headers a handler set on a node response, as the exchange's header map (numbers as strings). */
function headersOf(res: ServerResponse): Record<string, string | string[]> {
  const headers = res.getHeaders()
  const out: Record<string, string | string[]> = Object.create(null)
  for (const name in headers) {
    const v = headers[name]
    if (v !== undefined) out[name] = typeof v === 'number' ? String(v) : (v as string | string[])
  }
  return out
}

/**
 * Moves the headers given to `res.writeHead(status, [reason], headers)` onto the response
 * (`setHeader`), so code that runs before the head goes out sees them: writers such as Fastify
 * pass every header to `writeHead` instead of setting them one by one.
 *
 * @example
 * const status = adoptWriteHeadArgs(res, args) // then call the original writeHead(status)
 */
export function adoptWriteHeadArgs(res: ServerResponse, args: readonly unknown[]): number {
  const status = typeof args[0] === 'number' ? args[0] : res.statusCode
  const headers = (typeof args[1] === 'string' ? args[2] : args[1]) as OutgoingHttpHeaders | readonly unknown[] | undefined
  if (typeof args[1] === 'string') res.statusMessage = args[1]
  if (Array.isArray(headers)) {
    // raw [name, value, name, value ...] form
    for (let i = 0; i + 1 < headers.length; i += 2) res.appendHeader(String(headers[i]), headers[i + 1] as string)
  } else if (headers && typeof headers === 'object') {
    for (const name in headers as OutgoingHttpHeaders) {
      const v = (headers as OutgoingHttpHeaders)[name]
      if (v !== undefined) res.setHeader(name, v)
    }
  }
  res.statusCode = status
  return status
}

/**
 * Buffers what the handler writes (`res.writeHead`/`res.write`/`res.end`, which Express's
 * `res.send` and Fastify's reply use), hands the complete body to `transform` (the onSend
 * features), then writes the result with a matching Content-Length. Install it only for requests
 * that have an onSend feature. The head is held back as well, so writers that send it before the
 * body (Fastify) can still be cached.
 *
 * onSend contract: the features see the handler's status in `ex.status` and its headers in
 * `ex.responseHeaders`; what they leave there is written back, so a header a feature set or
 * changed in onSend (ETag, Cache-Control, X-Cache) wins over the handler's.
 *
 * @example
 * captureBody(req, res, ex, (body) => pipeline.send(ex, body), () => answered)
 */
export function captureBody(
  req: IncomingMessage,
  res: ServerResponse,
  ex: Exchange,
  transform: (body: Uint8Array) => MaybePromise<Uint8Array | string>,
  skip: () => boolean,
): void {
  const writeHead = res.writeHead
  const write = res.write
  const end = res.end
  const chunks: Buffer[] = []
  let holding = true
  const capturedWriteHead = function capturedWriteHead(this: ServerResponse, ...args: unknown[]) {
    // once the body is flushed, a layer installed on top of this one (route onHeaders) may still call in
    if (!holding) return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args)
    adoptWriteHeadArgs(res, args) // written with the body, after onSend
    return this
  } as ServerResponse['writeHead']
  res.writeHead = capturedWriteHead
  res.write = function capturedWrite(chunk: Chunk, encoding?: BufferEncoding | Callback, cb?: Callback): boolean {
    if (typeof encoding === 'function') {
      cb = encoding
      encoding = undefined
    }
    if (chunk !== undefined && chunk !== null) chunks.push(toBuffer(chunk, (encoding ?? undefined) as BufferEncoding | undefined))
    if (cb) process.nextTick(cb)
    return true
  } as ServerResponse['write']
  res.end = function capturedEnd(this: ServerResponse, chunk?: Chunk | Callback | null, encoding?: BufferEncoding | Callback | null, cb?: Callback | null) {
    if (typeof chunk === 'function') {
      cb = chunk
      chunk = undefined
    } else if (typeof encoding === 'function') {
      cb = encoding
      encoding = undefined
    }
    if (chunk !== undefined && chunk !== null) chunks.push(toBuffer(chunk as Chunk, (encoding ?? undefined) as BufferEncoding | undefined))
    holding = false
    if (res.writeHead === capturedWriteHead) res.writeHead = writeHead
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
          // computed by the framework on the body that was replaced
          if (changed?.etag === undefined) res.removeHeader('etag')
        } else if (!res.hasHeader('content-length') && !res.hasHeader('transfer-encoding')) {
          res.setHeader('content-length', body.byteLength)
        }
      } else if (out !== body) {
        payload = body // the head is out already: the original length is the only honest body
      }
      const rest = req.method === 'HEAD' ? undefined : payload
      ;(end as (this: ServerResponse, chunk?: Chunk, cb?: Callback) => ServerResponse).call(res, rest as Chunk, (cb ?? undefined) as Callback | undefined)
    }
    let result: MaybePromise<Uint8Array | string> = body
    if (!passThrough) {
      snapshot = beginSend(ex, res.statusCode, headersOf(res))
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
