import { describe, expect, it } from 'vitest'
import { compileIpList, keySegment, safeCompositeKey, safeKey } from './keys.js'
import { parseRoutePattern } from './routes.js'
import { serviceLimitItem, sfString } from './headers.js'

describe('keys', () => {
  it('keeps short safe keys and hashes anything else', () => {
    expect(safeKey('203.0.113.7', false)).toBe('203.0.113.7')
    for (const hostile of ['a'.repeat(200), 'x\ny', '*', '{tag}', 'a;b', 'ü']) {
      const k = safeKey(hostile, false)
      expect(k).toMatch(/^#[A-Za-z0-9_-]{27}$/)
    }
    expect(safeKey('alice', true)).toMatch(/^#/)
    expect(safeCompositeKey(['a', 'b'], false)).toBe('a;b')
    expect(safeCompositeKey(['a;b'], false)).not.toBe(safeCompositeKey(['a', 'b'], false))
  })
  it('sanitises rule and policy segments without colons, keeping distinct names distinct', () => {
    expect(keySegment('GET /products/:id')).toMatch(/^GET_\/products\/_id~[0-9a-z]+$/)
    expect(keySegment('GET /a:b')).not.toBe(keySegment('GET /a_b'))
  })
  it('matches IPs and CIDRs (v4 and v6) and reports bad entries', () => {
    const { match, invalid } = compileIpList(['10.0.0.0/8', '2001:db8::/32', '192.0.2.1', 'nope', '1.2.3.4/40'])
    expect(invalid).toEqual(['nope', '1.2.3.4/40'])
    expect(match('10.200.1.1')).toBe(true)
    expect(match('11.0.0.1')).toBe(false)
    expect(match('2001:db8:5::1')).toBe(true)
    expect(match('2001:db9::1')).toBe(false)
    expect(match('192.0.2.1')).toBe(true)
  })
})

describe('route patterns', () => {
  it('parses methods, templates and wildcards', () => {
    expect(parseRoutePattern('GET /a/:id')).toMatchObject({ path: '/a/:id' })
    expect(typeof parseRoutePattern('GET a')).toBe('string')
    expect(typeof parseRoutePattern('G-T /a')).toBe('string')
  })
})

describe('IETF header syntax', () => {
  it('writes structured-field strings and integer parameters', () => {
    expect(sfString('a"b\\c\n')).toBe('"a\\"b\\\\c_"')
    expect(serviceLimitItem('"p"', -3, 1001)).toBe('"p";r=0;t=2')
  })
})
