import { describe, expect, it } from 'vitest'
import { createRouter } from './router.js'

/** The router's matching rule as a regular expression (how it matched before its segment matcher). */
function reference(template: string, path: string): Record<string, string> | undefined {
  const names: string[] = []
  const pattern = template
    .split('/')
    .map((seg) => {
      if (seg === '*') {
        names.push('*')
        return '(.*)'
      }
      if (seg.startsWith(':')) {
        names.push(seg.slice(1))
        return '([^/]+)'
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    })
    .join('/')
  const found = new RegExp(`^${pattern}/?$`).exec(path)
  if (!found) return undefined
  const params: Record<string, string> = {}
  names.forEach((n, i) => {
    params[n] = decodeOrKeep(found[i + 1] ?? '')
  })
  return params
}

/** Param values are percent-decoded; one that is not valid percent-encoding stays as it came. */
function decodeOrKeep(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

// A small deterministic generator: the same cases on every run.
function random(seed: number): () => number {
  let s = seed
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff
    return s / 0x7fffffff
  }
}

describe('router templates', () => {
  it('matches exactly what the template regular expression matches', () => {
    const rnd = random(7)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
    const literals = ['a', 'users', 'b.c', 'x+y', '']
    const pieces = ['a', 'users', 'b.c', 'x+y', '1', '42', '', 'edit', 'a%20b', '%2F', '%zz', '100%', '%E2%82%AC']
    let matched = 0
    let compared = 0
    for (let t = 0; t < 300; t++) {
      const segs: string[] = []
      const count = 1 + Math.floor(rnd() * 4)
      let dynamic = false
      for (let i = 0; i < count; i++) {
        const kind = rnd()
        if (kind < 0.35) {
          segs.push(`:p${i}`)
          dynamic = true
        } else if (kind < 0.45) {
          segs.push('*')
          dynamic = true
        } else segs.push(pick(literals))
      }
      if (!dynamic) segs.push(':last')
      const template = `/${segs.join('/')}`
      const router = createRouter<number>().add('GET', template, 1)
      for (let p = 0; p < 40; p++) {
        const n = Math.floor(rnd() * 6)
        const parts: string[] = []
        for (let i = 0; i < n; i++) parts.push(pick(pieces))
        let path = `/${parts.join('/')}`
        if (rnd() < 0.2) path += '/'
        const want = reference(template, path)
        const got = router.match('GET', path)
        compared++
        if (want) matched++
        expect({ template, path, params: got ? { ...got.params } : undefined }).toEqual({ template, path, params: want })
      }
    }
    // The generator must produce both outcomes often enough to mean something.
    expect(matched).toBeGreaterThan(300)
    expect(compared - matched).toBeGreaterThan(3000)
  })

  it('handles the edges of the template language', () => {
    const r = createRouter<string>()
      .add('GET', '/users/:id', 'user')
      .add('GET', '/users/:id/edit', 'edit')
      .add('GET', '/files/*', 'files')
      .add('GET', '/a/*/b', 'middle star')
      .add('GET', '/v1.0/:x', 'dotted')
    expect(r.match('GET', '/users/42')?.params).toEqual({ id: '42' })
    expect(r.match('GET', '/users/42/')?.params).toEqual({ id: '42' })
    expect(r.match('GET', '/users/')).toBeUndefined()
    expect(r.match('GET', '/users//')).toBeUndefined()
    expect(r.match('GET', '/usersX/42')).toBeUndefined()
    expect(r.match('GET', '/users/42/edit')?.value).toBe('edit')
    expect(r.match('GET', '/users/42/editX')).toBeUndefined()
    expect(r.match('GET', '/files/')?.params).toEqual({ '*': '' })
    expect(r.match('GET', '/files/a/b/')?.params).toEqual({ '*': 'a/b/' })
    expect(r.match('GET', '/files')).toBeUndefined()
    expect(r.match('GET', '/a/x/y/b')?.params).toEqual({ '*': 'x/y' })
    expect(r.match('GET', '/v1.0/1')?.value).toBe('dotted')
    expect(r.match('GET', '/v1x0/1')).toBeUndefined()
    // Percent-encoding: decoded once; an encoded slash stays inside its segment; invalid is kept.
    expect(r.match('GET', '/users/a%2Fb')?.params).toEqual({ id: 'a/b' })
    expect(r.match('GET', '/users/%E2%82%AC%20x')?.params).toEqual({ id: '€ x' })
    expect(r.match('GET', '/users/%zz')?.params).toEqual({ id: '%zz' })
    expect(r.match('GET', '/users/%41/edit')?.params).toEqual({ id: 'A' })
    expect(r.match('GET', '/files/a%20b/c')?.params).toEqual({ '*': 'a b/c' })
  })
})
