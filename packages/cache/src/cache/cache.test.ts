import { CacheLoaderTimeoutError, createEvents, RiClosedError, RiConfigError } from '@ri/core'
import { describe, expect, it } from 'vitest'
import { createCache } from '../index.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('createCache (L1 only)', () => {
  it('gets, sets, deletes and reports has()', async () => {
    const cache = createCache()
    expect(await cache.get('a')).toBeUndefined()
    await cache.set('a', { n: 1 })
    expect(await cache.get('a')).toEqual({ n: 1 })
    expect(await cache.has('a')).toBe(true)
    expect(await cache.delete('a')).toBe(true)
    expect(await cache.get('a')).toBeUndefined()
    await cache.close()
  })

  it('returns the same object on an L1 hit (never re-parsed)', async () => {
    const cache = createCache()
    const value = { big: [1, 2, 3] }
    await cache.set('k', value)
    expect(await cache.get('k')).toBe(value)
    expect(await cache.getOrSet('k', () => ({ other: true }))).toBe(value)
  })

  it('expires after ttl', async () => {
    const cache = createCache({ ttl: 30 })
    await cache.set('k', 1)
    expect(await cache.get('k')).toBe(1)
    await sleep(40)
    expect(await cache.get('k')).toBeUndefined()
  })

  it('single-flights concurrent getOrSet misses into one loader call', async () => {
    const cache = createCache()
    let calls = 0
    const loader = async () => {
      calls++
      await sleep(20)
      return 'v'
    }
    const results = await Promise.all(Array.from({ length: 100 }, () => cache.getOrSet('k', loader)))
    expect(results.every((r) => r === 'v')).toBe(true)
    expect(calls).toBe(1)
    expect(await cache.getOrSet('k', loader)).toBe('v')
    expect(calls).toBe(1)
  })

  it('propagates loader errors to every waiter and does not cache them', async () => {
    const cache = createCache()
    let calls = 0
    const failing = async () => {
      calls++
      await sleep(5)
      throw new Error('boom')
    }
    const settled = await Promise.allSettled([cache.getOrSet('k', failing), cache.getOrSet('k', failing)])
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected'])
    expect(calls).toBe(1)
    expect(await cache.getOrSet('k', () => 'ok')).toBe('ok')
  })

  it('caches null/undefined with negativeTtl, and not at all with negativeTtl 0', async () => {
    const cache = createCache({ negativeTtl: 30 })
    let calls = 0
    const load = () => {
      calls++
      return null
    }
    expect(await cache.getOrSet('n', load)).toBeNull()
    expect(await cache.getOrSet('n', load)).toBeNull()
    expect(calls).toBe(1)
    await sleep(40)
    await cache.getOrSet('n', load)
    expect(calls).toBe(2)

    const none = createCache({ negativeTtl: 0 })
    let c2 = 0
    await none.getOrSet('n', () => (c2++, undefined))
    await none.getOrSet('n', () => (c2++, undefined))
    expect(c2).toBe(2)
  })

  it('lets the loader skip caching, set ttl and set tags', async () => {
    const cache = createCache()
    let calls = 0
    await cache.getOrSet('s', (ctx) => {
      calls++
      ctx.skip()
      return 1
    })
    await cache.getOrSet('s', () => (calls++, 1))
    expect(calls).toBe(2)

    await cache.getOrSet('t', (ctx) => {
      ctx.setTtl(20)
      return 1
    })
    expect(await cache.get('t')).toBe(1)
    await sleep(30)
    expect(await cache.get('t')).toBeUndefined()

    await cache.getOrSet('g', (ctx) => {
      ctx.setTags(['adaptive'])
      return 1
    })
    await cache.invalidateTags(['adaptive'])
    expect(await cache.get('g')).toBeUndefined()
  })

  it('invalidates by tag in O(tags): expire keeps a stale fallback, delete does not', async () => {
    const cache = createCache({ grace: '1m' })
    await cache.set('a', 'A', { tags: ['x'] })
    await cache.set('b', 'B', { tags: ['x', 'y'] })
    await cache.set('c', 'C', { tags: ['y'] })
    await cache.invalidateTags(['x'])
    expect(await cache.get('a')).toBeUndefined()
    expect(await cache.get('b')).toBeUndefined()
    expect(await cache.get('c')).toBe('C')
    // expired by tag: a failing loader falls back to the stale value
    expect(await cache.getOrSet('a', () => Promise.reject(new Error('db down')))).toBe('A')
    // the fresh value replaces it
    await cache.set('a', 'A2', { tags: ['x'] })
    expect(await cache.get('a')).toBe('A2')

    await cache.invalidateTags(['y'], { mode: 'delete' })
    await expect(cache.getOrSet('c', () => Promise.reject(new Error('db down')))).rejects.toThrow('db down')
  })

  it('does not store a value loaded across an invalidation as fresh', async () => {
    const cache = createCache({ grace: '1m' })
    let release!: () => void
    const p = cache.getOrSet('k', () => new Promise<string>((r) => (release = () => r('old'))), { tags: ['t'] })
    await sleep(5)
    await cache.invalidateTags(['t'])
    release()
    expect(await p).toBe('old')
    expect(await cache.get('k')).toBeUndefined()
  })

  it('serves stale on loader failure (fail-safe) and backs off before retrying', async () => {
    const cache = createCache({ grace: '1m', graceBackoff: 50 })
    await cache.set('k', 'v1', { ttl: 20 })
    await sleep(25)
    let calls = 0
    const failing = () => {
      calls++
      throw new Error('down')
    }
    expect(await cache.getOrSet('k', failing)).toBe('v1')
    expect(await cache.getOrSet('k', failing)).toBe('v1')
    expect(calls).toBe(1) // backoff: the stale value is served without calling the loader again
    await sleep(60)
    expect(await cache.getOrSet('k', failing)).toBe('v1')
    expect(calls).toBe(2)
    expect(cache.stats().stale).toBeGreaterThanOrEqual(2)
  })

  it('staleWhileRevalidate returns stale at once and refreshes once in the background', async () => {
    const cache = createCache({ grace: '1m', staleWhileRevalidate: true })
    await cache.set('k', 'old', { ttl: 20 })
    await sleep(25)
    let calls = 0
    const loader = async () => {
      calls++
      await sleep(30)
      return 'new'
    }
    const results = await Promise.all([cache.getOrSet('k', loader), cache.getOrSet('k', loader), cache.getOrSet('k', loader)])
    expect(results).toEqual(['old', 'old', 'old'])
    await sleep(50)
    expect(calls).toBe(1)
    expect(await cache.get('k')).toBe('new')
  })

  it('soft timeout serves stale and keeps loading; hard timeout throws CacheLoaderTimeoutError', async () => {
    const cache = createCache({ grace: '1m' })
    await cache.set('k', 'old', { ttl: 20 })
    await sleep(25)
    const slow = async () => {
      await sleep(60)
      return 'new'
    }
    const t0 = Date.now()
    expect(await cache.getOrSet('k', slow, { timeouts: { soft: 10 } })).toBe('old')
    expect(Date.now() - t0).toBeLessThan(50)
    await sleep(80)
    expect(await cache.get('k')).toBe('new')

    const err = await cache.getOrSet('none', slow, { timeouts: { hard: 15 } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CacheLoaderTimeoutError)
    expect((err as CacheLoaderTimeoutError).code).toBe('RI_CACHE_LOADER_TIMEOUT')
    // hard timeout with a stale value: fail-safe
    await cache.set('h', 'stale', { ttl: 10 })
    await sleep(15)
    expect(await cache.getOrSet('h', slow, { timeouts: { hard: 15 } })).toBe('stale')
  })

  it('aborts the loader signal on hard timeout', async () => {
    const cache = createCache()
    let aborted = false
    await cache
      .getOrSet(
        'k',
        (ctx) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener('abort', () => {
              aborted = true
              resolve(1)
            })
          }),
        { timeouts: { hard: 10 } },
      )
      .catch(() => {})
    expect(aborted).toBe(true)
  })

  it('refreshes eagerly after a fraction of the ttl', async () => {
    const cache = createCache({ ttl: 100, eagerRefresh: 0.2 })
    let n = 0
    const loader = () => ++n
    expect(await cache.getOrSet('k', loader)).toBe(1)
    await sleep(30)
    expect(await cache.getOrSet('k', loader)).toBe(1) // still fresh, triggers background refresh
    await sleep(5)
    expect(await cache.getOrSet('k', loader)).toBe(2)
  })

  it('applies jitter below the ttl', async () => {
    const cache = createCache({ ttl: 1000, jitter: 0.5 })
    await cache.set('k', 1)
    const info = await cache.getEntry('k')
    expect(info!.freshUntil - info!.createdAt).toBeLessThanOrEqual(1000)
    expect(info!.freshUntil - info!.createdAt).toBeGreaterThanOrEqual(500)
  })

  it('namespaces are isolated; clear() drops one namespace only', async () => {
    const cache = createCache()
    const users = cache.namespace('users')
    const posts = cache.namespace('posts', { ttl: '1h' })
    expect(cache.namespace('users')).toBe(users)
    expect(users.name).toBe('users')
    expect(users.namespace('admins').name).toBe('users:admins')
    await cache.set('k', 'root')
    await users.set('k', 'user')
    await posts.set('k', 'post')
    expect(await users.get('k')).toBe('user')
    await users.clear()
    expect(await users.get('k')).toBeUndefined()
    expect(await posts.get('k')).toBe('post')
    expect(await cache.get('k')).toBe('root')
    // tags are shared across namespaces
    await posts.set('t', 1, { tags: ['shared'] })
    await cache.invalidateTags(['shared'])
    expect(await posts.get('t')).toBeUndefined()
  })

  it('getMany / setMany / deleteMany / getOrSetMany (loader sees only the missing keys once)', async () => {
    const cache = createCache()
    await cache.setMany([
      { key: 'a', value: 1 },
      { key: 'b', value: 2, tags: ['t'] },
    ])
    expect(await cache.getMany(['a', 'b', 'c'])).toEqual([1, 2, undefined])
    const seen: string[][] = []
    const values = await cache.getOrSetMany(['a', 'c', 'd'], (missing) => {
      seen.push(missing)
      return missing.map((k) => k.toUpperCase())
    })
    expect(values).toEqual([1, 'C', 'D'])
    expect(seen).toEqual([['c', 'd']])
    const fromMap = await cache.getOrSetMany(['c', 'e'], (missing) => new Map(missing.map((k) => [k, `m${k}`])))
    expect(fromMap).toEqual(['C', 'me'])
    expect(await cache.deleteMany(['a', 'c'])).toBe(2)
    expect(await cache.getMany(['a', 'b', 'c'])).toEqual([undefined, 2, undefined])
  })

  it('getOrSetMany single-flight: overlapping concurrent calls load each key once (L1 only)', async () => {
    const cache = createCache()
    const batches: string[][] = []
    let open!: () => void
    const gate = new Promise<void>((r) => (open = r))
    const loader = async (missing: readonly string[]) => {
      batches.push([...missing])
      await gate
      return missing.map((k) => k.toUpperCase())
    }
    let singles = 0
    const p1 = cache.getOrSetMany(['a', 'b'], loader)
    const p2 = cache.getOrSetMany(['b', 'c', 'c'], loader)
    // getOrSet registers its flight at once; the batches register theirs after their L1/L2
    // read, so they find 'c' in flight and share it
    const p3 = cache.getOrSet('c', async () => {
      singles++
      await gate
      return 'c1'
    })
    const p4 = Array.from({ length: 20 }, () => cache.getOrSetMany(['a', 'b', 'c'], loader))
    // a getOrSet started first is shared by a later batch too
    let openD!: () => void
    const p5 = cache.getOrSet('d', async () => {
      singles++
      await new Promise<void>((r) => (openD = r))
      return 'D'
    })
    await Promise.resolve()
    const p6 = cache.getOrSetMany(['d', 'e'], loader)
    open()
    await new Promise((r) => setTimeout(r, 0))
    openD()
    expect(await p1).toEqual(['A', 'B'])
    expect(await p2).toEqual(['B', 'c1', 'c1'])
    expect(await p3).toBe('c1')
    for (const r of await Promise.all(p4)) expect(r).toEqual(['A', 'B', 'c1'])
    expect(await p5).toBe('D')
    expect(await p6).toEqual(['D', 'E'])
    expect(batches).toEqual([['a', 'b'], ['e']])
    expect(singles).toBe(2)
    // a batch that registers first is shared by a later getOrSet
    const q1 = cache.getOrSetMany(['x', 'y'], loader)
    await new Promise((r) => setTimeout(r, 0))
    expect(await Promise.all([cache.getOrSet('y', () => 'never'), q1])).toEqual(['Y', ['X', 'Y']])
    expect(batches).toEqual([['a', 'b'], ['e'], ['x', 'y']])
    expect(cache.stats().inflight).toBe(0)
  })

  it('publishes events only to listeners, with frozen hit payloads', async () => {
    const events = createEvents()
    const cache = createCache({ events })
    const seen: string[] = []
    events.on('cache.get', (e) => seen.push(`${e.tier}:${e.result}`))
    events.on('cache.loader', (e) => seen.push(`loader:${e.outcome}`))
    events.on('cache.invalidate', (e) => seen.push(`inv:${e.tags.join(',')}`))
    await cache.getOrSet('k', () => 1)
    await cache.getOrSet('k', () => 1)
    await cache.invalidateTags(['a'])
    expect(seen).toEqual(['none:miss', 'loader:ok', 'l1:hit', 'inv:a'])
    expect(cache.events).toBe(events)
  })

  it('hit events follow listeners subscribed and removed after the first read', async () => {
    const events = createEvents()
    const cache = createCache({ events })
    await cache.set('k', 1)
    expect(await cache.get('k')).toBe(1)
    const seen: string[] = []
    const off = events.on('cache.get', (e) => seen.push(`${e.tier}:${e.result}`))
    expect(await cache.get('k')).toBe(1)
    expect(await cache.getOrSet('k', () => 2)).toBe(1)
    off()
    expect(await cache.get('k')).toBe(1)
    events.on('cache.get', (e) => seen.push(`again:${e.result}`))
    expect(await cache.get('nope')).toBeUndefined()
    expect(seen).toEqual(['l1:hit', 'l1:hit', 'again:miss'])
  })

  it('stats() snapshots counters', async () => {
    const cache = createCache()
    await cache.getOrSet('k', () => 1)
    await cache.get('k')
    await cache.get('nope')
    const s = cache.stats()
    expect(s.l1).toMatchObject({ entries: 1, hits: 1 })
    expect(s.loads).toBe(1)
    expect(s.misses).toBe(2)
    expect(s.l2.circuit).toBe('none')
  })

  it('validates options at construction, naming every bad option', () => {
    const err = (() => {
      try {
        createCache({ ttl: '5 minutes' as never, l1: { max: -1 }, jitter: 2, lock: true, tll: 1 } as never)
      } catch (e) {
        return e
      }
    })() as RiConfigError
    expect(err).toBeInstanceOf(RiConfigError)
    const options = err.problems.map((p) => p.option)
    expect(options).toEqual(expect.arrayContaining(['createCache.ttl', 'createCache.l1.max', 'createCache.jitter', 'createCache.lock', 'createCache.tll']))
    expect(err.message).toContain("did you mean 'ttl'")
    expect(() => createCache().namespace('bad name')).toThrow(RiConfigError)
  })

  it('rejects use after close()', async () => {
    const cache = createCache()
    await cache.set('k', 1)
    await cache.close()
    await expect(cache.get('k')).rejects.toBeInstanceOf(RiClosedError)
    await expect(cache.getOrSet('k', () => 1)).rejects.toBeInstanceOf(RiClosedError)
  })

  it('respects the entry bound under 1e6 distinct keys, and a byte budget', async () => {
    const cache = createCache({ l1: { max: 5_000 } })
    for (let i = 0; i < 1_000_000; i++) void cache.set(`k${i}`, i)
    await sleep(0)
    expect(cache.stats().l1.entries).toBe(5_000)
    expect(await cache.get('k999999')).toBe(999_999)
    expect(await cache.get('k0')).toBeUndefined()

    const sized = createCache({ l1: { max: 1_000_000, maxSize: 10_000, sizeCalculation: (v) => String(v).length } })
    for (let i = 0; i < 10_000; i++) await sized.set(`k${i}`, 'x'.repeat(100))
    expect(sized.stats().l1.size).toBeLessThanOrEqual(10_000)
    expect(sized.stats().l1.entries).toBe(100)
  }, 30_000)
})
