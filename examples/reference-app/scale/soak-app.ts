// The reference app as the soak test runs it: the same startApp(), plus a sampler that prints one
// `SOAK {json}` line per second on stdout (heap, RSS, event-loop delay, active handles) for
// scale/soak.ts to collect. Sampling in the app's own process is the point: that is the heap and
// the event loop that must stay flat.
import { noopLogger } from '@ri/core'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { startApp } from '../src/app.js'
import { configFromEnv } from '../src/config.js'

const { url } = await startApp(configFromEnv(), { logger: noopLogger })
console.log(`ri reference app listening on ${url}`)

const delay = monitorEventLoopDelay({ resolution: 10 })
delay.enable()
const started = performance.now()
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
  }
  delay.reset()
  process.stdout.write(`SOAK ${JSON.stringify(line)}\n`)
}, 1_000).unref()
