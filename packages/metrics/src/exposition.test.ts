import { describe, expect, it } from 'vitest'
import { negotiate } from './exposition.js'

describe('negotiate', () => {
  it.each([
    [undefined, 'prometheus'],
    ['*/*', 'prometheus'],
    ['text/plain;version=0.0.4', 'prometheus'],
    ['text/html,application/xhtml+xml,*/*;q=0.8', 'prometheus'],
    ['application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1', 'openmetrics'],
    ['application/openmetrics-text', 'openmetrics'],
    ['application/openmetrics-text;version=0.0.1', 'openmetrics'],
    ['application/openmetrics-text;version=2.0.0,text/plain;q=0.5', 'prometheus'],
    ['application/openmetrics-text;q=0.3,text/plain;q=0.9', 'prometheus'],
    ['application/openmetrics-text;q=0', 'prometheus'],
    ['application/openmetrics-text;q=0.5,*/*;q=0.5', 'openmetrics'],
  ] as const)('%s -> %s', (accept, expected) => {
    expect(negotiate(accept)).toBe(expected)
  })
})
