import type { Counter } from 'prom-client'

/** Label value every label of the overflow series carries. */
export const OVERFLOW = '__overflow__'

/**
 * Caps the number of label sets (series) one metric may create. The first `max` distinct label
 * sets pass through; every later new one is folded into a single overflow series (all labels
 * `__overflow__`) and counted in `dropped{metric}`, so a label fed by unbounded input can never
 * grow the scrape without limit.
 */
export interface SeriesGuard<L extends string> {
  /** The labels to record with: `values` itself, or the overflow label set. */
  labels(values: Record<L, string>): Record<L, string>
  /** Distinct label sets admitted so far. */
  readonly size: number
}

/** One string per label set, in `labelNames` order: the key both the guard and the fast metrics use. */
export const seriesKey = (labelNames: readonly string[], labels: Readonly<Record<string, string>>): string => {
  let key = ''
  for (let i = 0; i < labelNames.length; i++) key += `${labels[labelNames[i]!]}\u0001`
  return key
}

export function createSeriesGuard<L extends string>(
  metric: string,
  labelNames: readonly L[],
  max: number,
  dropped: Counter<'metric'>,
): SeriesGuard<L> {
  const seen = new Set<string>()
  const overflow = {} as Record<L, string>
  for (const name of labelNames) overflow[name] = OVERFLOW
  const droppedLabels = { metric }
  return {
    labels(values) {
      const key = seriesKey(labelNames, values)
      if (seen.has(key)) return values
      if (seen.size < max) {
        seen.add(key)
        return values
      }
      dropped.inc(droppedLabels)
      return overflow
    },
    get size() {
      return seen.size
    },
  }
}
