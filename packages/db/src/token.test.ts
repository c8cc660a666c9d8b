import { describe, expect, it } from 'vitest'
import { createTokenSigner, readCookie } from './token.js'

describe('consistency token signing', () => {
  const signer = createTokenSigner(['a-secret-of-sufficient-length'], 30_000)

  it('round-trips a payload', () => {
    const t = signer.sign('0/16B3748', 1_000_000)
    expect(signer.verify(t, 1_000_000)).toBe('0/16B3748')
    expect(signer.verify(signer.sign('t1700000000000', 0), 0)).toBe('t1700000000000')
  })

  it('ignores tampered, truncated, foreign and expired tokens', () => {
    const t = signer.sign('0/16B3748', 1_000_000)
    expect(signer.verify(t.replace('0/16B3748', 'FF/FFFFFFFF'), 1_000_000)).toBeUndefined()
    const [payload, exp, sig] = t.split('.')
    expect(signer.verify(`${payload}.${Number(exp) + 1000}.${sig}`, 1_000_000)).toBeUndefined()
    expect(signer.verify(`${t.slice(0, -1)}${t.endsWith('A') ? 'B' : 'A'}`, 1_000_000)).toBeUndefined()
    expect(signer.verify(t.slice(0, -3), 1_000_000)).toBeUndefined()
    expect(createTokenSigner(['another-secret-entirely'], 30_000).verify(t, 1_000_000)).toBeUndefined()
    expect(signer.verify(t, 1_000_000 + 31_000)).toBeUndefined()
    for (const junk of [undefined, '', '.', '..', 'x'.repeat(1000), 'a.b.c']) expect(signer.verify(junk)).toBeUndefined()
  })

  it('verifies with any of several secrets and signs with the first (rotation)', () => {
    const old = createTokenSigner(['old-secret-old-secret'], 30_000)
    const rotated = createTokenSigner(['new-secret-new-secret', 'old-secret-old-secret'], 30_000)
    expect(rotated.verify(old.sign('0/1'))).toBe('0/1')
    expect(old.verify(rotated.sign('0/1'))).toBeUndefined()
  })
})

describe('readCookie', () => {
  it('finds a cookie by exact name', () => {
    expect(readCookie('a=1; ri_lsn=abc.1.x; b=2', 'ri_lsn')).toBe('abc.1.x')
    expect(readCookie('ri_lsn=v', 'ri_lsn')).toBe('v')
    expect(readCookie('xri_lsn=no; ri_lsn="yes"', 'ri_lsn')).toBe('yes')
    expect(readCookie('ri_lsnx=no', 'ri_lsn')).toBeUndefined()
    expect(readCookie(undefined, 'ri_lsn')).toBeUndefined()
  })
})
