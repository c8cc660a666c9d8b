import { DURATION_ACCEPTS, tryParseDuration } from './duration.js'
import { type ConfigProblem, RiConfigError } from './errors.js'

/**
 * Collects every problem in an options object, then throws one `RiConfigError` naming them all.
 * Feature packages validate and default their options with it once, at construction.
 *
 * @example
 * const check = createOptionsChecker('createThrottle')
 * const windowMs = check.duration('window', input.window, 60_000)
 * const limit = check.integer('limit', input.limit, 100, { min: 1 })
 * check.known(input, ['window', 'limit'])
 * check.done() // throws RiConfigError listing every invalid option
 */
export interface OptionsChecker {
  /** Records a problem directly. */
  problem(option: string, received: unknown, accepted: string): void
  duration(option: string, value: unknown, fallback: number): number
  duration(option: string, value: unknown, fallback?: undefined): number | undefined
  integer(option: string, value: unknown, fallback: number, range?: { min?: number; max?: number }): number
  number(option: string, value: unknown, fallback: number, range?: { min?: number; max?: number }): number
  boolean(option: string, value: unknown, fallback: boolean): boolean
  string(option: string, value: unknown, fallback: string, pattern?: RegExp, patternWords?: string): string
  oneOf<const T extends string>(option: string, value: unknown, allowed: readonly T[], fallback: T): T
  fn<F extends (...args: never[]) => unknown>(option: string, value: unknown, fallback: F): F
  fn<F extends (...args: never[]) => unknown>(option: string, value: unknown): F | undefined
  /** Flags keys of `input` that are not in `allowed` (typos), suggesting the closest name. */
  known(input: object | undefined, allowed: readonly string[], prefix?: string): void
  /** Throws when any problem was recorded. */
  done(): void
  readonly problems: readonly ConfigProblem[]
}

export function createOptionsChecker(scope: string): OptionsChecker {
  const problems: ConfigProblem[] = []
  const name = (option: string) => (scope ? `${scope}.${option}` : option)
  const problem = (option: string, received: unknown, accepted: string) => {
    problems.push({ option: name(option), received, accepted })
  }
  const inRange = (n: number, range?: { min?: number; max?: number }) =>
    (range?.min === undefined || n >= range.min) && (range?.max === undefined || n <= range.max)
  const rangeWords = (range?: { min?: number; max?: number }) =>
    range?.min !== undefined && range.max !== undefined
      ? ` from ${range.min} to ${range.max}`
      : range?.min !== undefined
        ? ` >= ${range.min}`
        : range?.max !== undefined
          ? ` <= ${range.max}`
          : ''

  const checker: OptionsChecker = {
    problem,
    duration(option: string, value: unknown, fallback?: number): any {
      if (value === undefined) return fallback
      const ms = tryParseDuration(value)
      if (ms === undefined) {
        problem(option, value, DURATION_ACCEPTS)
        return fallback
      }
      return ms
    },
    integer(option, value, fallback, range) {
      if (value === undefined) return fallback
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || !inRange(value, range)) {
        problem(option, value, `an integer${rangeWords(range)}`)
        return fallback
      }
      return value
    },
    number(option, value, fallback, range) {
      if (value === undefined) return fallback
      if (typeof value !== 'number' || !Number.isFinite(value) || !inRange(value, range)) {
        problem(option, value, `a finite number${rangeWords(range)}`)
        return fallback
      }
      return value
    },
    boolean(option, value, fallback) {
      if (value === undefined) return fallback
      if (typeof value !== 'boolean') {
        problem(option, value, 'true or false')
        return fallback
      }
      return value
    },
    string(option, value, fallback, pattern, patternWords) {
      if (value === undefined) return fallback
      if (typeof value !== 'string' || (pattern && !pattern.test(value))) {
        problem(option, value, patternWords ?? (pattern ? `a string matching ${pattern}` : 'a string'))
        return fallback
      }
      return value
    },
    oneOf(option, value, allowed, fallback) {
      if (value === undefined) return fallback
      if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
        problem(option, value, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`)
        return fallback
      }
      return value as (typeof allowed)[number]
    },
    fn(option: string, value: unknown, fallback?: unknown): any {
      if (value === undefined) return fallback
      if (typeof value !== 'function') {
        problem(option, value, 'a function')
        return fallback
      }
      return value
    },
    known(input, allowed, prefix = '') {
      if (input === undefined || input === null) return
      if (typeof input !== 'object' || Array.isArray(input)) {
        problem(prefix || '(options)', input, 'an options object')
        return
      }
      for (const key of Object.keys(input)) {
        if (allowed.includes(key)) continue
        const hint = closest(key, allowed)
        problem(
          prefix ? `${prefix}.${key}` : key,
          (input as Record<string, unknown>)[key],
          `no such option${hint ? ` (did you mean '${hint}'?)` : ''}; known options: ${allowed.join(', ')}`,
        )
      }
    },
    done() {
      if (problems.length > 0) throw new RiConfigError(problems)
    },
    get problems() {
      return problems
    },
  }
  return checker
}

/**
 * Merges layered option objects (global → instance → call) into a new frozen object.
 * `undefined` never overrides a value from an earlier layer; nested plain objects merge.
 *
 * @example
 * const opts = mergeOptions(DEFAULTS, userOptions) // DEFAULTS itself stays untouched
 */
export function mergeOptions<T extends object>(base: T, ...layers: Array<Partial<T> | undefined>): T {
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) }
  for (const layer of layers) {
    if (!layer) continue
    for (const key of Object.keys(layer)) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue
      const value = (layer as Record<string, unknown>)[key]
      if (value === undefined) continue
      const current = out[key]
      out[key] = isPlainObject(current) && isPlainObject(value) ? mergeOptions(current, value) : value
    }
  }
  return Object.freeze(out) as T
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Number.POSITIVE_INFINITY
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return row[b.length]!
}
