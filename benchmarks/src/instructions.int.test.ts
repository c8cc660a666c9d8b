import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { measure } from './instructions.js'

// One real measurement under valgrind (about a minute): the tool must keep working, because the
// per-request figures in the closing notes of performance work come from it.
const hasValgrind = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v valgrind && command -v callgrind_control && command -v callgrind_annotate'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()
if (!hasValgrind && process.env.CI) throw new Error('valgrind (callgrind_control, callgrind_annotate) is required under CI: install the valgrind package')

describe.skipIf(!hasValgrind)('instructions: a real count', () => {
  it('counts the bare node:http server per request and names its JS frames', async () => {
    const keep = mkdtempSync(join(tmpdir(), 'ri-instructions-keep-'))
    let r: Awaited<ReturnType<typeof measure>>
    try {
      r = await measure({ module: 'core', name: 'bare', path: '/users/1' }, { requests: 1_000, warmup: 3_000, top: 40, keep })
      // --keep: the dump and the perf map survive the run, for callgrind_annotate --tree=caller
      expect(existsSync(join(keep, 'core-bare.cg')) && existsSync(join(keep, 'core-bare.map'))).toBe(true)
      expect(execFileSync('callgrind_annotate', [join(keep, 'core-bare.cg')], { maxBuffer: 1 << 28 }).toString()).toMatch(/PROGRAM TOTALS/)
    } finally {
      rmSync(keep, { recursive: true, force: true })
    }
    // a bare node:http request is tens of thousands of instructions (node's parser, streams, V8)
    expect(r.perRequest).toBeGreaterThan(10_000)
    expect(r.perRequest).toBeLessThan(1_000_000)
    expect(r.top.length).toBe(40)
    expect(r.top.some(([name]) => name.startsWith('JS:') && name.includes('node:'))).toBe(true)
  })

  it('with cacheSim, adds misses and a cycle estimate above the instruction count, and still names frames', async () => {
    const r = await measure({ module: 'core', name: 'bare', path: '/users/1' }, { requests: 1_000, warmup: 3_000, top: 5, cacheSim: true })
    expect(r.cache).toBeDefined()
    const c = r.cache!
    // V8's code for a request does not fit the first-level instruction cache: hundreds of misses
    expect(c.l1Misses).toBeGreaterThan(100)
    expect(c.mispredicts).toBeGreaterThan(10)
    expect(c.cycles).toBeGreaterThan(r.perRequest + 10 * c.l1Misses)
    // --top reads one column of a thirteen-event dump: without --show=Ir the other twelve counts
    // would land in front of each function's name
    expect(r.top.length).toBe(5)
    for (const [name, v] of r.top) {
      expect(name).not.toMatch(/^[\d,]+ \(/)
      expect(v).toBeLessThan(r.perRequest)
    }
  })
})
