import type { Exchange, ResponseHeaders } from './exchange.js'

/** What `beginSend` copied, to tell afterwards what the onSend features changed. */
export interface SendSnapshot {
  readonly copied: ResponseHeaders
}

/**
 * The core onSend contract: before `pipeline.send()`, the features see the handler's status in
 * `ex.status` and its headers in `ex.responseHeaders`.
 */
export function beginSend(ex: Exchange, status: number, handlerHeaders: ResponseHeaders): SendSnapshot {
  ex.status = status
  const rh = ex.responseHeaders
  for (const name in handlerHeaders) rh[name] = handlerHeaders[name]!
  return { copied: handlerHeaders }
}

/**
 * After `pipeline.send()`: handler headers the features left alone are dropped from the exchange
 * (they are on the response already; keeping them would duplicate Set-Cookie), and the ones they
 * changed (an ETag of the stored body ...) are returned to be written over the handler's. Headers
 * the features added stay in the exchange and are applied like any feature header.
 */
export function endSend(ex: Exchange, snapshot: SendSnapshot): ResponseHeaders | undefined {
  const rh = ex.responseHeaders
  let changed: ResponseHeaders | undefined
  for (const name in snapshot.copied) {
    const now = rh[name]
    if (now !== undefined && now !== snapshot.copied[name]) (changed ??= Object.create(null) as ResponseHeaders)[name] = now
    delete rh[name]
  }
  delete rh['content-length']
  delete rh['transfer-encoding']
  return changed
}
