import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Signed consistency tokens: `<payload>.<expires-at, unix seconds>.<HMAC-SHA256, base64url>`.
 * The payload is a session token from `db.sessionToken()` (a WAL position or a write time).
 */
export interface TokenSigner {
  sign(payload: string, nowMs?: number): string
  /** The payload when the signature matches one of the secrets and the token has not expired. */
  verify(token: string | undefined, nowMs?: number): string | undefined
}

const MAX_TOKEN_LENGTH = 256
const SIG_LENGTH = 43 // base64url of 32 bytes, unpadded

/**
 * @example
 * const signer = createTokenSigner(['new-secret', 'old-secret'], 30_000)
 * const cookie = signer.sign('0/16B3748')
 * signer.verify(cookie) // '0/16B3748'
 */
export function createTokenSigner(secrets: readonly (string | Uint8Array)[], maxAgeMs: number): TokenSigner {
  const keys = secrets.map((s) => (typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s)))
  const mac = (key: Buffer, data: string) => createHmac('sha256', key).update(data).digest()
  return {
    sign(payload, nowMs = Date.now()) {
      const body = `${payload}.${Math.ceil((nowMs + maxAgeMs) / 1000)}`
      return `${body}.${mac(keys[0]!, body).toString('base64url')}`
    },
    verify(token, nowMs = Date.now()) {
      if (!token || token.length > MAX_TOKEN_LENGTH) return undefined
      const sigAt = token.lastIndexOf('.')
      if (sigAt <= 0 || token.length - sigAt - 1 !== SIG_LENGTH) return undefined
      const body = token.slice(0, sigAt)
      // compared as text: base64 decoding ignores the last character's spare bits, the text does not
      const given = Buffer.from(token.slice(sigAt + 1), 'latin1')
      let ok = false
      // every key is tried (no early exit), each comparison constant-time
      for (const key of keys) if (timingSafeEqual(Buffer.from(mac(key, body).toString('base64url'), 'latin1'), given)) ok = true
      if (!ok) return undefined
      const expAt = body.lastIndexOf('.')
      if (expAt <= 0) return undefined
      const exp = Number(body.slice(expAt + 1))
      if (!Number.isSafeInteger(exp) || exp * 1000 < nowMs) return undefined
      return body.slice(0, expAt)
    },
  }
}

/** The value of cookie `name` in a `Cookie` request header, without allocating a parsed map. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  let from = 0
  while (from < header.length) {
    const start = header.indexOf(name, from)
    if (start === -1) return undefined
    const before = start === 0 ? 32 : header.charCodeAt(start - 1)
    const eq = start + name.length
    if ((before === 32 || before === 59) && header.charCodeAt(eq) === 61) {
      let end = header.indexOf(';', eq + 1)
      if (end === -1) end = header.length
      let value = header.slice(eq + 1, end).trim()
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
      return value
    }
    from = start + 1
  }
  return undefined
}
