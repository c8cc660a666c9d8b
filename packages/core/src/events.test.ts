import { describe, expect, it } from 'vitest'
import { createEvents } from './events.js'
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
