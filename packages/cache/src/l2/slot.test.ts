import { createRequire } from 'node:module'
import { expect, it } from 'vitest'
import { keySlot } from './slot.js'

it('keySlot matches the slot ioredis computes (cluster-key-slot), hash tags included', () => {
  // cluster-key-slot is ioredis' dependency, reachable only through ioredis' own resolution.
  const fromIoredis = createRequire(createRequire(import.meta.url).resolve('ioredis'))
  const calculateSlot = fromIoredis('cluster-key-slot') as (key: string) => number
  const keys = ['', 'foo', '123456789', '{user1000}.following', 'ri:j1:users:{u:1}', 'ri:j1:users:{u:1}}:lock', 'a{}b', '{}', 'x{', 'x}{y}', 'é{ü}', 'ri:t:{#ns:users}']
  for (let i = 0; i < 200; i++) keys.push(`k${i}:{${i % 7 === 0 ? '' : i}}`)
  for (const k of keys) expect(keySlot(k), k).toBe(calculateSlot(k))
  expect(keySlot('123456789')).toBe(0x31c3 & 16383) // CRC16/XMODEM check value
  expect(keySlot('ri:j1:users:{u:1}')).toBe(keySlot('ri:j1:users:{u:1}:lock'))
})
