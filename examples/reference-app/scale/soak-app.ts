// The reference app as the soak test runs it: the same startApp(), plus a sampler that prints one
// `SOAK {json}` line per second on stdout (heap, RSS, event-loop delay, active handles) for
// scale/soak.ts to collect. Sampling in the app's own process is the point: that is the heap and
// the event loop that must stay flat.
import { createDefaultLogger, noopLogger } from '@ri/core'
import { readFileSync } from 'node:fs'
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'
import { startApp } from '../src/app.js'
import { configFromEnv } from '../src/config.js'

// RI_SOAK_LOG_LEVEL=warn: the app's warnings and errors on stdout (pino lines beside the SOAK lines).
const level = process.env.RI_SOAK_LOG_LEVEL
const { url } = await startApp(configFromEnv(), { logger: level ? createDefaultLogger({ level }) : noopLogger })
console.log(`ri reference app listening on ${url}`)

const delay = monitorEventLoopDelay({ resolution: 10 })
delay.enable()
// GC pauses in the same second, to tell a GC stall from a long synchronous task (PGlite's wasm
// runs queries on this thread; so do JSON and the app's own work).
let gcMs = 0
let gcMaxMs = 0
let gcMajorMs = 0
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration
    if (e.duration > gcMaxMs) gcMaxMs = e.duration
    // kind 4 = major (mark-sweep-compact)
    if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === 4) gcMajorMs += e.duration
  }
}).observe({ entryTypes: ['gc'] })
const started = performance.now()
let lastCpu = process.cpuUsage()
/** Linux: ns this process's threads spent runnable but waiting for a CPU (/proc/self/schedstat, main thread). */
const runqueueNs = (): number | undefined => {
  try {
    return Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1])
  } catch {
    return undefined
  }
}
let lastRunqueue = runqueueNs()
setInterval(() => {
  const m = process.memoryUsage()
  const line = {
    t: Math.round(performance.now() - started),
    heapUsed: m.heapUsed,
    rss: m.rss,
    // ns -> ms; max is the longest stall in the last second (resolution 10 ms is added to every value)
    eldMaxMs: delay.max / 1e6,
    eldP99Ms: delay.percentile(99) / 1e6,
    handles: process.getActiveResourcesInfo().filter((r) => r !== 'Timeout' && r !== 'Immediate').length,
    timers: process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length,
    gcMs: Math.round(gcMs * 10) / 10,
    gcMaxMs: Math.round(gcMaxMs * 10) / 10,
    gcMajorMs: Math.round(gcMajorMs * 10) / 10,
    /** CPU time of this process in the last second (ms): < 1000 with an idle core to spare. */
    cpuMs: 0,
    /** ms the main thread was ready to run but had no CPU (another process had it), in the last second. */
    runqueueMs: undefined as number | undefined,
  }
  const rq = runqueueNs()
  if (rq !== undefined && lastRunqueue !== undefined) line.runqueueMs = Math.round((rq - lastRunqueue) / 1e6)
  lastRunqueue = rq
  const cpu = process.cpuUsage(lastCpu)
  lastCpu = process.cpuUsage()
  line.cpuMs = Math.round((cpu.user + cpu.system) / 1000)
  gcMs = 0
  gcMaxMs = 0
  gcMajorMs = 0
  delay.reset()
  process.stdout.write(`SOAK ${JSON.stringify(line)}\n`)
}, 1_000).unref()
