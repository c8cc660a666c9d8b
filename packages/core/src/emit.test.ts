import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { forwardEmit } from './emit.js'

describe('forwardEmit', () => {
  it('passes every event on with exactly the arguments the hook got, on the same receiver, and returns what emit returned', () => {
    const target = new EventEmitter()
    const heard: unknown[][] = []
    for (const name of ['none', 'one', 'two', 'three']) target.on(name, (...args: unknown[]) => void heard.push([name, ...args]))
    const next = target.emit
    const closes: string[] = []
    target.emit = function (this: EventEmitter, event: string | symbol) {
      expect(this).toBe(target)
      if (event === 'close') closes.push('close')
      return forwardEmit(next, this, arguments)
    } as EventEmitter['emit']
    expect(target.emit('none')).toBe(true)
    expect(target.emit('one', 1)).toBe(true)
    expect(target.emit('two', 1, 2)).toBe(true)
    expect(target.emit('three', 1, 2, 3)).toBe(true)
    expect(target.emit('close')).toBe(false) // no listener: emit's own answer comes back
    expect(heard).toEqual([['none'], ['one', 1], ['two', 1, 2], ['three', 1, 2, 3]])
    expect(closes).toEqual(['close'])
  })
})
