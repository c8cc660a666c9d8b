/**
 * The contract every benchmark file in this folder follows. `src/run.ts` discovers files named
 * `*.bench.ts`, calls their default export, and writes every returned row to
 * `results/latest.json` and the Markdown/SVG report.
 */
export interface BenchContext {
  /** `pnpm bench --quick`: a short pass (the whole suite in under two minutes). */
  readonly quick: boolean
  /**
   * `pnpm bench --rounds=N`: the interleaved comparisons whose targets carry a 95 % interval
   * (metrics-slowlog, http-frameworks, throttle) run N rounds instead of their default, to narrow it.
   */
  readonly rounds?: number
  /** Progress line for the live display. */
  progress(message: string): void
}

/** One measured subject inside a comparison. */
export interface BenchSubject {
  /** e.g. `ri getOrSet (L1 hit)`, `bentocache getOrSet`, `raw lru-cache.get`. */
  readonly name: string
  /** Operations (or requests) per second. */
  readonly opsPerSec?: number
  /** Latency percentiles in milliseconds, when measured. */
  readonly p50Ms?: number
  readonly p99Ms?: number
  /** Any other figure (round trips per op, loader calls, series count ...). */
  readonly extra?: Readonly<Record<string, number | string>>
}

/** A side-by-side comparison measured in one run; ratios are computed against `baseline`. */
export interface BenchComparison {
  /** Stable id, e.g. `cache.l1-hit`. */
  readonly id: string
  readonly title: string
  /** Name of the subject the ratios are relative to. */
  readonly baseline: string
  readonly subjects: readonly BenchSubject[]
  /** The target from the issue, in words, and whether this run met it. */
  readonly target?: { readonly text: string; readonly met: boolean }
  readonly notes?: string
}

export type BenchFile = (ctx: BenchContext) => Promise<BenchComparison[]>
