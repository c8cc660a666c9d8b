import { monitorEventLoopDelay } from 'node:perf_hooks'

/** Event-loop delay over a rolling window, read without I/O. */
export interface LoopDelayMonitor {
  /** p99 delay in ms: the larger of the last complete window and the current one. */
  p99Ms(): number
  /** Longest delay in ms seen in the same span. */
  maxMs(): number
  stop(): void
}

/**
 * Samples the event-loop delay with `perf_hooks.monitorEventLoopDelay` (a native timer that
 * does not keep the process alive). Windows roll lazily on read, so nothing runs between reads.
 */
export function createLoopDelayMonitor(windowMs: number, resolutionMs = 10): LoopDelayMonitor {
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs })
  histogram.enable()
  let windowStart = performance.now()
  let lastP99 = 0
  let lastMax = 0
  const roll = () => {
    const now = performance.now()
    if (now - windowStart < windowMs) return
    lastP99 = histogram.count > 0 ? histogram.percentile(99) / 1e6 : 0
    lastMax = histogram.count > 0 ? histogram.max / 1e6 : 0
    histogram.reset()
    windowStart = now
  }
  // The histogram includes the sampling interval itself; subtract it so an idle loop reads ~0.
  const adjust = (ms: number) => Math.max(0, ms - resolutionMs)
  return {
    p99Ms() {
      roll()
      const current = histogram.count > 0 ? histogram.percentile(99) / 1e6 : 0
      return adjust(Math.max(lastP99, current))
    },
    maxMs() {
      roll()
      const current = histogram.count > 0 ? histogram.max / 1e6 : 0
      return adjust(Math.max(lastMax, current))
    },
    stop() {
      histogram.disable()
    },
  }
}
