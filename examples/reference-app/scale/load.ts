// A closed-loop load generator (N workers, each sends its next request when the last one ended)
// that records every request, so a run can be cut into windows around faults afterwards. Bounded
// by `stop()` and by `maxMs`; only ever targets the URL it is given (loopback in this repo).

export interface Sample {
  /** Start, ms since the run started. */
  readonly at: number
  readonly ms: number
  /** HTTP status, or 0 when no response came back at all (a lost request). */
  readonly status: number
  readonly error?: string
}

export interface RequestSpec {
  path: string
  method?: string
  headers?: Record<string, string>
  body?: string
}

export interface LoadRun {
  readonly samples: Sample[]
  /** ms since the run started. */
  now(): number
  stop(): Promise<Sample[]>
}

export function startLoad(base: string, options: { concurrency: number; maxMs: number; next: (n: number) => RequestSpec; timeoutMs?: number }): LoadRun {
  const samples: Sample[] = []
  const t0 = performance.now()
  const now = () => performance.now() - t0
  let running = true
  let n = 0
  const hardStop = setTimeout(() => (running = false), options.maxMs)
  const worker = async () => {
    while (running) {
      const spec = options.next(n++)
      const at = now()
      try {
        const res = await fetch(`${base}${spec.path}`, {
          method: spec.method ?? 'GET',
          headers: spec.headers,
          body: spec.body,
          signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
        })
        if (res.status >= 500) {
          // Keep what the server said: a 5xx in a long run is otherwise impossible to trace.
          const text = await res.text()
          samples.push({ at, ms: now() - at, status: res.status, error: `${spec.method ?? 'GET'} ${spec.path}: ${text.slice(0, 300)}` })
        } else {
          await res.arrayBuffer()
          samples.push({ at, ms: now() - at, status: res.status })
        }
      } catch (error) {
        samples.push({ at, ms: now() - at, status: 0, error: (error as Error).cause ? String((error as { cause: unknown }).cause) : (error as Error).message })
      }
    }
  }
  const workers = Array.from({ length: options.concurrency }, worker)
  return {
    samples,
    now,
    async stop() {
      running = false
      clearTimeout(hardStop)
      await Promise.all(workers)
      return samples
    },
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

export interface WindowStats {
  requests: number
  /** Share of requests answered 5xx or not at all. */
  errorRate: number
  p99Ms: number
  lost: number
}

export function windowStats(samples: readonly Sample[], from: number, to: number): WindowStats {
  const inWindow = samples.filter((s) => s.at >= from && s.at < to)
  const errors = inWindow.filter((s) => s.status === 0 || s.status >= 500).length
  return {
    requests: inWindow.length,
    errorRate: inWindow.length === 0 ? 0 : errors / inWindow.length,
    p99Ms: Math.round(percentile(inWindow.map((s) => s.ms), 99) * 10) / 10,
    lost: inWindow.filter((s) => s.status === 0).length,
  }
}

/**
 * ms from `from` until the first request after which every request of the next `quietMs` was
 * answered without a 5xx (the service is back); undefined when that never happened before `to`.
 */
export function recoveredAfter(samples: readonly Sample[], from: number, to: number, quietMs = 1_000): number | undefined {
  const after = samples.filter((s) => s.at >= from && s.at < to).sort((a, b) => a.at - b.at)
  let lastBad = from
  for (const s of after) if (s.status === 0 || s.status >= 500) lastBad = s.at + s.ms
  const tail = after.filter((s) => s.at >= lastBad)
  if (tail.length === 0 || tail[tail.length - 1]!.at - lastBad < Math.min(quietMs, to - lastBad - 1)) return undefined
  return Math.round(lastBad - from)
}
