import { createOptionsChecker, type Duration, type Exchange, type Feature } from '@ri/core'
import type { ConsistencyState } from './router.js'
import { createTokenSigner, readCookie } from './token.js'

export interface DbFeatureOptions {
  /** HMAC-SHA256 key(s), at least 16 characters; the first signs, all verify (rotation). Required. */
  secret: string | Uint8Array | readonly (string | Uint8Array)[]
  /** Cookie carrying the signed position, `false` for none. Default `'ri_lsn'`. */
  cookie?: string | false
  /** Request/response header carrying the signed position (API clients), `false` for none. Default `false`. */
  header?: string | false
  /** How long a position is honoured (cookie Max-Age and token expiry). Default `'30s'`. */
  maxAge?: Duration
  /** Add `Secure` to the cookie. Default false. */
  secure?: boolean
  /** Cookie path. Default `'/'`. */
  path?: string
}

/** @internal What the router gives its feature. */
export interface DbFeatureHooks {
  enter(token: string | undefined): ConsistencyState
  token(state: ConsistencyState | undefined): string | undefined
}

const STATE_KEY = 'db'
const NAME_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/

/** @internal Built by `db.feature()`. */
export function createDbFeature(options: DbFeatureOptions, hooks: DbFeatureHooks): Feature {
  const check = createOptionsChecker('db.feature')
  check.known(options, ['secret', 'cookie', 'header', 'maxAge', 'secure', 'path'])
  const rawSecrets = options?.secret
  const secrets = (Array.isArray(rawSecrets) ? rawSecrets : [rawSecrets]) as unknown[]
  if (secrets.length === 0 || !secrets.every((s) => (typeof s === 'string' || s instanceof Uint8Array) && s.length >= 16)) {
    check.problem('secret', typeof rawSecrets === 'string' ? `(${rawSecrets.length} characters)` : rawSecrets, 'a secret of at least 16 characters/bytes, or an array of them')
  }
  const cookie = options?.cookie === false ? false : check.string('cookie', options?.cookie, 'ri_lsn', NAME_RE, 'a cookie name or false')
  const header = options?.header === false || options?.header === undefined ? false : check.string('header', options.header, '', NAME_RE, 'a header name or false').toLowerCase()
  const maxAgeMs = check.duration('maxAge', options?.maxAge, 30_000)
  const secure = check.boolean('secure', options?.secure, false)
  const path = check.string('path', options?.path, '/', /^\/[^;\r\n]*$/, "a path starting with '/'")
  if (cookie === false && header === false) check.problem('cookie', false, 'a cookie name or a header name (one carrier is needed)')
  check.done()

  const signer = createTokenSigner(secrets as (string | Uint8Array)[], maxAgeMs)
  const cookieSuffix = `; Max-Age=${Math.max(1, Math.floor(maxAgeMs / 1000))}; Path=${path}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`

  return {
    name: 'db',
    onRequest(ex: Exchange) {
      let raw = header !== false ? ex.header(header) : undefined
      if (raw === undefined && cookie !== false) raw = readCookie(ex.header('cookie'), cookie)
      ex.state[STATE_KEY] = hooks.enter(raw === undefined ? undefined : signer.verify(raw))
    },
    onHeaders(ex: Exchange) {
      const token = hooks.token(ex.state[STATE_KEY] as ConsistencyState | undefined)
      if (token === undefined) return
      const signed = signer.sign(token)
      if (cookie !== false) {
        const line = `${cookie}=${signed}${cookieSuffix}`
        const existing = ex.responseHeaders['set-cookie']
        ex.responseHeaders['set-cookie'] = existing === undefined ? [line] : Array.isArray(existing) ? [...existing, line] : [existing, line]
      }
      if (header !== false) ex.setHeader(header, signed)
    },
  }
}
