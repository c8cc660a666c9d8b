import { createOptionsChecker } from './options.js'

/**
 * Client IP resolution and normalisation. Written without `node:net` so it runs on every
 * runtime Hono targets.
 */

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/
const HEXTET_RE = /^[0-9a-fA-F]{1,4}$/
const MAPPED_PREFIX = '::ffff:'

/** Parsed address: 4 bytes (IPv4) or 16 bytes (IPv6). */
interface ParsedIp {
  readonly v: 4 | 6
  readonly bytes: Uint8Array
}

function parseV4(s: string): Uint8Array | undefined {
  const m = IPV4_RE.exec(s)
  if (!m) return undefined
  return Uint8Array.of(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]))
}

function parseV6(input: string): Uint8Array | undefined {
  let s = input
  const zone = s.indexOf('%')
  if (zone !== -1) s = s.slice(0, zone)
  if (s.length < 2 || s.length > 45) return undefined
  const lastColon = s.lastIndexOf(':')
  if (s.indexOf('.', lastColon) !== -1) {
    // Embedded IPv4 (`::ffff:1.2.3.4`, `64:ff9b::1.2.3.4`): rewrite it as two hextets.
    const v4 = parseV4(s.slice(lastColon + 1))
    if (!v4) return undefined
    s = `${s.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`
  }
  const double = s.indexOf('::')
  if (double !== -1 && s.indexOf('::', double + 1) !== -1) return undefined
  const groups = (part: string): number[] | undefined => {
    if (part === '') return []
    const out: number[] = []
    for (const g of part.split(':')) {
      if (!HEXTET_RE.test(g)) return undefined
      out.push(Number.parseInt(g, 16))
    }
    return out
  }
  let hextets: number[] | undefined
  if (double === -1) {
    hextets = groups(s)
    if (!hextets || hextets.length !== 8) return undefined
  } else {
    const head = groups(s.slice(0, double))
    const tail = groups(s.slice(double + 2))
    if (!head || !tail) return undefined
    const fill = 8 - head.length - tail.length
    if (fill < 1) return undefined
    hextets = [...head, ...new Array<number>(fill).fill(0), ...tail]
  }
  const bytes = new Uint8Array(16)
  for (let i = 0; i < 8; i++) {
    bytes[i * 2] = hextets[i]! >> 8
    bytes[i * 2 + 1] = hextets[i]! & 0xff
  }
  return bytes
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false
  return b[10] === 0xff && b[11] === 0xff
}

/** Strips brackets and a port (`[::1]:80`, `1.2.3.4:80`) and parses; IPv4-mapped IPv6 becomes IPv4. */
function parseIp(raw: string): ParsedIp | undefined {
  let s = raw.trim()
  if (s.length === 0 || s.length > 64) return undefined
  if (s.startsWith('[')) {
    const end = s.indexOf(']')
    if (end === -1) return undefined
    const rest = s.slice(end + 1)
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined
    s = s.slice(1, end)
  } else if (s.indexOf(':') !== -1 && s.indexOf(':') === s.lastIndexOf(':') && s.indexOf('.') !== -1) {
    // `1.2.3.4:5678` (some proxies append the port)
    s = s.slice(0, s.indexOf(':'))
  }
  const v4 = parseV4(s)
  if (v4) return { v: 4, bytes: v4 }
  if (s.indexOf(':') === -1) return undefined
  const v6 = parseV6(s)
  if (!v6) return undefined
  if (isV4Mapped(v6)) return { v: 4, bytes: v6.slice(12) }
  return { v: 6, bytes: v6 }
}

function formatIp(ip: ParsedIp): string {
  const b = ip.bytes
  if (ip.v === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`
  const h: number[] = []
  for (let i = 0; i < 16; i += 2) h.push((b[i]! << 8) | b[i + 1]!)
  // RFC 5952: compress the longest run (>= 2) of zero hextets, the first one on a tie.
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (h[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && h[j] === 0) j++
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = h.map((x) => x.toString(16))
  if (bestStart === -1) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

/**
 * Canonical form of an IP address (RFC 5952 for IPv6, IPv4-mapped IPv6 as IPv4), or
 * `undefined` when `raw` is not an address. Accepts `[v6]:port` and `v4:port`.
 *
 * @example
 * normalizeIp('::ffff:10.0.0.1')        // '10.0.0.1'
 * normalizeIp('2001:DB8:0:0:0:0:0:1')   // '2001:db8::1'
 */
export function normalizeIp(raw: string | undefined | null): string | undefined {
  if (!raw) return undefined
  // Fast path for the common plain IPv4 and the dual-stack socket form `::ffff:a.b.c.d`.
  if (IPV4_RE.test(raw)) return raw
  if (raw.startsWith(MAPPED_PREFIX) && IPV4_RE.test(raw.slice(MAPPED_PREFIX.length))) return raw.slice(MAPPED_PREFIX.length)
  const ip = parseIp(raw)
  return ip && formatIp(ip)
}

/** 4 or 6 for a valid address, 0 otherwise. */
export function ipVersion(raw: string): 0 | 4 | 6 {
  return parseIp(raw)?.v ?? 0
}

function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = bytes.slice()
  for (let i = 0; i < out.length; i++) {
    const bits = prefix - i * 8
    if (bits >= 8) continue
    out[i] = bits <= 0 ? 0 : out[i]! & (0xff << (8 - bits))
  }
  return out
}

export interface IpKeyOptions {
  /** Prefix length IPv6 clients are grouped by. Default 64: one subscriber's whole subnet. */
  ipv6Prefix?: number
  /** Prefix length IPv4 clients are grouped by. Default 32 (each address). */
  ipv4Prefix?: number
}

/**
 * Key for per-client limits: IPv6 addresses grouped by prefix (default /64) so rotating
 * addresses inside one subnet share a key; IPv4 by address (or prefix).
 *
 * @example
 * ipKey('2001:db8:1:2:aaaa::1') // '2001:db8:1:2::/64'
 * ipKey('203.0.113.9')          // '203.0.113.9'
 */
export function ipKey(raw: string, options: IpKeyOptions = {}): string {
  const ip = parseIp(raw)
  if (!ip) return `invalid:${raw.slice(0, 64)}`
  const prefix = ip.v === 6 ? (options.ipv6Prefix ?? 64) : (options.ipv4Prefix ?? 32)
  const full = ip.v === 6 ? 128 : 32
  if (prefix >= full) return formatIp(ip)
  return `${formatIp({ v: ip.v, bytes: maskBytes(ip.bytes, prefix) })}/${prefix}`
}

interface Cidr {
  readonly v: 4 | 6
  readonly bytes: Uint8Array
  readonly prefix: number
}

const NAMED_RANGES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
})

function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/')
  const ip = parseIp(slash === -1 ? text : text.slice(0, slash))
  if (!ip) return undefined
  const full = ip.v === 4 ? 32 : 128
  let prefix = full
  if (slash !== -1) {
    const p = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p)) return undefined
    prefix = Number(p)
    // An IPv4-mapped IPv6 CIDR (`::ffff:10.0.0.0/104`) is converted to its IPv4 prefix.
    if (ip.v === 4 && text.slice(0, slash).includes(':')) prefix -= 96
    if (prefix < 0 || prefix > full) return undefined
  }
  return { v: ip.v, bytes: maskBytes(ip.bytes, prefix), prefix }
}

function cidrContains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.v !== ip.v) return false
  const masked = maskBytes(ip.bytes, cidr.prefix)
  for (let i = 0; i < masked.length; i++) if (masked[i] !== cidr.bytes[i]) return false
  return true
}

/**
 * Who may set the client address for us:
 * - `false` (default): nobody; the socket address is the client.
 * - `true`: every hop; the left-most forwarded address is the client (only behind a proxy
 *   that overwrites the header).
 * - a number `n`: the nearest `n` hops are proxies.
 * - CIDRs or names (`'loopback'`, `'linklocal'`, `'uniquelocal'`): hops whose address is inside.
 */
export type TrustProxy = boolean | number | string | readonly string[]

export interface IpResolverOptions {
  trustProxy?: TrustProxy
  /** Header trusted proxies use. Default `'x-forwarded-for'`; `'forwarded'` reads RFC 7239 `for=`. */
  header?: 'x-forwarded-for' | 'forwarded'
}

export type HeaderValue = string | readonly string[] | undefined

const kPeer: unique symbol = Symbol.for('ri.peerAddress') as never

/**
 * The peer address of a socket (`socket.remoteAddress`), remembered on the socket after the first
 * read: every request of a keep-alive connection reads a property instead of Node's getter (about
 * 80 ns, a call into libuv's getpeername the first time, then a walk through `_getpeername`).
 * Undefined for a missing socket or one that closed before its address was read.
 *
 * @example
 * pipeline.exchange({ method: req.method, url: req.url, headers: req.headers, remoteAddress: peerAddress(req.socket) })
 */
export function peerAddress(socket: { readonly remoteAddress?: string } | null | undefined): string | undefined {
  if (socket == null) return undefined
  const known = (socket as { [kPeer]?: string })[kPeer]
  if (known !== undefined) return known
  const address = socket.remoteAddress
  if (address !== undefined) {
    try {
      ;(socket as { [kPeer]?: string })[kPeer] = address
    } catch {
      // A frozen stand-in for a socket: read its address each time.
    }
  }
  return address
}

/** Resolves the client address of one request from its socket address and headers. */
export type IpResolver = (remoteAddress: string | undefined, headers: Readonly<Record<string, HeaderValue>>) => string

/**
 * Builds a client-IP resolver once, at construction; the returned function is the hot path.
 * Forwarding headers are read only when `trustProxy` says so, so a spoofed
 * `X-Forwarded-For` from a direct client is ignored.
 *
 * @example
 * const resolveIp = createIpResolver({ trustProxy: ['loopback', '10.0.0.0/8'] })
 * resolveIp(req.socket.remoteAddress, req.headers) // '203.0.113.7'
 */
export function createIpResolver(options: IpResolverOptions = {}): IpResolver {
  const check = createOptionsChecker('trustProxy')
  const trust = buildTrust(options.trustProxy ?? false, check)
  const header = check.oneOf('header', options.header, ['x-forwarded-for', 'forwarded'], 'x-forwarded-for')
  check.done()
  const unknown = 'unknown'
  if (trust === false) {
    // A keep-alive socket hands back the same address string for each of its requests.
    let lastRaw: string | undefined
    let lastIp = unknown
    return (remote) => {
      if (remote === lastRaw && remote !== undefined) return lastIp
      const ip = normalizeIp(remote) ?? unknown
      lastRaw = remote
      lastIp = ip
      return ip
    }
  }
  const readChain = header === 'forwarded' ? forwardedFor : xForwardedFor
  return (remote, headers) => {
    let addr = normalizeIp(remote)
    if (addr === undefined) return unknown
    if (!trust(addr, 0)) return addr
    const chain = readChain(headers[header])
    for (let i = chain.length - 1, hop = 1; i >= 0; i--, hop++) {
      const next = normalizeIp(chain[i])
      // A malformed hop ends the chain: the last address we could trust is the answer.
      if (next === undefined) return addr
      addr = next
      if (!trust(addr, hop)) return addr
    }
    return addr
  }
}

type TrustFn = (addr: string, hop: number) => boolean

function buildTrust(value: TrustProxy, check: ReturnType<typeof createOptionsChecker>): TrustFn | false {
  if (value === false || value === 0) return false
  if (value === true) return () => true
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      check.problem('hops', value, 'a non-negative integer hop count')
      return false
    }
    return (_addr, hop) => hop < value
  }
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value
  if (!Array.isArray(list)) {
    check.problem('', value, 'true, false, a hop count, or a list of CIDRs / loopback | linklocal | uniquelocal')
    return false
  }
  const ranges: Cidr[] = []
  for (const entry of list as readonly unknown[]) {
    if (typeof entry !== 'string') {
      check.problem('[]', entry, 'a CIDR string such as 10.0.0.0/8 or a name: loopback, linklocal, uniquelocal')
      continue
    }
    for (const text of NAMED_RANGES[entry] ?? [entry]) {
      const cidr = parseCidr(text)
      if (cidr) ranges.push(cidr)
      else check.problem('[]', entry, 'a CIDR string such as 10.0.0.0/8 or a name: loopback, linklocal, uniquelocal')
    }
  }
  return (addr) => {
    const ip = parseIp(addr)
    return ip !== undefined && ranges.some((r) => cidrContains(r, ip))
  }
}

function joinHeader(value: HeaderValue): string {
  if (value === undefined) return ''
  return typeof value === 'string' ? value : value.join(',')
}

function xForwardedFor(value: HeaderValue): string[] {
  const text = joinHeader(value)
  if (text === '') return []
  // Bounded: a hostile header with thousands of hops costs no more than 32 entries of work.
  return text.split(',', 64).slice(-32).map((s) => s.trim())
}

function forwardedFor(value: HeaderValue): string[] {
  const text = joinHeader(value)
  if (text === '') return []
  const out: string[] = []
  for (const element of text.split(',', 64).slice(-32)) {
    let found = ''
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=')
      if (eq === -1) continue
      if (pair.slice(0, eq).trim().toLowerCase() !== 'for') continue
      found = pair.slice(eq + 1).trim()
      if (found.startsWith('"') && found.endsWith('"') && found.length >= 2) found = found.slice(1, -1)
    }
    out.push(found)
  }
  return out
}
