import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { findBinary, requireService, serviceAvailability } from './binaries.js'

// An empty PATH dir and a non-existent PostgreSQL root: nothing can be found.
const emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ri-empty-path-'))
const nothing = { pgRoots: [path.join(emptyDir, 'no-postgresql')] }

afterAll(() => fs.rmSync(emptyDir, { recursive: true, force: true }))
afterEach(() => vi.restoreAllMocks())

describe('serviceAvailability', () => {
  it('reports every missing binary and an install hint', () => {
    expect(serviceAvailability('redis', { ...nothing, env: { PATH: emptyDir } })).toEqual({
      available: false,
      missing: ['redis-server', 'redis-cli'],
      install: 'apt-get install redis-server',
    })
    const pgAvail = serviceAvailability('postgres', { ...nothing, env: { PATH: emptyDir } })
    expect(pgAvail.available).toBe(false)
    expect(pgAvail.missing).toEqual(expect.arrayContaining(['initdb', 'pg_ctl', 'postgres', 'pg_basebackup', 'psql']))
    expect(pgAvail.install).toBe('apt-get install postgresql')
  })

  it('finds binaries on an injected PATH and prefers the highest /usr/lib/postgresql-style version', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ri-fake-bins-'))
    try {
      const mk = (dir: string, name: string) => {
        fs.mkdirSync(dir, { recursive: true })
        fs.writeFileSync(path.join(dir, name), '#!/bin/sh\n', { mode: 0o755 })
      }
      mk(path.join(root, 'bin'), 'redis-server')
      for (const v of ['9.6', '14', '16']) for (const b of ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup']) mk(path.join(root, 'pg', v, 'bin'), b)
      const opts = { env: { PATH: path.join(root, 'bin') }, pgRoots: [path.join(root, 'pg')] }
      expect(findBinary('redis-server', opts)).toBe(path.join(root, 'bin', 'redis-server'))
      expect(findBinary('redis-cli', opts)).toBeUndefined()
      expect(findBinary('initdb', opts)).toBe(path.join(root, 'pg', '16', 'bin', 'initdb'))
      expect(serviceAvailability('redis', opts).missing).toEqual(['redis-cli'])
    } finally {
      fs.rmSync(root, { recursive: true, force: true })
    }
  })
})

describe('requireService', () => {
  it.each(['true', '1'])('throws under CI=%s, naming the missing binaries and the install command', (ci) => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const run = () => requireService('redis', { ...nothing, env: { PATH: emptyDir, CI: ci } })
    expect(run).toThrow(/redis-server, redis-cli/)
    expect(run).toThrow(/apt-get install redis-server/)
    expect(warn).not.toHaveBeenCalled()
  })

  it('outside CI returns false and prints the reason to stderr only once', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const opts = { ...nothing, env: { PATH: emptyDir } }
    expect(requireService('postgres', opts)).toBe(false)
    expect(requireService('postgres', opts)).toBe(false)
    expect(requireService('postgres', { ...opts, env: { ...opts.env, CI: 'false' } })).toBe(false)
    expect(warn).toHaveBeenCalledTimes(1)
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/postgres is not available: missing .*initdb.*apt-get install postgresql/)
  })

  it('returns true when the binaries exist', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ri-fake-bins-'))
    try {
      for (const b of ['redis-server', 'redis-cli']) fs.writeFileSync(path.join(root, b), '#!/bin/sh\n', { mode: 0o755 })
      expect(requireService('redis', { env: { PATH: root, CI: 'true' } })).toBe(true)
    } finally {
      fs.rmSync(root, { recursive: true, force: true })
    }
  })
})
