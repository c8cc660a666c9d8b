/**
 * Statement classification: decides whether a SQL text is *certainly* read-only (a replica may
 * run it) or must go to the primary. A real tokenizer (comments, string literals, dollar quotes,
 * quoted identifiers) feeds a small analyzer; anything it is not sure about goes to the primary.
 */

/** Where a statement may run. */
export type StatementTarget = 'primary' | 'replica'

/** What kind of statement it is (bounded set, usable as a metrics label). */
export type StatementKind =
  | 'select'
  | 'show'
  | 'explain'
  | 'insert'
  | 'update'
  | 'delete'
  | 'merge'
  | 'copy'
  | 'ddl'
  | 'transaction'
  | 'session'
  | 'call'
  | 'lock'
  | 'multi'
  | 'empty'
  | 'other'

/**
 * Why a statement was sent where it was (bounded set). `read` is the only replica reason.
 */
export type StatementReason =
  | 'read'
  | 'write'
  | 'locking'
  | 'volatile'
  | 'hint'
  | 'multi-statement'
  | 'transaction'
  | 'unknown'
  | 'unparseable'
  | 'learned'

/** The classifier's verdict for one SQL text. */
export interface Classification {
  readonly target: StatementTarget
  readonly kind: StatementKind
  readonly reason: StatementReason
  /** The statement may change data (so a read-your-writes position is recorded after it). */
  readonly mayWrite: boolean
}

export interface ClassifierOptions {
  /** Functions that write or must see the primary (`my_fn`, `audit.log_event`), case-insensitive. */
  readonly volatileFunctions?: readonly string[]
}

/**
 * Built-in functions that write, take locks, or only work (meaningfully) on a primary.
 * Matched on the unqualified name; prefixes below cover families.
 */
const BUILTIN_VOLATILE = new Set([
  'nextval',
  'setval',
  'currval',
  'lastval',
  'pg_notify',
  'txid_current',
  'pg_current_xact_id',
  'set_config',
  'lo_create',
  'lo_creat',
  'lo_import',
  'lo_unlink',
  'lo_put',
  'lo_from_bytea',
  'lo_open',
  'lo_truncate',
  'lowrite',
  'dblink_exec',
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_logical_emit_message',
  'pg_promote',
  'pg_import_system_collations',
  'pg_nextoid',
])
const VOLATILE_PREFIXES = ['pg_advisory', 'pg_try_advisory', 'pg_stat_reset', 'pg_create_', 'pg_drop_', 'pg_replication_', 'pg_current_wal', 'pg_copy_', 'pg_backup_', 'pg_start_backup', 'pg_stop_backup']

/** Words that make a SELECT/WITH a write when they appear unquoted anywhere in it. */
const WRITE_WORDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'INTO', 'TRUNCATE', 'COPY', 'CREATE', 'DROP', 'ALTER', 'GRANT', 'REVOKE'])

const KIND_BY_KEYWORD: Readonly<Record<string, StatementKind>> = Object.assign(Object.create(null), {
  INSERT: 'insert',
  UPDATE: 'update',
  DELETE: 'delete',
  MERGE: 'merge',
  COPY: 'copy',
  BEGIN: 'transaction',
  START: 'transaction',
  COMMIT: 'transaction',
  END: 'transaction',
  ROLLBACK: 'transaction',
  ABORT: 'transaction',
  SAVEPOINT: 'transaction',
  RELEASE: 'transaction',
  PREPARE: 'transaction',
  CREATE: 'ddl',
  ALTER: 'ddl',
  DROP: 'ddl',
  TRUNCATE: 'ddl',
  COMMENT: 'ddl',
  GRANT: 'ddl',
  REVOKE: 'ddl',
  REINDEX: 'ddl',
  CLUSTER: 'ddl',
  VACUUM: 'ddl',
  ANALYZE: 'ddl',
  ANALYSE: 'ddl',
  REFRESH: 'ddl',
  SECURITY: 'ddl',
  IMPORT: 'ddl',
  SET: 'session',
  RESET: 'session',
  DISCARD: 'session',
  CALL: 'call',
  DO: 'call',
  LOCK: 'lock',
})

const READ_STARTS = new Set(['SELECT', 'WITH', 'VALUES', 'TABLE'])

const c = (target: StatementTarget, kind: StatementKind, reason: StatementReason, mayWrite: boolean): Classification =>
  Object.freeze({ target, kind, reason, mayWrite })

const EMPTY = c('primary', 'empty', 'unknown', false)
const UNPARSEABLE = c('primary', 'other', 'unparseable', true)
const MULTI = c('primary', 'multi', 'multi-statement', true)
const READ_SELECT = c('replica', 'select', 'read', false)
const READ_SHOW = c('replica', 'show', 'read', false)
const READ_EXPLAIN = c('replica', 'explain', 'read', false)

// Token markers (real words are upper-cased identifiers/keywords and never start with these).
const T_STRING = "'"
const T_QIDENT = '"'
const T_NUMBER = '0'
const T_PARAM = '$'

interface Lexed {
  tokens: string[]
  hint: boolean
  error: boolean
}

const HINT_RE = /\bri:primary\b/i

function isIdentStart(ch: number): boolean {
  return (ch >= 65 && ch <= 90) || (ch >= 97 && ch <= 122) || ch === 95 || ch >= 128
}
function isIdentPart(ch: number): boolean {
  return isIdentStart(ch) || (ch >= 48 && ch <= 57) || ch === 36
}
function isDigit(ch: number): boolean {
  return ch >= 48 && ch <= 57
}

/** Ends a quoted run started at `i` (the opening quote). Returns the index after the closing quote, or -1. */
function endQuoted(sql: string, i: number, quote: number, backslashEscapes: boolean): number {
  const n = sql.length
  let j = i + 1
  while (j < n) {
    const ch = sql.charCodeAt(j)
    if (backslashEscapes && ch === 92) {
      j += 2
      continue
    }
    if (ch === quote) {
      if (sql.charCodeAt(j + 1) === quote) {
        j += 2
        continue
      }
      return j + 1
    }
    j++
  }
  return -1
}

/** Tokenizes SQL the way PostgreSQL's lexer splits it (standard_conforming_strings = on). */
export function lex(sql: string): Lexed {
  const tokens: string[] = []
  let hint = false
  const n = sql.length
  let i = 0
  while (i < n) {
    const ch = sql.charCodeAt(i)
    // whitespace
    if (ch === 32 || ch === 9 || ch === 10 || ch === 13 || ch === 12 || ch === 11) {
      i++
      continue
    }
    // -- line comment
    if (ch === 45 && sql.charCodeAt(i + 1) === 45) {
      let j = sql.indexOf('\n', i + 2)
      if (j === -1) j = n
      if (HINT_RE.test(sql.slice(i + 2, j))) hint = true
      i = j
      continue
    }
    // /* nested block comment */
    if (ch === 47 && sql.charCodeAt(i + 1) === 42) {
      let depth = 1
      let j = i + 2
      while (j < n && depth > 0) {
        const a = sql.charCodeAt(j)
        const b = sql.charCodeAt(j + 1)
        if (a === 47 && b === 42) {
          depth++
          j += 2
        } else if (a === 42 && b === 47) {
          depth--
          j += 2
        } else j++
      }
      if (depth > 0) return { tokens, hint, error: true }
      if (HINT_RE.test(sql.slice(i + 2, j - 2))) hint = true
      i = j
      continue
    }
    // 'standard string'
    if (ch === 39) {
      const j = endQuoted(sql, i, 39, false)
      if (j === -1) return { tokens, hint, error: true }
      tokens.push(T_STRING)
      i = j
      continue
    }
    // "quoted identifier"
    if (ch === 34) {
      const j = endQuoted(sql, i, 34, false)
      if (j === -1) return { tokens, hint, error: true }
      // kept with its name (function calls may be quoted); never equal to a keyword
      tokens.push(T_QIDENT + sql.slice(i + 1, j - 1))
      i = j
      continue
    }
    // $1 parameter or $tag$ dollar quote
    if (ch === 36) {
      const next = sql.charCodeAt(i + 1)
      if (isDigit(next)) {
        let j = i + 1
        while (j < n && isDigit(sql.charCodeAt(j))) j++
        tokens.push(T_PARAM)
        i = j
        continue
      }
      let j = i + 1
      if (next !== 36) {
        if (!isIdentStart(next)) {
          i++ // a lone '$' (operator character)
          continue
        }
        while (j < n && isIdentPart(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j++
        if (sql.charCodeAt(j) !== 36) {
          i = j // not a dollar tag: treat as operator + word fragments
          continue
        }
      }
      const tag = sql.slice(i, j + 1)
      const close = sql.indexOf(tag, j + 1)
      if (close === -1) return { tokens, hint, error: true }
      tokens.push(T_STRING)
      i = close + tag.length
      continue
    }
    if (isIdentStart(ch)) {
      let j = i + 1
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++
      const after = sql.charCodeAt(j)
      if (j === i + 1 && after === 39) {
        // E'..' escape string; B'..', X'..', N'..' behave like standard strings
        const escape = ch === 69 || ch === 101
        const end = endQuoted(sql, j, 39, escape)
        if (end === -1) return { tokens, hint, error: true }
        tokens.push(T_STRING)
        i = end
        continue
      }
      if (j === i + 1 && (ch === 85 || ch === 117) && after === 38) {
        // U&'..' / U&".."
        const q = sql.charCodeAt(j + 1)
        if (q === 39 || q === 34) {
          const end = endQuoted(sql, j + 1, q, false)
          if (end === -1) return { tokens, hint, error: true }
          tokens.push(q === 39 ? T_STRING : T_QIDENT + sql.slice(j + 2, end - 1))
          i = end
          continue
        }
      }
      tokens.push(sql.slice(i, j).toUpperCase())
      i = j
      continue
    }
    if (isDigit(ch) || (ch === 46 && isDigit(sql.charCodeAt(i + 1)))) {
      let j = i + 1
      while (j < n) {
        const d = sql.charCodeAt(j)
        if (isDigit(d) || d === 46 || d === 95 || (d >= 65 && d <= 90) || (d >= 97 && d <= 122)) j++
        else break
      }
      tokens.push(T_NUMBER)
      i = j
      continue
    }
    if (ch === 40 || ch === 41 || ch === 59 || ch === 44 || ch === 46) {
      tokens.push(sql[i]!)
      i++
      continue
    }
    i++ // operators and everything else carry no routing meaning
  }
  return { tokens, hint, error: false }
}

/**
 * Creates a classifier. Pure function of the SQL text (the router caches its results).
 *
 * @example
 * const classify = createClassifier({ volatileFunctions: ['audit.log_event'] })
 * classify('SELECT * FROM users WHERE id = $1').target  // 'replica'
 * classify('SELECT * FROM jobs FOR UPDATE SKIP LOCKED').target // 'primary'
 */
export function createClassifier(options: ClassifierOptions = {}): (sql: string) => Classification {
  const userQualified = new Set<string>()
  const userBare = new Set<string>()
  for (const name of options.volatileFunctions ?? []) {
    const lower = name.toLowerCase()
    if (lower.includes('.')) userQualified.add(lower)
    else userBare.add(lower)
  }

  const isVolatile = (tokens: string[], idx: number): boolean => {
    const token = tokens[idx]!
    const name = (token.charCodeAt(0) === 34 ? token.slice(1) : token).toLowerCase()
    if (BUILTIN_VOLATILE.has(name) || userBare.has(name)) return true
    for (const p of VOLATILE_PREFIXES) if (name.startsWith(p)) return true
    if (userQualified.size > 0 && tokens[idx - 1] === '.' && idx >= 2) {
      const schema = tokens[idx - 2]!
      const schemaName = (schema.charCodeAt(0) === 34 ? schema.slice(1) : schema).toLowerCase()
      if (userQualified.has(`${schemaName}.${name}`)) return true
    }
    return false
  }

  const analyzeQuery = (tokens: string[], start: number, end: number): Classification => {
    for (let k = start; k < end; k++) {
      const t = tokens[k]!
      if (t === 'UPDATE' || t === 'SHARE') {
        const p1 = tokens[k - 1]
        const p2 = tokens[k - 2]
        const p3 = tokens[k - 3]
        if (p1 === 'FOR' || (p1 === 'KEY' && (p2 === 'FOR' || (p2 === 'NO' && p3 === 'FOR')))) return LOCKING
      }
      if (WRITE_WORDS.has(t)) return WRITE_IN_QUERY
      if (tokens[k + 1] === '(' && (isIdentStart(t.charCodeAt(0)) || t.charCodeAt(0) === 34) && isVolatile(tokens, k)) return VOLATILE
    }
    return READ_SELECT
  }

  const analyzeStatement = (tokens: string[], start: number, end: number): Classification => {
    let s = start
    while (s < end && tokens[s] === '(') s++
    const first = tokens[s]
    if (first === undefined) return EMPTY
    if (READ_STARTS.has(first)) return analyzeQuery(tokens, s, end)
    if (s !== start) return UNKNOWN // '(' followed by something other than a query
    if (first === 'SHOW') return READ_SHOW
    if (first === 'EXPLAIN') {
      let j = s + 1
      let analyze = false
      if (tokens[j] === '(') {
        j++
        while (j < end && tokens[j] !== ')') {
          const w = tokens[j]
          if (w === 'ANALYZE' || w === 'ANALYSE') {
            const v = tokens[j + 1]
            analyze = !(v === 'FALSE' || v === 'OFF')
          }
          j++
        }
        j++
      } else {
        while (tokens[j] === 'ANALYZE' || tokens[j] === 'ANALYSE' || tokens[j] === 'VERBOSE') {
          if (tokens[j] !== 'VERBOSE') analyze = true
          j++
        }
      }
      let inner = j
      while (inner < end && tokens[inner] === '(') inner++
      const innerFirst = tokens[inner]
      if (innerFirst === undefined) return UNKNOWN
      const innerResult = analyzeStatement(tokens, j, end)
      if (innerResult.target === 'replica') return READ_EXPLAIN
      if (!analyze && EXPLAINABLE_WRITES.has(innerFirst)) return READ_EXPLAIN
      return analyze ? EXPLAIN_ANALYZE_WRITE : UNKNOWN
    }
    const kind = KIND_BY_KEYWORD[first]
    if (kind === undefined) return UNKNOWN
    return PRIMARY_BY_KIND[kind]!
  }

  return (sql: string): Classification => {
    const { tokens, hint, error } = lex(sql)
    if (error) return UNPARSEABLE
    let result: Classification | undefined
    let start = 0
    let depth = 0
    let statements = 0
    for (let k = 0; k <= tokens.length; k++) {
      const t = tokens[k]
      if (t === '(') depth++
      else if (t === ')') depth--
      else if ((t === ';' && depth <= 0) || t === undefined) {
        if (k > start) {
          statements++
          if (statements > 1) return MULTI
          result = analyzeStatement(tokens, start, k)
        }
        start = k + 1
        depth = 0
      }
    }
    if (result === undefined) return EMPTY
    if (hint && result.target === 'replica') return HINTED[result.kind] ?? c('primary', result.kind, 'hint', false)
    return result
  }
}

const LOCKING = c('primary', 'select', 'locking', false)
const WRITE_IN_QUERY = c('primary', 'select', 'write', true)
const VOLATILE = c('primary', 'select', 'volatile', true)
const UNKNOWN = c('primary', 'other', 'unknown', true)
const EXPLAIN_ANALYZE_WRITE = c('primary', 'explain', 'write', true)
const EXPLAINABLE_WRITES = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE'])
const HINTED: Partial<Record<StatementKind, Classification>> = {
  select: c('primary', 'select', 'hint', false),
  show: c('primary', 'show', 'hint', false),
  explain: c('primary', 'explain', 'hint', false),
}
const PRIMARY_BY_KIND: Partial<Record<StatementKind, Classification>> = {
  insert: c('primary', 'insert', 'write', true),
  update: c('primary', 'update', 'write', true),
  delete: c('primary', 'delete', 'write', true),
  merge: c('primary', 'merge', 'write', true),
  copy: c('primary', 'copy', 'write', true),
  ddl: c('primary', 'ddl', 'write', true),
  transaction: c('primary', 'transaction', 'transaction', true),
  session: c('primary', 'session', 'unknown', false),
  call: c('primary', 'call', 'write', true),
  lock: c('primary', 'lock', 'locking', true),
}

/** The verdict used for a statement a replica refused as a write (SQLSTATE 25006). */
export const LEARNED_WRITE: Classification = c('primary', 'other', 'learned', true)

/**
 * A bounded LRU cache in front of a classifier: the hot path is one Map lookup per query.
 * SQL texts longer than `maxSqlLength` are classified every time (huge generated statements
 * would otherwise pin memory).
 */
export interface ClassifierCache {
  get(sql: string): Classification
  /** Replaces the verdict for `sql` (the router learns writes a replica refused). */
  learn(sql: string, verdict: Classification): void
  readonly size: number
}

export function createClassifierCache(classify: (sql: string) => Classification, max: number, maxSqlLength = 16_384): ClassifierCache {
  interface Entry {
    verdict: Classification
    /** Insertion tick when the entry was (re)inserted: its distance from the eviction end. */
    tick: number
  }
  const map = new Map<string, Entry>()
  let tick = 0
  const half = Math.max(1, max >> 1)
  const insert = (sql: string, verdict: Classification) => {
    if (map.size >= max) map.delete(map.keys().next().value!)
    map.set(sql, { verdict, tick: ++tick })
  }
  return {
    get(sql) {
      const hit = map.get(sql)
      if (hit !== undefined) {
        // LRU without reordering on every hit: an entry moves to the young end only once it has
        // drifted past the middle (hot statements cost one Map lookup, eviction stays LRU-like)
        if (tick - hit.tick >= half) {
          map.delete(sql)
          hit.tick = ++tick
          map.set(sql, hit)
        }
        return hit.verdict
      }
      const verdict = classify(sql)
      if (max > 0 && sql.length <= maxSqlLength) insert(sql, verdict)
      return verdict
    },
    learn(sql, verdict) {
      if (max > 0 && sql.length <= maxSqlLength) {
        map.delete(sql)
        insert(sql, verdict)
      }
    },
    get size() {
      return map.size
    },
  }
}
