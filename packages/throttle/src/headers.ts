/**
 * Rate-limit response headers.
 *
 * IETF draft-ietf-httpapi-ratelimit-headers (revision 11, May 2026), structured-field syntax:
 *   RateLimit-Policy: "burst";q=100;w=60,"daily";q=1000;w=86400   (policy name is an sf-string)
 *   RateLimit: "burst";r=50;t=30                                   (r = quota left, t = seconds)
 * Legacy (de-facto, as GitHub / express-rate-limit / @nestjs/throttler):
 *   X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (seconds until reset, like @nestjs/throttler).
 */

/**
 * Which rate-limit headers responses carry.
 *
 * @example
 * createThrottle({ headers: 'both' })
 */
export type HeadersMode = 'ietf' | 'legacy' | 'both' | false

export const HEADER_MODES = ['ietf', 'legacy', 'both'] as const

/** Problem type the draft registers for "quota exceeded" (RFC 9457 problem details). */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded'

/**
 * Serialises `value` as a structured-field String (RFC 9651 §4.1.6): printable ASCII only,
 * with `"` and `\` escaped. Other characters are replaced by `_` (policy names come from
 * configuration, so this only guards against surprises).
 */
export function sfString(value: string): string {
  let out = '"'
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === 0x22 || c === 0x5c) out += `\\${value[i]}`
    else if (c < 0x20 || c > 0x7e) out += '_'
    else out += value[i]
  }
  return `${out}"`
}

/** One `RateLimit-Policy` list member: `"name";q=100;w=60`. */
export function policyItem(sfName: string, quota: number, windowSec: number): string {
  return `${sfName};q=${quota};w=${windowSec}`
}

/** One `RateLimit` list member: `"name";r=50;t=30`. `t` is rounded up so clients never retry early. */
export function serviceLimitItem(sfName: string, remaining: number, resetMs: number): string {
  return `${sfName};r=${remaining > 0 ? remaining : 0};t=${resetMs > 0 ? Math.ceil(resetMs / 1000) : 0}`
}

/** Seconds for `Retry-After` / `X-RateLimit-Reset`: whole seconds, rounded up, at least 1 when positive. */
export function ceilSeconds(ms: number): number {
  return ms > 0 ? Math.ceil(ms / 1000) : 0
}
