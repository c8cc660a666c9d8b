import { describe, expect, it, vi } from 'vitest'
import { findPromtool, requirePromtool } from './promtool.js'

describe('requirePromtool', () => {
  const missing = { PATH: '/nonexistent-dir' }
  it('fails under CI when promtool is missing, naming the Debian package', () => {
    expect(() => requirePromtool({ ...missing, CI: 'true' })).toThrow(/apt-get install prometheus.*CI is set/)
  })
  it('skips with a message elsewhere', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    expect(requirePromtool({ ...missing, CI: 'false' })).toBe(false)
    expect(requirePromtool(missing)).toBe(false)
    expect(warn).toHaveBeenCalledTimes(1)
    warn.mockRestore()
  })
  it('finds promtool on PATH or through RI_PROMTOOL', () => {
    expect(findPromtool(missing)).toBeUndefined()
    expect(findPromtool({ RI_PROMTOOL: '/nonexistent/promtool' })).toBeUndefined()
  })
})
