// The clock of the read paths (L1 freshness checks, a cached() hit's Age). `Date.now()` is a call
// into the runtime that costs about as much as the rest of an L1 hit together (~35 ns of ~115 ns
// here), so reads share one clock reading, as lru-cache does with its `ttlResolution`: the reading
// is dropped by an unref'd 1 ms timer (set at most once per reading) and after READS uses. So it
// is at most a millisecond old while the event loop turns freely; in a run of JavaScript that does
// not yield to the event loop (a synchronous loop, a long chain of microtasks) it is re-read every
// READS reads. Expiry is never early (a reading is never ahead of the clock), and late by at most
// that age: nothing next to ttls of seconds, but not for sub-millisecond ttls.
//
// Tests that fake the clock are honoured at once: when the global Date is not the one this module
// saw at load (vitest, jest and sinon replace it), or that one's `now` was not native (faked before
// load), every read calls `Date.now()`. The timer is the setTimeout seen at load, so timers faked
// later do not hold a reading.

const READS = 1024
const LoadedDate = Date
const nativeNow = /\[native code\]/.test(Function.prototype.toString.call(Date.now))
const loadedSetTimeout = globalThis.setTimeout

let reading = 0
let left = 0
let timerSet = false

function drop(): void {
  reading = 0
  timerSet = false
}

/** Milliseconds since the epoch, as `Date.now()`, shared by reads within about a millisecond. */
export function now(): number {
  if (reading !== 0 && --left > 0 && Date === LoadedDate) return reading
  const t = Date.now()
  if (Date !== LoadedDate || !nativeNow) return t
  reading = t
  left = READS
  if (!timerSet) {
    timerSet = true
    const timer = loadedSetTimeout(drop, 1)
    if (typeof timer === 'object' && typeof timer.unref === 'function') timer.unref()
  }
  return t
}
