import { describe, expect, it } from 'vitest'
import { TAGS_DELETED, TAGS_EXPIRED, TAGS_FRESH, TagVersions } from './tags.js'

// Versions from Redis start at the server's TIME in microseconds (see l2/scripts.ts).
const BASE = 1_733_333_333_123_456

describe('TagVersions: a tag record lost in Redis', () => {
  it('a missing record (read as v = 0) marks the tag lost: its entries are deleted, writes observe nothing', () => {
    const tags = new TagVersions(10)
    tags.set('t', BASE + 1, BASE)
    expect(tags.check(['t'], [BASE + 1])).toBe(TAGS_FRESH)
    expect(tags.check(['t'], [BASE])).toBe(TAGS_EXPIRED)
    tags.set('t', 0, 0)
    expect(tags.check(['t'], [BASE + 1])).toBe(TAGS_DELETED)
    expect(tags.check(['t'], [0])).toBe(TAGS_DELETED)
    expect(tags.observe(['t'])).toBe('-1')
    // the record recreated (by a write) above every earlier version
    tags.set('t', BASE + 50, BASE + 50)
    expect(tags.check(['t'], [BASE + 50])).toBe(TAGS_FRESH)
    expect(tags.check(['t'], [BASE + 1])).toBe(TAGS_DELETED)
    expect(tags.observe(['t'])).toBe(String(BASE + 50))
  })

  it('bus versions never move backwards, except out of the lost state', () => {
    const tags = new TagVersions(10)
    tags.advance('t', BASE + 5, BASE)
    tags.advance('t', BASE + 3, BASE) // crossed messages
    expect(tags.get('t')).toMatchObject({ v: BASE + 5, d: BASE })
    tags.set('t', 0, 0)
    tags.advance('t', 0, 0) // never from a bus message; ignored
    expect(tags.check(['t'], [BASE + 5])).toBe(TAGS_DELETED)
    tags.advance('t', BASE + 100, BASE + 99)
    expect(tags.get('t')).toMatchObject({ v: BASE + 100, d: BASE + 99 })
    expect(tags.check(['t'], [BASE + 99])).toBe(TAGS_EXPIRED)
  })

  it('a pending local invalidation is kept when a read finds the record missing', () => {
    const tags = new TagVersions(10)
    tags.set('t', BASE, BASE)
    tags.bump('t', 'd', true)
    tags.set('t', 0, 0)
    tags.advance('t', BASE + 1, BASE + 1)
    expect(tags.get('t')).toMatchObject({ v: Number.MAX_SAFE_INTEGER, pending: true })
    tags.settle('t', BASE + 2, BASE + 2)
    expect(tags.check(['t'], [BASE + 2])).toBe(TAGS_FRESH)
  })
})
