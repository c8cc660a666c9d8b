import { describe, expect, it } from 'vitest'
import { createEvents, listening, type RiEvents } from './events.js'
import { createEpisodes, type Logger } from './logger.js'

describe('events', () => {
  it('delivers to listeners, reports has(), unsubscribes', () => {
    const events = createEvents()
    expect(events.has('cache.get')).toBe(false)
    const seen: string[] = []
    const off = events.on('cache.get', (e) => seen.push(`${e.tier}:${e.result}`))
    expect(events.has('cache.get')).toBe(true)
    events.emit('cache.get', { namespace: 'n', tier: 'l1', result: 'hit' })
    off()
    events.emit('cache.get', { namespace: 'n', tier: 'l2', result: 'miss' })
    expect(seen).toEqual(['l1:hit'])
    expect(events.has('cache.get')).toBe(false)
  })

  it('isolates a throwing listener', () => {
    const errors: unknown[] = []
    const events = createEvents({ onListenerError: (e) => errors.push(e) })
    let second = 0
    events.on('cache.set', () => {
      throw new Error('boom')
    })
    events.on('cache.set', () => second++)
    expect(() => events.emit('cache.set', { namespace: 'n' })).not.toThrow()
    expect(second).toBe(1)
    expect(errors).toHaveLength(1)
  })
})

describe('listening()', () => {
  it('follows listeners coming and going on a createEvents() bus', () => {
    const events = createEvents()
    const hasGet = listening(events, 'cache.get')
    expect(hasGet()).toBe(false)
    const g0 = events.generation
    const off = events.on('cache.get', () => {})
    expect(events.generation).not.toBe(g0)
    expect(hasGet()).toBe(true)
    expect(hasGet()).toBe(true)
    const off2 = events.on('cache.set', () => {})
    expect(hasGet()).toBe(true)
    off()
    expect(hasGet()).toBe(false)
    off2()
    const g1 = events.generation
    off2() // removing a listener that is gone changes nothing
    expect(events.generation).toBe(g1)
    expect(hasGet()).toBe(false)
  })

  it('asks has() every time on a bus without generation', () => {
    const inner = createEvents()
    let asked = 0
    const bus: RiEvents = {
      on: inner.on,
      off: inner.off,
      emit: inner.emit,
      has: (t) => {
        asked++
        return inner.has(t)
      },
    }
    const hasGet = listening(bus, 'cache.get')
    expect(hasGet()).toBe(false)
    inner.on('cache.get', () => {})
    expect(hasGet()).toBe(true)
    expect(asked).toBe(2)
  })
})

describe('episodes', () => {
  it('logs a degradation once per episode and its recovery once', () => {
    const lines: Array<[string, unknown, string | undefined]> = []
    const rec = (level: string) => (obj: unknown, msg?: string) => lines.push([level, obj, msg])
    const logger = { warn: rec('warn'), info: rec('info') } as unknown as Logger
    const episodes = createEpisodes(logger)
    expect(episodes.begin('redis', 'down')).toBe(true)
    for (let i = 0; i < 100; i++) expect(episodes.begin('redis', 'down')).toBe(false)
    expect(episodes.active('redis')).toBe(true)
    expect(episodes.end('redis', 'up')).toBe(true)
    expect(episodes.end('redis', 'up')).toBe(false)
    expect(episodes.begin('redis', 'down again')).toBe(true)
    expect(lines.map(([level, , msg]) => `${level}:${msg}`)).toEqual(['warn:down', 'info:up', 'warn:down again'])
  })
})
