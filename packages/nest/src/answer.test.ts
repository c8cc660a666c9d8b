import 'reflect-metadata'
import { HttpException } from '@nestjs/common'
import { describe, expect, it } from 'vitest'
import { RiAnswerException } from './answer.js'

describe('RiAnswerException.of', () => {
  it('builds the exception without a stack trace and restores Error.stackTraceLimit', () => {
    const before = Error.stackTraceLimit
    const answer = { status: 429, headers: { 'retry-after': '1' }, body: '{"error":"Too Many Requests"}' }
    const e = RiAnswerException.of(answer)
    expect(e).toBeInstanceOf(RiAnswerException)
    expect(e).toBeInstanceOf(HttpException)
    expect(e.getStatus()).toBe(429)
    expect(e.answer).toBe(answer)
    // no frames captured: the stack is the header line only
    expect(e.stack?.split('\n').filter((l) => l.trim().startsWith('at '))).toEqual([])
    expect(Error.stackTraceLimit).toBe(before)
    expect(new Error('x').stack?.split('\n').length).toBeGreaterThan(1)
  })
})
