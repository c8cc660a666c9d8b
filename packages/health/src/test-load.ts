// A small load generator for the shutdown tests: keep-alive and new-connection clients behind a
// "load balancer" that polls readiness and takes the instance out of rotation on a 503, as a
// Kubernetes Service or an ALB does. Every request issued while in rotation must succeed.
import http from 'node:http'
import { get, sleep } from './test-helpers.js'

export interface LoadStats {
  ok: number
  failed: number
  errors: string[]
  keepAliveClosed: number
  outOfRotationAt: number | undefined
}

export interface Load {
  readonly stats: LoadStats
  /** Resolves when every client stopped (after the LB saw a 503 or `stop()`). */
  done: Promise<void>
  stop(): void
}

export function startLoad(base: string, options: { keepAlive?: number; fresh?: number; workMs?: number; pollMs?: number } = {}): Load {
  const stats: LoadStats = { ok: 0, failed: 0, errors: [], keepAliveClosed: 0, outOfRotationAt: undefined }
  let inRotation = true
  let stopped = false
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.keepAlive ?? 6 })
  const workMs = options.workMs ?? 20

  const worker = async (keepAlive: boolean, i: number) => {
    let n = 0
    while (inRotation && !stopped) {
      n++
      // A mix of fast and slower requests so some are always in flight.
      const ms = (i * 7 + n * 13) % (workMs * 3)
      try {
        const res = await get(`${base}/work?ms=${ms}`, { agent: keepAlive ? agent : false, timeoutMs: 15_000 })
        if (res.status === 200 && res.body === 'done') stats.ok++
        else {
          stats.failed++
          stats.errors.push(`status ${res.status}`)
        }
        if (keepAlive && res.headers.connection === 'close') stats.keepAliveClosed++
      } catch (error) {
        stats.failed++
        stats.errors.push((error as Error).message)
      }
    }
  }

  const poller = async () => {
    while (!stopped) {
      try {
        const res = await get(`${base}/health/ready`, { timeoutMs: 2_000 })
        if (res.status === 503) {
          stats.outOfRotationAt = performance.now()
          inRotation = false
          return
        }
      } catch {
        // The probe itself failing also takes the instance out of rotation.
        stats.outOfRotationAt = performance.now()
        inRotation = false
        return
      }
      await sleep(options.pollMs ?? 25)
    }
  }

  const workers = [
    ...Array.from({ length: options.keepAlive ?? 6 }, (_, i) => worker(true, i)),
    ...Array.from({ length: options.fresh ?? 3 }, (_, i) => worker(false, i + 100)),
  ]
  const done = Promise.all([poller(), ...workers]).then(() => {
    agent.destroy()
  })
  return {
    stats,
    done,
    stop() {
      stopped = true
    },
  }
}
