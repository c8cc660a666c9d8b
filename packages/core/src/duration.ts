import { RiConfigError } from './errors.js'

/** A duration: milliseconds as a number, or a string such as `'150ms'`, `'5s'`, `'5m'`, `'1h'`, `'7d'`. */
export type Duration = number | `${number}${DurationUnit}`
export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd' | 'w'

const UNIT_MS: Readonly<Record<DurationUnit, number>> = Object.freeze({
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
})

// One number and one unit, nothing else: `'1h30m'`, `'5 minutes'` and `'-1s'` are rejected on purpose.
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/

export const DURATION_ACCEPTS =
  "a non-negative number of milliseconds or a string of one number and a unit ms|s|m|h|d|w, e.g. '150ms', '5m', '1h', '7d'"

/**
 * Converts a duration to milliseconds, or returns `undefined` when it is not a valid duration.
 *
 * @example
 * tryParseDuration('5m') // 300000
 * tryParseDuration('soon') // undefined
 */
export function tryParseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? value : undefined
  }
  if (typeof value !== 'string' || value.length > 32) return undefined
  const match = DURATION_RE.exec(value)
  if (!match) return undefined
  const ms = Number(match[1]) * UNIT_MS[match[2] as DurationUnit]
  return Number.isFinite(ms) ? ms : undefined
}

/**
 * Converts a duration to milliseconds; throws `RiConfigError` naming `option` when it is invalid.
 * Call it once at construction, never per request.
 *
 * @example
 * parseDuration('1h', 'createCache.ttl') // 3600000
 * parseDuration(250, 'timeoutMs')        // 250
 */
export function parseDuration(value: unknown, option = 'duration'): number {
  const ms = tryParseDuration(value)
  if (ms === undefined) throw new RiConfigError({ option, received: value, accepted: DURATION_ACCEPTS })
  return ms
}

/** Renders milliseconds compactly for messages and docs (`300000` → `'5m'`). */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit]
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}
