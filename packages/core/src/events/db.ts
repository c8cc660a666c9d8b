/** Events @ri/db publishes. */
export interface DbEvents {
  'db.query': {
    readonly role: 'primary' | 'replica'
    readonly node: string
    readonly reason: string
    readonly durationMs: number
    readonly ok: boolean
  }
  'db.fallback': { readonly reason: string }
  'db.replica.lag': { readonly node: string; readonly lagMs: number; readonly healthy: boolean }
}
