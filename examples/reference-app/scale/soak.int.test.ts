import { expect, it } from 'vitest'
import { writeReport } from './chaos.js'
import { runSoak } from './soak.js'

// The short form of `pnpm --filter reference-app scale:soak` (10 minutes there, 35 s here; embedded
// defaults, no services). Bounds are loose on purpose, see scale/README.md "Soak" for the measured
// figures they were chosen from.
it('soak (short): steady load on 1e6 keys with tag churn, no leak signal, no long stall, no handle growth', async () => {
  const { report } = await runSoak({ durationMs: Number(process.env.RI_SOAK_MS ?? 35_000), connections: 16, warmupShare: 0.4 })
  console.log(`soak: ${JSON.stringify(report)}\nJSON: ${writeReport('soak-short', report)}`)
  expect(report.lost).toBe(0)
  expect(report.serverErrors).toBe(0)
  expect(report.requests).toBeGreaterThan(1_000)
  expect(report.writes).toBeGreaterThan(50)
  expect(report.distinctKeys).toBeGreaterThan(1_000)
  // A 35 s run is too short for a trustworthy heap slope (the GC sawtooth dominates: the 10-minute
  // script reports it); what it can tell: memory stays bounded, nothing stalls the loop for long,
  // and no socket/handle piles up. Measured here: heap floor 70-120 MB, RSS ~650 MB (PGlite's
  // wasm heap), steady stalls 35-135 ms, 31-35 handles; the bounds leave room for a busy CI box.
  expect(report.heapEndMb).toBeLessThan(300)
  expect(report.rssEndMb).toBeLessThan(1_200)
  expect(report.maxStallMs).toBeLessThan(1_000)
  expect(report.handlesEnd - report.handlesStart).toBeLessThanOrEqual(10)
  expect(report.handlesMax).toBeLessThan(100)
}, 120_000)
