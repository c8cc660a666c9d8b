import type { Cache } from '@ri/cache'
import type { Logger } from '@ri/core'
import { type DbRouter, parseLsn } from '@ri/db'

/**
 * Purges tags a second time once every replica has replayed a write.
 *
 * Why: the write purges its tags at once (`@InvalidateTags`), but another client's read can reach
 * a replica that has not replayed the write yet and put the old value back in the cache, where it
 * would stay for the whole TTL. Purging again when the replicas have the write (or after
 * `maxWaitMs`, the router's lag bound) limits that to the replication lag. The writer itself never
 * sees the old value: its cookie routes its reads to an up-to-date node and bypasses the cache.
 * Without replicas (the embedded database) this does nothing.
 */
export function createReplicaPurge(db: DbRouter, cache: Cache, logger: Logger, options: { maxWaitMs?: number; pollMs?: number; settleMs?: number } = {}) {
  const maxWaitMs = options.maxWaitMs ?? 5_000
  const pollMs = options.pollMs ?? 100
  const settleMs = options.settleMs ?? 1_000
  let pending: Array<{ tags: readonly string[]; lsn: bigint; at: number }> = []
  let running = false

  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref())

  async function loop(): Promise<void> {
    running = true
    try {
      while (pending.length > 0) {
        await sleep(pollMs)
        const { replicas } = await db.refresh()
        const live = replicas.filter((r) => r.healthy)
        const replayed = live.length === 0 ? 0n : live.map((r) => parseLsn(r.replayLsn) ?? 0n).reduce((a, b) => (a < b ? a : b))
        const now = Date.now()
        const due = pending.filter((p) => p.lsn <= replayed || live.length === 0 || now - p.at >= maxWaitMs)
        if (due.length === 0) continue
        pending = pending.filter((p) => !due.includes(p))
        const tags = [...new Set(due.flatMap((p) => p.tags))]
        await cache.invalidateTags(tags)
        // A replica read that started before the replay can still store the old value after this
        // purge (the store runs off the request path): once more when such reads have finished.
        // Seen under chaos (Redis just restarted, slow L2 writes): stale reads past the second purge.
        void sleep(settleMs).then(() => cache.invalidateTags(tags)).catch((error: unknown) => logger.warn({ err: error }, 'settle purge after replication failed; cached values expire by their TTL'))
      }
    } catch (error) {
      logger.warn({ err: error }, 'second purge after replication failed; cached values expire by their TTL')
      pending = []
    } finally {
      running = false
    }
  }

  return {
    /** Call after a write that purged `tags`; returns at once (the second purge runs in the background). */
    async afterWrite(tags: readonly string[]): Promise<void> {
      if (db.status().replicas.length === 0) return
      try {
        const { rows } = await db.primary.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')
        pending.push({ tags, lsn: parseLsn((rows[0] as { lsn: string }).lsn) ?? 0n, at: Date.now() })
        if (!running) void loop()
      } catch (error) {
        logger.warn({ err: error }, 'cannot read the WAL position for the second purge')
      }
    },
  }
}

export type ReplicaPurge = ReturnType<typeof createReplicaPurge>
