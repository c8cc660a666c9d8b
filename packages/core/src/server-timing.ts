/** One `Server-Timing` metric. */
export interface TimingEntry {
  readonly name: string
  /** Milliseconds; omitted when the mark is only a label. */
  readonly dur?: number
  readonly desc?: string
}

/** Header size is bounded: beyond this many marks the rest are dropped. */
const MAX_ENTRIES = 32
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/

/**
 * Timing marks collected during one request (cache lookup, db query, handler ...), rendered as
 * a `Server-Timing` header and logged by the slow-request logger.
 *
 * @example
 * const end = exchange.timings.start('db')
 * await db.query(sql)
 * end()
 * exchange.timings.add('cache', 0.2, 'hit')
 */
export class Timings {
  readonly entries: TimingEntry[] = []

  /** Records a finished measurement. */
  add(name: string, dur?: number, desc?: string): void {
    if (this.entries.length >= MAX_ENTRIES) return
    this.entries.push(desc === undefined ? { name, dur } : { name, dur, desc })
  }

  /** Starts a measurement; call the returned function to record it. */
  start(name: string, desc?: string): (desc?: string) => number {
    const t0 = performance.now()
    return (endDesc) => {
      const dur = performance.now() - t0
      this.add(name, dur, endDesc ?? desc)
      return dur
    }
  }

  /** Measures an async (or sync) function. */
  async measure<T>(name: string, fn: () => T | Promise<T>, desc?: string): Promise<T> {
    const end = this.start(name, desc)
    try {
      return await fn()
    } finally {
      end()
    }
  }

  /** Milliseconds per name (summed when a name repeats), for logs. */
  toJSON(): Record<string, number> {
    const out: Record<string, number> = Object.create(null)
    for (const e of this.entries) if (e.dur !== undefined) out[e.name] = round((out[e.name] ?? 0) + e.dur)
    return out
  }
}

/**
 * Renders marks as a `Server-Timing` header value (W3C Server Timing): names are forced to
 * tokens, descriptions are quoted with `"` and `\` escaped and control or non-ASCII characters
 * replaced, so no mark can break or inject a header.
 *
 * @example
 * renderServerTiming([{ name: 'cache', dur: 0.2, desc: 'hit' }, { name: 'db', dur: 12.1 }], 15.3)
 * // 'cache;dur=0.2;desc="hit", db;dur=12.1, total;dur=15.3'
 */
export function renderServerTiming(entries: readonly TimingEntry[], totalMs?: number): string {
  const parts: string[] = []
  for (const e of entries) {
    if (parts.length >= MAX_ENTRIES) break
    parts.push(renderEntry(e))
  }
  if (totalMs !== undefined) parts.push(`total;dur=${formatMs(totalMs)}`)
  return parts.join(', ')
}

function renderEntry(e: TimingEntry): string {
  const name = TOKEN_RE.test(e.name) ? e.name : e.name.replace(/[^!#$%&'*+\-.^_`|~0-9A-Za-z]/g, '_').slice(0, 64) || '_'
  let out = name
  if (e.dur !== undefined && Number.isFinite(e.dur)) out += `;dur=${formatMs(e.dur)}`
  if (e.desc !== undefined && e.desc !== '') out += `;desc=${quote(e.desc)}`
  return out
}

function quote(text: string): string {
  const clean = text.slice(0, 128).replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, '\\$&')
  return `"${clean}"`
}

function formatMs(ms: number): string {
  return String(round(Math.max(0, ms)))
}

function round(ms: number): number {
  return ms < 1 ? Math.round(ms * 1000) / 1000 : Math.round(ms * 10) / 10
}
