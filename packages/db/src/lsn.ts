/**
 * PostgreSQL WAL positions (`pg_lsn`, text form `16/B374D848`) as exact 64-bit integers.
 */

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/

/**
 * Parses a `pg_lsn` text (`16/B374D848`) into a bigint, or `undefined` when it is not one.
 *
 * @example
 * parseLsn('0/16B3748') // 23803720n
 * parseLsn('nope')      // undefined
 */
export function parseLsn(text: unknown): bigint | undefined {
  if (typeof text !== 'string') return undefined
  const m = LSN_RE.exec(text)
  if (!m) return undefined
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`)
}

/**
 * Renders a bigint position in PostgreSQL's `pg_lsn` text form.
 *
 * @example
 * formatLsn(23803720n) // '0/16B3748'
 */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}
