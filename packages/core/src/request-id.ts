import type { HeaderValue } from './ip.js'

// Letters, digits and `._:-~`, starting with a letter or digit, at most 64 characters: safe in
// logs, headers and metric exemplars. Anything else (control characters, CR/LF header
// injection, quotes, overlong values, repeated headers) is replaced by a fresh id.
const SAFE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:~-]{0,63}$/

/** True when `value` is acceptable as an inbound request id. */
export function isSafeRequestId(value: unknown): value is string {
  return typeof value === 'string' && SAFE_ID_RE.test(value)
}

/** A new random request id (UUID v4). */
export function generateRequestId(): string {
  return globalThis.crypto.randomUUID()
}

/**
 * The inbound `x-request-id` when it is a short safe token, else a generated one.
 *
 * @example
 * resolveRequestId(req.headers['x-request-id']) // 'abc-123' or a fresh UUID
 */
export function resolveRequestId(inbound: HeaderValue): string {
  return isSafeRequestId(inbound) ? inbound : generateRequestId()
}
