import { describe, expect, it } from 'vitest'
import { applyFeatureHeaders, findHeader, isHeaderRecord, joinFeatureHeaders, mergeFeatureHeaders, sameHeaderName } from './head.js'

const holder = (set: Record<string, unknown> = {}) => ({
  getHeader: (n: string) => set[n],
})

describe('mergeFeatureHeaders', () => {
  it("keeps the handler's values (any case), adds the rest, leaves the input untouched", () => {
    const record = { 'Content-Type': 'application/json', 'X-Dup': 'handler' }
    const merged = mergeFeatureHeaders(record, { 'content-type': 'text/plain', 'x-dup': 'feature', 'x-extra': 'f' }, holder())
    expect(merged).toEqual({ 'Content-Type': 'application/json', 'X-Dup': 'handler', 'x-extra': 'f' })
    expect(record).toEqual({ 'Content-Type': 'application/json', 'X-Dup': 'handler' })
  })

  it('finds the handler header in lower case, in mixed case, and among mixed-case neighbours', () => {
    const features = { 'content-type': 'text/plain', 'x-request-id': 'f', 'x-new': 'n' }
    expect(mergeFeatureHeaders({ 'content-type': 'json', 'x-request-id': 'h' }, features, holder())).toEqual({ 'content-type': 'json', 'x-request-id': 'h', 'x-new': 'n' })
    expect(mergeFeatureHeaders({ 'X-Other': 'a', 'content-type': 'json', 'X-REQUEST-ID': 'h' }, features, holder())).toEqual({
      'X-Other': 'a',
      'content-type': 'json',
      'X-REQUEST-ID': 'h',
      'x-new': 'n',
    })
    // inherited names are not the handler's headers
    expect(mergeFeatureHeaders(Object.create({ 'x-new': 'proto' }) as Record<string, unknown>, { 'x-new': 'n' }, holder())).toEqual({ 'x-new': 'n' })
  })

  it('does not override a header already set on the response', () => {
    expect(mergeFeatureHeaders({}, { 'x-a': 'feature' }, holder({ 'x-a': 'set' }))).toEqual({})
  })

  it('appends Set-Cookie to the record, or to what the response already carries', () => {
    expect(mergeFeatureHeaders({ 'Set-Cookie': 'h=1' }, { 'set-cookie': ['f=2', 'g=3'] }, holder())).toEqual({ 'Set-Cookie': ['h=1', 'f=2', 'g=3'] })
    expect(mergeFeatureHeaders({}, { 'set-cookie': 'f=2' }, holder({ 'set-cookie': ['s=0'] }))).toEqual({ 'set-cookie': ['s=0', 'f=2'] })
    expect(mergeFeatureHeaders({}, { 'set-cookie': 'f=2' }, holder())).toEqual({ 'set-cookie': ['f=2'] })
  })

  it('tells the record form of writeHead headers from the raw array form', () => {
    expect(isHeaderRecord({ a: '1' })).toBe(true)
    expect(isHeaderRecord(['a', '1'])).toBe(false)
    expect(isHeaderRecord(undefined)).toBe(false)
    expect(isHeaderRecord(null)).toBe(false)
  })
})

describe('applyFeatureHeaders', () => {
  it("sets what the response lacks, keeps the handler's values and appends Set-Cookie", () => {
    const set: Record<string, unknown> = { 'x-dup': 'handler', 'set-cookie': 'h=1' }
    const res = { ...holder(set), setHeader: (n: string, v: unknown) => void (set[n] = v) }
    applyFeatureHeaders(res, { 'x-dup': 'feature', 'x-new': 'f', 'set-cookie': ['f=2'] })
    expect(set).toEqual({ 'x-dup': 'handler', 'x-new': 'f', 'set-cookie': ['h=1', 'f=2'] })
  })
})

describe('joinFeatureHeaders', () => {
  const response = () => {
    const set: Record<string, unknown> = {}
    return { set, getHeader: (n: string) => set[n], setHeader: (n: string, v: unknown) => void (set[n] = v) }
  }
  it('replaces the record of writeHead(status, [reason], record) by a flat list and returns the handler record', () => {
    const record = { 'Content-Length': '3' }
    for (const args of [[200, record], [200, 'OK', record]] as unknown[][]) {
      const res = response()
      expect(joinFeatureHeaders(res, args, { 'x-f': '1' })).toBe(record)
      expect(args.at(-1)).toEqual(['Content-Length', '3', 'x-f', '1'])
      expect(record).toEqual({ 'Content-Length': '3' })
      expect(res.set).toEqual({})
    }
  })
  it('follows the merge rules on a record: handler wins in any case, Set-Cookie adds, inherited keys ignored', () => {
    const args: unknown[] = [200, Object.assign(Object.create({ 'x-inherited': 'p' }) as object, { 'X-Request-Id': 'h', 'Set-Cookie': 'h=1' })]
    joinFeatureHeaders(response(), args, { 'x-request-id': 'f', 'set-cookie': ['f=2'], 'x-new': 'n' })
    expect(args[1]).toEqual(['X-Request-Id', 'h', 'Set-Cookie', ['h=1', 'f=2'], 'x-new', 'n'])
  })
  it('joins a flat [name, value, ...] list in place, and leaves the nested form to setHeader', () => {
    const res = response()
    res.set['x-set'] = 'on-response'
    const list: unknown[] = ['Content-Type', 'text/plain', 'set-cookie', 'a=1']
    const args: unknown[] = [200, list]
    expect(joinFeatureHeaders(res, args, { 'content-type': 'x', 'x-set': 'f', 'set-cookie': 'b=2', 'x-f': '1' })).toBeUndefined()
    expect(args[1]).toBe(list)
    expect(list).toEqual(['Content-Type', 'text/plain', 'set-cookie', ['a=1', 'b=2'], 'x-f', '1'])
    const nested: unknown[] = [200, [['x-a', '1']]]
    const other = response()
    joinFeatureHeaders(other, nested, { 'x-f': '1' })
    expect(nested).toEqual([200, [['x-a', '1']]])
    expect(other.set).toEqual({ 'x-f': '1' })
  })
  it('sets the headers on the response when writeHead has no record', () => {
    const res = response()
    const args: unknown[] = [200]
    expect(joinFeatureHeaders(res, args, { 'x-f': '1' })).toBeUndefined()
    expect(args).toEqual([200])
    expect(res.set).toEqual({ 'x-f': '1' })
  })
})

describe('findHeader', () => {
  it('finds a header whatever the case of its name', () => {
    expect(findHeader({ 'Content-Length': '3' }, 'content-length')).toBe('3')
    expect(findHeader({ 'content-type': 'x' }, 'content-length')).toBeUndefined()
  })
})

describe('sameHeaderName', () => {
  it('compares a name with a lower-case one ignoring ASCII case only', () => {
    expect(sameHeaderName('Content-Length', 'content-length')).toBe(true)
    expect(sameHeaderName('content-length', 'content-length')).toBe(true)
    expect(sameHeaderName('CONTENT-TYPE', 'content-type')).toBe(true)
    expect(sameHeaderName('content-type', 'x-request-id')).toBe(false)
    expect(sameHeaderName('content-typ', 'content-type')).toBe(false)
    expect(sameHeaderName('content\u212Aype', 'contentktype')).toBe(false) // Kelvin sign: not ASCII
    expect(sameHeaderName('[ontent', '{ontent')).toBe(false)
  })
})
