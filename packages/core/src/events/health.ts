/** Events @ri/health and @ri/slowlog publish. */
export interface HealthEvents {
  'health.check': {
    readonly name: string
    readonly status: 'pass' | 'warn' | 'fail'
    readonly durationMs: number
  }
  'health.state': { readonly state: 'starting' | 'ready' | 'draining' | 'stopped' }
  /** A feature reports (or clears) a degradation that readiness shows as `warn`. */
  'health.degradation': { readonly component: string; readonly degraded: boolean; readonly output?: string }
  'slowlog.slow': { readonly method: string; readonly route: string | undefined; readonly durationMs: number }
}
