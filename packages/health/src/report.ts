import type { CheckEntry, HealthBody, HealthStatus, TerminusBody } from './types.js'

/** Probe answers carry these headers; built once and shared by every answer. */
export const HEALTH_JSON_HEADERS = Object.freeze({
  'content-type': 'application/health+json; charset=utf-8',
  'cache-control': 'no-store',
})
export const TERMINUS_HEADERS = Object.freeze({
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
})

/** HTTP status for a probe status: the draft requires 2xx-3xx for pass/warn and 4xx-5xx for fail. */
export function httpStatusOf(status: HealthStatus): number {
  return status === 'fail' ? 503 : 200
}

type TerminusIndicator = { status: 'up' | 'down'; [key: string]: unknown }

/**
 * The @nestjs/terminus shape of a health+json document: `status` ok|error|shutting_down,
 * `info` (up), `error` (down) and `details` (all), keyed by check name. A `warn` is `up` with
 * a `message`, since terminus has no warn level.
 */
export function toTerminus(body: HealthBody, shuttingDown: boolean): TerminusBody {
  const info: Record<string, TerminusIndicator> = {}
  const error: Record<string, TerminusIndicator> = {}
  const details: Record<string, TerminusIndicator> = {}
  for (const [key, entries] of Object.entries(body.checks ?? {})) {
    const indicator = terminusIndicator(entries)
    details[key] = indicator
    if (indicator.status === 'up') info[key] = indicator
    else error[key] = indicator
  }
  const status = shuttingDown ? 'shutting_down' : body.status === 'fail' ? 'error' : 'ok'
  const out: TerminusBody & { message?: string } = { status, info, error, details }
  if (body.output !== undefined && status !== 'ok') out.message = body.output
  return out
}

function terminusIndicator(entries: readonly CheckEntry[]): TerminusIndicator {
  const down = entries.some((e) => e.status === 'fail')
  const indicator: TerminusIndicator = { status: down ? 'down' : 'up' }
  const messages = entries.filter((e) => e.status !== 'pass' && e.output).map((e) => e.output!)
  if (messages.length > 0) indicator.message = messages.join('; ')
  if (entries.length === 1) {
    const e = entries[0]!
    if (e.observedValue !== undefined) indicator.observedValue = e.observedValue
    if (e.observedUnit !== undefined) indicator.observedUnit = e.observedUnit
  } else {
    indicator.nodes = entries
  }
  return indicator
}

/** A body that only says the status (details hidden from this caller). */
export function statusOnly(status: HealthStatus, terminus: boolean, shuttingDown = false): string {
  if (!terminus) return JSON.stringify({ status })
  return JSON.stringify({ status: shuttingDown ? 'shutting_down' : status === 'fail' ? 'error' : 'ok' })
}
