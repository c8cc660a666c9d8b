/** Events @ri/health and @ri/slowlog publish. */
export interface HealthEvents {
  /** One readiness check ran (once per refresh, not once per probe: results are cached). */
  'health.check': {
    readonly name: string
    readonly status: 'pass' | 'warn' | 'fail'
    readonly durationMs: number
  }
  /** The probes' lifecycle moved: `starting` → `ready` (startup done) → `draining` (shutdown began, readiness 503) → `stopped`. */
  'health.state': { readonly state: 'starting' | 'ready' | 'draining' | 'stopped' }
  /** A feature reports (or clears) a degradation that readiness shows as `warn`. */
  'health.degradation': { readonly component: string; readonly degraded: boolean; readonly output?: string }
  'slowlog.slow': { readonly method: string; readonly route: string | undefined; readonly durationMs: number }
}
