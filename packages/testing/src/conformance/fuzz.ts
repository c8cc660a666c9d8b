import { describe, expect, it } from 'vitest'

/**
 * Seeded fuzz pass of the conformance suite: random and malicious request lines, headers, keys,
 * cookies, bodies and invalid UTF-8 on raw sockets (undici refuses to send most of it). What must
 * hold on every adapter: no 5xx caused by input, the server keeps answering, memory stays bounded.
 *
 * The seed is random per run and printed in every failure message; replay one with
 * `RI_FUZZ_SEED=<seed>` (and `RI_FUZZ_CASES=<n>` for a longer run, default 160; `RI_FUZZ_VERBOSE=1` prints the statuses).
 */

type RawRequest = (url: string, head: string | Buffer, timeoutMs?: number) => Promise<{ status: number; text: string }>

/** mulberry32: small, fast, good enough to pick inputs; the point is reproducibility, not quality. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Gen {
  int(max: number): number
  pick<T>(items: readonly T[]): T
  chance(p: number): boolean
}

function gen(seed: number): Gen {
  const next = prng(seed)
  return {
    int: (max) => Math.floor(next() * max),
    pick: (items) => items[Math.floor(next() * items.length)]!,
    chance: (p) => next() < p,
  }
}

// Routes of the conformance table that answer from input alone (/boom is a deliberate 500, /slow
// sleeps for a header-given time: both excluded).
const PATHS = ['/constant', '/users/', '/echo', '/guarded', '/bytes', '/', '/nope/']
const METHODS = ['GET', 'GET', 'GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'G3T', 'get', '\x00GET']
const HEADER_NAMES = [
  'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-real-ip', 'forwarded', 'cookie', 'accept', 'accept-encoding',
  'if-none-match', 'if-modified-since', 'cache-control', 'authorization', 'content-type', 'traceparent', 'tracestate',
  'x-block-route', 'x-block', 'user-agent', 'range', 'origin', 'x-\u00ff', 'bad header', '', ':path',
]

/** Bytes that break naive parsers: invalid UTF-8, overlongs, surrogates, controls, NUL. */
const NASTY: readonly Buffer[] = [
  Buffer.from([0xff, 0xfe]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xe0, 0xa4]),
  Buffer.from([0x00]), Buffer.from([0x01]), Buffer.from([0x7f]), Buffer.from([0x0d]), Buffer.from([0x80]),
  Buffer.from('%'), Buffer.from('%FF'), Buffer.from('%00'), Buffer.from('%C0%AF'), Buffer.from('%E0%A4%A'), Buffer.from('../'),
  Buffer.from('..%2F'), Buffer.from('__proto__'), Buffer.from('constructor'), Buffer.from('"'), Buffer.from("'"), Buffer.from('<script>'),
  Buffer.from('\u{1F600}'), Buffer.from(';'), Buffer.from(','), Buffer.from('='), Buffer.from(' '), Buffer.from('\t'),
]

function token(g: Gen, maxLen: number, nasty: readonly Buffer[] = NASTY): Buffer {
  const parts: Buffer[] = []
  const n = 1 + g.int(maxLen)
  for (let i = 0; i < n; i++) {
    parts.push(g.chance(0.25) ? g.pick(nasty) : Buffer.from(String.fromCharCode(0x21 + g.int(94))))
  }
  return Buffer.concat(parts)
}

// Well-formed HTTP carrying hostile content: what passes Node's parser and reaches the framework
// and the ri pipeline. Paths: only bytes legal in a request target (hostility percent-encoded);
// header values: visible ASCII plus obs-text (0x80-0xFF, invalid UTF-8 on its own).
const PATH_NASTY = ['%FF', '%00', '%C0%AF', '%E0%A4%A', '%', '%2F', '%2E%2E', '..', '__proto__', 'constructor', '%F0%9F%98%80', ';', ',', '=', '%0D%0A', '~', '%25'].map((s) => Buffer.from(s))
const VALUE_NASTY = [Buffer.from([0xff, 0xfe]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0x80]), Buffer.from('\t'), Buffer.from(' '), Buffer.from('__proto__'), Buffer.from('"'), Buffer.from(';'), Buffer.from(','), Buffer.from('=')]
const PATH_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&\'()*+,;=:@/'
const VALID_METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']
const VALID_NAMES = HEADER_NAMES.filter((n) => /^[a-z-]+$/.test(n))

function pathToken(g: Gen, maxLen: number): Buffer {
  const parts: Buffer[] = []
  const n = 1 + g.int(maxLen)
  for (let i = 0; i < n; i++) parts.push(g.chance(0.2) ? g.pick(PATH_NASTY) : Buffer.from(PATH_CHARS[g.int(PATH_CHARS.length)]!))
  return Buffer.concat(parts)
}

function headerValue(g: Gen, name: string, wellFormed: boolean): Buffer {
  switch (g.int(8)) {
    case 0: // oversized (cookies especially): under or over the server's header limit
      return Buffer.from(name === 'cookie' ? Array.from({ length: 20 + g.int(wellFormed ? 300 : 2000) }, (_, i) => `c${i}=${'v'.repeat(g.int(40))}`).join('; ') : 'a'.repeat(g.int(wellFormed ? 8 * 1024 : 96 * 1024)))
    case 1:
      return Buffer.from(Array.from({ length: 1 + g.int(50) }, () => `${g.int(300)}.${g.int(300)}.${g.int(300)}.${g.int(300)}`).join(', '))
    case 2:
      return Buffer.from(`00-${'z'.repeat(32)}-${'0'.repeat(16)}-01`)
    default:
      return wellFormed ? token(g, 64, VALUE_NASTY) : token(g, 64)
  }
}

/** One request: method, target and headers, a body that matches its declared framing. */
function fuzzRequest(g: Gen): Buffer {
  // Two thirds well-formed (reach routing, body parsing, the features), one third malformed.
  const wellFormed = g.chance(0.67)
  const method = wellFormed ? g.pick(VALID_METHODS) : g.pick(METHODS)
  let target = Buffer.concat([Buffer.from(g.pick(PATHS)), g.chance(0.7) ? (wellFormed ? pathToken(g, 40) : token(g, 40)) : Buffer.alloc(0)])
  if (g.chance(0.3)) target = Buffer.concat([target, Buffer.from('?'), wellFormed ? pathToken(g, 60) : token(g, 60)])
  if (g.chance(0.05)) target = Buffer.from(`/users/${'x'.repeat(10 * 1024 + g.int(20 * 1024))}`)
  if (g.chance(0.05)) target = Buffer.from(`http://evil.example${g.pick(PATHS)}`)
  const lines: Buffer[] = [Buffer.concat([Buffer.from(`${method} `), target, Buffer.from(wellFormed || g.chance(0.8) ? ' HTTP/1.1' : ' HTTP/9.9')])]
  lines.push(Buffer.from(wellFormed || g.chance(0.8) ? 'Host: fuzz' : 'Host: a, b'))
  const headers = g.int(8)
  for (let i = 0; i < headers; i++) {
    const name = wellFormed ? g.pick(VALID_NAMES) : g.pick(HEADER_NAMES)
    lines.push(Buffer.concat([Buffer.from(`${name}: `), headerValue(g, name, wellFormed)]))
  }
  let body: Buffer = Buffer.alloc(0)
  if (method === 'POST' || method === 'PUT' || method === 'PATCH' || g.chance(0.05)) {
    switch (g.int(7)) {
      case 0:
        body = Buffer.from('{"a":1,"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}')
        break
      case 1:
        body = Buffer.from(`${'['.repeat(2000 + g.int(3000))}${']'.repeat(2000)}`) // deep and unbalanced
        break
      case 2:
        body = Buffer.alloc(256 * 1024 + g.int(2 * 1024 * 1024), 0x61) // oversized
        break
      case 3:
        body = Buffer.from('{"ok":true}')
        break
      default:
        body = token(g, 400)
    }
    lines.push(Buffer.from(`Content-Type: ${g.pick(['application/json', 'application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-7'])}`))
    if (g.chance(0.2)) {
      // chunked framing, sometimes invalid (bad sizes) and sometimes with a conflicting Content-Length (smuggling)
      lines.push(Buffer.from('Transfer-Encoding: chunked'))
      if (!wellFormed && g.chance(0.3)) lines.push(Buffer.from(`Content-Length: ${body.length}`))
      const size = wellFormed || g.chance(0.5) ? body.length.toString(16) : 'zz'
      body = Buffer.concat([Buffer.from(`${size}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')])
    } else {
      lines.push(Buffer.from(`Content-Length: ${body.length}`))
    }
  }
  lines.push(Buffer.from('Connection: close'))
  return Buffer.concat([Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\r\n')])), Buffer.from('\r\n'), body])
}

const printable = (b: Buffer) => JSON.stringify(b.subarray(0, 200).toString('latin1'))

/** Registers the fuzz scenarios against the suite's plain server (`base()` is read once it is up). */
export function fuzzScenarios(base: () => string, rawRequest: RawRequest): void {
  describe('fuzz (seeded)', () => {
    const seed = Number(process.env.RI_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
    const cases = Number(process.env.RI_FUZZ_CASES ?? 160)

    it(`random and malicious requests: no 5xx, still serving, bounded memory (seed ${seed})`, async () => {
      const g = gen(seed)
      const heapBefore = process.memoryUsage().heapUsed
      const failures: string[] = []
      const byStatus: Record<number, number> = {}
      // In small parallel batches: enough to interleave parsers, not enough to time out on a busy box.
      for (let i = 0; i < cases; i += 8) {
        const batch = Array.from({ length: Math.min(8, cases - i) }, () => fuzzRequest(g))
        const results = await Promise.all(batch.map((head) => rawRequest(base(), head, 15_000).catch((e: Error) => ({ status: -1, text: e.message }))))
        results.forEach((r, j) => {
          byStatus[r.status] = (byStatus[r.status] ?? 0) + 1
          // 0 = the server closed the connection without an answer (Node's parser on garbage): fine.
          if (r.status >= 500 || r.status < 0) failures.push(`case ${i + j}: status ${r.status} for ${printable(batch[j]!)} -> ${JSON.stringify(r.text.slice(0, 200))}`)
        })
        const alive = await rawRequest(base(), 'GET /constant HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 15_000)
        expect(alive.status, `RI_FUZZ_SEED=${seed}: server stopped answering after case ${i + batch.length - 1}`).toBe(200)
      }
      expect(failures, `RI_FUZZ_SEED=${seed} reproduces:\n${failures.join('\n')}`).toEqual([])
      if (process.env.RI_FUZZ_VERBOSE) console.log(`fuzz seed ${seed}: statuses ${JSON.stringify(byStatus)}`)
      // Not only parser rejections: a good share of the cases must reach routing and the ri pipeline.
      const routed = Object.entries(byStatus).filter(([s]) => Number(s) >= 200 && Number(s) !== 400 && Number(s) !== 431).reduce((n, [, c]) => n + c, 0)
      expect(routed, `RI_FUZZ_SEED=${seed}: statuses ${JSON.stringify(byStatus)}`).toBeGreaterThan(cases / 5)
      // The servers run in this process: the heap must not keep what the fuzz sent (bodies up to ~2 MB each).
      ;(globalThis as { gc?: () => void }).gc?.()
      const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20
      expect(grownMb, `RI_FUZZ_SEED=${seed}: heap grew ${grownMb.toFixed(1)} MB`).toBeLessThan(128)
    }, 120_000)
  })
}
