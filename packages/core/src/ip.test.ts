import { once } from 'node:events'
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { RiConfigError } from './errors.js'
import { createIpResolver, ipKey, ipVersion, normalizeIp, peerAddress } from './ip.js'

describe('normalizeIp', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:10.1.2.3', '10.1.2.3'],
    ['::ffff:a01:203', '10.1.2.3'],
    ['0:0:0:0:0:ffff:10.1.2.3', '10.1.2.3'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
    ['::1', '::1'],
    ['::', '::'],
    ['fe80::1%eth0', 'fe80::1'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['203.0.113.9:5678', '203.0.113.9'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['2001:db8:1:0:0:0:0:0', '2001:db8:1::'],
  ])('%s -> %s', (input, out) => {
    expect(normalizeIp(input)).toBe(out)
  })

  it.each(['', 'abc', '256.1.1.1', '1.2.3', '01.2.3.4', '1.2.3.4.5', '1:2:3:4:5:6:7:8:9', '1::2::3', ':::', 'gggg::1', '[::1', '1.2.3.4\r\nx'])(
    'rejects %j',
    (input) => {
      expect(normalizeIp(input)).toBeUndefined()
      expect(ipVersion(input)).toBe(0)
    },
  )
})

describe('ipKey', () => {
  it('groups IPv6 by /64 by default so rotation inside a subnet shares a key', () => {
    const a = ipKey('2001:db8:aaaa:bbbb:1:2:3:4')
    const b = ipKey('2001:db8:aaaa:bbbb:ffff:ffff:ffff:ffff')
    const c = ipKey('2001:db8:aaaa:bbbc::1')
    expect(a).toBe('2001:db8:aaaa:bbbb::/64')
    expect(b).toBe(a)
    expect(c).not.toBe(a)
  })

  it('keys IPv4 (and IPv4-mapped IPv6) per address by default', () => {
    expect(ipKey('198.51.100.7')).toBe('198.51.100.7')
    expect(ipKey('::ffff:198.51.100.7')).toBe('198.51.100.7')
    expect(ipKey('198.51.100.7', { ipv4Prefix: 24 })).toBe('198.51.100.0/24')
    expect(ipKey('2001:db8::1', { ipv6Prefix: 128 })).toBe('2001:db8::1')
    expect(ipKey('2001:db8:1234:5678::1', { ipv6Prefix: 48 })).toBe('2001:db8:1234::/48')
  })
})

describe('createIpResolver', () => {
  const spoofed = { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6' }

  it('uses the socket address and ignores spoofed headers by default', () => {
    const resolve = createIpResolver()
    expect(resolve('::ffff:203.0.113.5', spoofed)).toBe('203.0.113.5')
    expect(resolve('2001:db8::5', spoofed)).toBe('2001:db8::5')
    expect(resolve(undefined, spoofed)).toBe('unknown')
  })

  it('trustProxy: true takes the left-most forwarded address', () => {
    const resolve = createIpResolver({ trustProxy: true })
    expect(resolve('127.0.0.1', { 'x-forwarded-for': '198.51.100.1, 10.0.0.2' })).toBe('198.51.100.1')
    expect(resolve('127.0.0.1', {})).toBe('127.0.0.1')
  })

  it('hop count trusts exactly that many proxies', () => {
    const resolve = createIpResolver({ trustProxy: 1 })
    // The client forged 6.6.6.6; our one proxy appended the real address 198.51.100.1.
    expect(resolve('10.0.0.1', { 'x-forwarded-for': '6.6.6.6, 198.51.100.1' })).toBe('198.51.100.1')
    const two = createIpResolver({ trustProxy: 2 })
    expect(two('10.0.0.1', { 'x-forwarded-for': '6.6.6.6, 198.51.100.1, 10.0.0.9' })).toBe('198.51.100.1')
  })

  it('CIDR lists trust only proxies inside them', () => {
    const resolve = createIpResolver({ trustProxy: ['loopback', '10.0.0.0/8'] })
    expect(resolve('127.0.0.1', { 'x-forwarded-for': '6.6.6.6, 198.51.100.1, 10.1.1.1' })).toBe('198.51.100.1')
    // A direct client outside the trusted ranges cannot spoof.
    expect(resolve('198.51.100.99', spoofed)).toBe('198.51.100.99')
    // IPv4-mapped socket address counts as the IPv4 loopback.
    expect(resolve('::ffff:127.0.0.1', { 'x-forwarded-for': '2001:db8::7' })).toBe('2001:db8::7')
    expect(resolve('::1', { 'x-forwarded-for': '[2001:db8::8]:1234' })).toBe('2001:db8::8')
  })

  it('a malformed hop ends the chain at the last trusted address', () => {
    const resolve = createIpResolver({ trustProxy: true })
    expect(resolve('127.0.0.1', { 'x-forwarded-for': 'not-an-ip' })).toBe('127.0.0.1')
    expect(resolve('127.0.0.1', { 'x-forwarded-for': '198.51.100.1, garbage, 10.0.0.1' })).toBe('10.0.0.1')
  })

  it('joins repeated headers and bounds hostile chains', () => {
    const resolve = createIpResolver({ trustProxy: true })
    expect(resolve('127.0.0.1', { 'x-forwarded-for': ['198.51.100.1', '10.0.0.1'] })).toBe('198.51.100.1')
    const huge = Array.from({ length: 10_000 }, (_, i) => `10.0.${(i >> 8) & 255}.${i & 255}`).join(',')
    expect(normalizeIp(resolve('127.0.0.1', { 'x-forwarded-for': huge }))).toBeDefined()
  })

  it('reads RFC 7239 Forwarded when asked to', () => {
    const resolve = createIpResolver({ trustProxy: 'loopback', header: 'forwarded' })
    expect(resolve('127.0.0.1', { forwarded: 'for=192.0.2.60;proto=http;by=203.0.113.43' })).toBe('192.0.2.60')
    expect(resolve('127.0.0.1', { forwarded: 'for="[2001:db8:cafe::17]:4711"' })).toBe('2001:db8:cafe::17')
    expect(resolve('127.0.0.1', { forwarded: 'for=unknown' })).toBe('127.0.0.1')
    expect(resolve('127.0.0.1', { 'x-forwarded-for': '6.6.6.6' })).toBe('127.0.0.1')
  })

  it('rejects invalid trustProxy values at construction', () => {
    expect(() => createIpResolver({ trustProxy: ['10.0.0.0/33'] })).toThrow(RiConfigError)
    expect(() => createIpResolver({ trustProxy: ['not a cidr'] })).toThrow(/loopback, linklocal, uniquelocal/)
    expect(() => createIpResolver({ trustProxy: -1 })).toThrow(RiConfigError)
    expect(() => createIpResolver({ header: 'x-real-ip' as never })).toThrow(/'x-forwarded-for', 'forwarded'/)
  })
})

describe('peerAddress', () => {
  it("reads a real socket's address once, keeps it after the socket closed, and tells sockets apart", async () => {
    const accepted: net.Socket[] = []
    const server = net.createServer((s) => accepted.push(s))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as net.AddressInfo
    try {
      const a = net.connect(port, '127.0.0.1')
      const b = net.connect(port, '127.0.0.1')
      await Promise.all([once(a, 'connect'), once(b, 'connect')])
      await expect.poll(() => accepted.length).toBe(2)
      const [sa, sb] = accepted as [net.Socket, net.Socket]
      expect(peerAddress(sa)).toBe('127.0.0.1')
      expect(peerAddress(sb)).toBe('127.0.0.1')
      // The client side sees the server's address: a cache keyed on the socket, not shared.
      expect(peerAddress(a)).toBe('127.0.0.1')
      expect(a.remotePort).toBe(port)
      // Remembered on the socket: later requests of the connection read it from there, also after it closed.
      expect(Object.getOwnPropertySymbols(sa).map(String)).toContain('Symbol(ri.peerAddress)')
      sa.destroy()
      await once(sa, 'close')
      expect(peerAddress(sa)).toBe('127.0.0.1')
      a.destroy()
      b.destroy()
    } finally {
      for (const s of accepted) s.destroy()
      server.close()
    }
  })

  it('a socket that closed before anyone read it gives undefined, and nothing is remembered', async () => {
    const accepted: net.Socket[] = []
    const server = net.createServer((s) => accepted.push(s))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
      await once(c, 'connect')
      await expect.poll(() => accepted.length).toBe(1)
      const s = accepted[0]!
      s.destroy()
      await once(s, 'close')
      expect(peerAddress(s)).toBeUndefined()
      expect(Object.getOwnPropertySymbols(s).map(String)).not.toContain('Symbol(ri.peerAddress)')
      c.destroy()
    } finally {
      server.close()
    }
  })

  it('takes missing and frozen stand-ins', () => {
    expect(peerAddress(undefined)).toBeUndefined()
    expect(peerAddress(null)).toBeUndefined()
    expect(peerAddress({})).toBeUndefined()
    const frozen = Object.freeze({ remoteAddress: '203.0.113.7' })
    expect(peerAddress(frozen)).toBe('203.0.113.7')
    expect(peerAddress(frozen)).toBe('203.0.113.7')
  })
})
