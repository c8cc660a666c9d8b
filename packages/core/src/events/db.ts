/** Events @ri/db publishes. */
export interface DbEvents {
  /** One statement ran on a node. */
  'db.query': {
    readonly role: 'primary' | 'replica'
    readonly node: string
    /**
     * Why it went there: `read` / `explicit` (replica); `write`, `locking`, `volatile`, `hint`,
     * `multi-statement`, `transaction`, `unknown`, `unparseable`, `learned`, `explicit`,
     * `read-your-writes`, `no-replica`, `replica-error` (primary).
     */
    readonly reason: string
    /** Statement kind: `select`, `show`, `explain`, `insert`, `update`, `delete`, `ddl`, ... */
    readonly kind: string
    readonly durationMs: number
    readonly ok: boolean
  }
  /** A read that could have gone to a replica went to the primary. */
  'db.fallback': {
    /** `read-your-writes` | `no-replica` | `replica-error` */
    readonly reason: string
    /** The replica that failed (for `replica-error`). */
    readonly node?: string
  }
  /** Measured after every health probe of a replica. */
  'db.replica.lag': {
    readonly node: string
    /** Replication lag in ms; -1 when unknown (probe failed). */
    readonly lagMs: number
    readonly healthy: boolean
    /** Bytes of WAL the replica has not replayed yet, when known. */
    readonly lagBytes?: number
  }
  /** A replica left or rejoined the rotation. */
  'db.replica.state': {
    readonly node: string
    readonly healthy: boolean
    /** `ok` | `ping-failed` | `lagging` | `query-failed` | `not-in-recovery` */
    readonly reason: string
  }
}
