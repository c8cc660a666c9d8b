import { createHash } from 'node:crypto'
import { type Exchange, ipKey, ipVersion, normalizeIp } from '@ri/core'

/**
 * Who a limit counts: `'ip'` (client address, IPv6 grouped by /64), `'route'` (method and
 * route template), a function of the exchange (user id, API key ...), or a list of these
 * (composite key, e.g. `['ip', (ex) => ex.header('x-api-key')]`).
 *
 * A function returning `undefined`, `null` or `''` falls back to the client address, so an
 * anonymous caller is still limited.
 *
 * @example
 * key: ['ip', (ex) => ex.header('x-tenant')]
 */
export type KeyPart = 'ip' | 'route' | ((exchange: Exchange) => string | number | undefined | null)
export type KeySpec = KeyPart | readonly KeyPart[]

/** Compiled key function: exchange -> the client part of the storage key. */
export type KeyFn = (exchange: Exchange) => string

/**
 * A client key is used as-is when it is short and made of these characters only; anything
 * else (newlines, `*`, `?`, braces, very long values ...) is replaced by a hash. Braces matter:
 * in Redis Cluster `{...}` is a hash tag, so raw user input could pin every key to one slot.
 */
const SAFE_KEY_RE = /^[A-Za-z0-9._:/@+= -]{1,128}$/
/** Hashed keys start with `#`, a character raw keys never contain, so the two cannot collide. */
const HASH_MARK = '#'

export function hashKey(input: string): string {
  return HASH_MARK + createHash('sha256').update(input).digest('base64url').slice(0, 27)
}

/** Returns a storage-safe key for one raw client key. */
export function safeKey(raw: string, alwaysHash: boolean): string {
  if (!alwaysHash && SAFE_KEY_RE.test(raw)) return raw
  return hashKey(JSON.stringify([raw]))
}

/** Storage-safe key for several parts; parts never contain `;`, so joined raw keys are unambiguous. */
export function safeCompositeKey(parts: readonly string[], alwaysHash: boolean): string {
  if (!alwaysHash) {
    let ok = true
    for (const p of parts) {
      if (!SAFE_KEY_RE.test(p)) {
        ok = false
        break
      }
    }
    if (ok) {
      const joined = parts.join(';')
      if (joined.length <= 256) return joined
    }
  }
  return hashKey(JSON.stringify(parts))
}

export interface KeyContext {
  readonly ipv6Prefix: number
  readonly hashKeys: boolean
  /** Resolves the client address (core's resolver result, or a re-resolution with `trustProxy`). */
  readonly clientIp: (exchange: Exchange) => string
  /** Called when a key function throws: the request is keyed by ip instead. */
  readonly onKeyError: (error: unknown) => void
}

function ipPart(ctx: KeyContext): (ex: Exchange) => string {
  const opts = { ipv6Prefix: ctx.ipv6Prefix }
  const clientIp = ctx.clientIp
  // Normalised IPv4 never contains ':'; only IPv6 needs the prefix grouping.
  return (ex) => {
    const ip = clientIp(ex)
    return ip.indexOf(':') === -1 ? ip : ipKey(ip, opts)
  }
}

function routePart(ex: Exchange): string {
  return `${ex.method} ${ex.route ?? '(unmatched)'}`
}

/** Compiles a key spec once; `per: 'route'` appends the route so each route has its own bucket. */
export function compileKey(spec: KeySpec, perRoute: boolean, ctx: KeyContext): KeyFn {
  const list: readonly KeyPart[] = Array.isArray(spec) ? (spec as readonly KeyPart[]) : [spec as KeyPart]
  const parts = perRoute && !list.includes('route') ? [...list, 'route' as const] : list
  const ip = ipPart(ctx)
  const fns = parts.map((p): ((ex: Exchange) => string) => {
    if (p === 'ip') return ip
    if (p === 'route') return routePart
    const user = p
    return (ex) => {
      let v: ReturnType<typeof user>
      try {
        v = user(ex)
      } catch (error) {
        ctx.onKeyError(error)
        v = undefined
      }
      // Distinct prefixes: a caller cannot forge a value that lands in another client's ip bucket.
      return v === undefined || v === null || v === '' ? `ip=${ip(ex)}` : `u=${v}`
    }
  })
  const hash = ctx.hashKeys
  if (fns.length === 1) {
    const only = fns[0]!
    if (parts[0] === 'ip' && !hash) {
      // The common case: core's ip string is already canonical and safe; no regex, no hash.
      return (ex) => {
        const k = only(ex)
        return k.length <= 128 ? k : safeKey(k, false)
      }
    }
    return (ex) => safeKey(only(ex), hash)
  }
  return (ex) => {
    const values = new Array<string>(fns.length)
    for (let i = 0; i < fns.length; i++) values[i] = fns[i]!(ex)
    return safeCompositeKey(values, hash)
  }
}

/** Matches client addresses against IPs and CIDRs, using core's canonical forms. */
export interface IpMatcher {
  (ip: string): boolean
}

/** Compiles an allow/deny list; returns the entries it could not parse in `invalid`. */
export function compileIpList(entries: readonly string[]): { match: IpMatcher; invalid: string[] } {
  const exact = new Set<string>()
  const groups: Array<{ v: 4 | 6; prefix: number; nets: Set<string> }> = []
  const invalid: string[] = []
  for (const entry of entries) {
    if (typeof entry !== 'string') {
      invalid.push(String(entry))
      continue
    }
    const slash = entry.indexOf('/')
    if (slash === -1) {
      const ip = normalizeIp(entry)
      if (ip === undefined) invalid.push(entry)
      else exact.add(ip)
      continue
    }
    const base = entry.slice(0, slash)
    const bits = entry.slice(slash + 1)
    const v = ipVersion(base)
    const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : -1
    if (v === 0 || prefix < 0 || prefix > (v === 4 ? 32 : 128) || (v === 4 && base.includes(':'))) {
      invalid.push(entry)
      continue
    }
    const opts = v === 4 ? { ipv4Prefix: prefix } : { ipv6Prefix: prefix }
    let group = groups.find((g) => g.v === v && g.prefix === prefix)
    if (!group) groups.push((group = { v, prefix, nets: new Set() }))
    group.nets.add(ipKey(base, opts))
  }
  const compiled = groups.map((g) => ({ ...g, opts: g.v === 4 ? { ipv4Prefix: g.prefix } : { ipv6Prefix: g.prefix } }))
  const match: IpMatcher = (ip) => {
    if (exact.has(ip)) return true
    if (compiled.length === 0) return false
    const v = ip.indexOf(':') === -1 ? 4 : 6
    for (const g of compiled) if (g.v === v && g.nets.has(ipKey(ip, g.opts))) return true
    return false
  }
  return { match, invalid }
}

/** Characters allowed in the rule / policy segments of a storage key (no `:` so segments stay unambiguous). */
export function keySegment(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9._/-]+/g, '_').slice(0, 64)
  return `${clean}~${fnv1a(name)}`
}

/** 32-bit FNV-1a, base36: a short stable suffix that keeps sanitised names distinct. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0).toString(36)
}
