import { Registry } from 'prom-client'

/** Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
/** OpenMetrics 1.0.0 (the only format that carries exemplars). */
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8'

export type ExpositionFormat = 'prometheus' | 'openmetrics'

/**
 * Picks the exposition format from an `Accept` header. OpenMetrics wins only when the client
 * asks for it (version 1.0.0 or 0.0.1, or no version) with a quality at least that of
 * `text/plain`; browsers, curl and anything unknown get the Prometheus text format.
 *
 * @example
 * negotiate('application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5') // 'openmetrics'
 * negotiate('*\/*') // 'prometheus'
 */
export function negotiate(accept: string | undefined): ExpositionFormat {
  if (!accept || !accept.includes('openmetrics')) return 'prometheus'
  let om = 0
  let text = 0
  for (const part of accept.split(',')) {
    const params = part.split(';')
    const type = params[0]!.trim().toLowerCase()
    let q = 1
    let version: string | undefined
    for (let i = 1; i < params.length; i++) {
      const eq = params[i]!.indexOf('=')
      if (eq === -1) continue
      const key = params[i]!.slice(0, eq).trim().toLowerCase()
      const value = params[i]!.slice(eq + 1).trim()
      if (key === 'q') {
        const n = Number(value)
        q = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0
      } else if (key === 'version') version = value
    }
    if (type === 'application/openmetrics-text') {
      if (version === undefined || version === '1.0.0' || version === '0.0.1') om = Math.max(om, q)
    } else if (type === 'text/plain' || type === '*/*' || type === 'text/*') {
      text = Math.max(text, type === 'text/plain' ? q : q * 0.999)
    }
  }
  return om > 0 && om >= text ? 'openmetrics' : 'prometheus'
}

type AnyRegistry = Registry<any>
interface MetricLike {
  name: string
  help: string
  type: string
  aggregator?: string
  get(): Promise<{ name: string; values?: unknown[] } & Record<string, unknown>>
  getForPromString?(): Promise<{ name: string; values?: unknown[] } & Record<string, unknown>>
}

/**
 * Renders a registry in either format without touching the registry's own content type.
 * prom-client renames counters in place when it renders OpenMetrics (it strips `_total`), so
 * rendering the same registry both ways would corrupt the Prometheus output; we render through
 * a throwaway registry of the wanted type holding read-only views of the metrics instead.
 */
export async function render(registry: AnyRegistry, format: ExpositionFormat): Promise<string> {
  const wanted = format === 'openmetrics' ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE
  if (registry.contentType === wanted && format === 'prometheus') return registry.metrics()
  const out: AnyRegistry = new (Registry as unknown as new (type: string) => AnyRegistry)(wanted)
  const defaults = (registry as unknown as { _defaultLabels?: Record<string, string> })._defaultLabels
  if (defaults && Object.keys(defaults).length > 0) out.setDefaultLabels(defaults)
  for (const m of registry.getMetricsAsArray() as unknown as MetricLike[]) {
    const isCounter = m.type === 'counter' && format === 'openmetrics'
    const read = m.getForPromString ? () => m.getForPromString!() : () => m.get()
    const view = {
      name: m.name,
      help: m.help,
      type: m.type,
      aggregator: m.aggregator,
      get: async () => {
        const data = await read()
        return isCounter ? { ...data, name: data.name.replace(/_total$/, '') } : data
      },
    }
    out.registerMetric(view as never)
  }
  return out.metrics()
}
