import { describe, expect, it } from 'vitest'
import { createClassifier, createClassifierCache, lex } from './classify.js'

const classify = createClassifier({ volatileFunctions: ['touch_user', 'audit.log_event', 'Quoted Fn'] })

type Row = readonly [sql: string, target: 'primary' | 'replica', reason: string, kind?: string]

const R = 'replica'
const P = 'primary'

// [sql, target, reason, kind?]
const TABLE: readonly Row[] = [
  // plain reads
  ['SELECT 1', R, 'read', 'select'],
  ['select * from users where id = $1', R, 'read', 'select'],
  ['  \n\tSELECT id FROM users;', R, 'read', 'select'],
  ['SELECT id FROM users;;', R, 'read', 'select'],
  ['(SELECT 1) UNION (SELECT 2)', R, 'read', 'select'],
  ['VALUES (1), (2)', R, 'read', 'select'],
  ['TABLE users', R, 'read', 'select'],
  ['WITH u AS (SELECT * FROM users) SELECT * FROM u', R, 'read', 'select'],
  ['WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n+1 FROM t WHERE n < 10) SELECT sum(n) FROM t', R, 'read', 'select'],
  ['SELECT count(*), max(created_at) FROM orders GROUP BY user_id HAVING count(*) > 2', R, 'read', 'select'],
  ['SELECT * FROM users WHERE name = \'INSERT INTO users\'', R, 'read', 'select'],
  ["SELECT 'it''s; DELETE FROM users' AS s", R, 'read', 'select'],
  ["SELECT E'\\' ; DELETE FROM t; --' AS s", R, 'read', 'select'],
  ["SELECT e'a\\'b', 'c'", R, 'read', 'select'],
  ['SELECT $$ DROP TABLE users; $$', R, 'read', 'select'],
  ['SELECT $body$ UPDATE x SET y = 1 $body$ AS code', R, 'read', 'select'],
  ['SELECT $a$ $b$ INSERT $b$ $a$', R, 'read', 'select'],
  ['SELECT "insert", "update" FROM "delete"', R, 'read', 'select'],
  ['SELECT 1 -- INSERT INTO t VALUES (1)', R, 'read', 'select'],
  ['SELECT 1 /* DELETE FROM t; */', R, 'read', 'select'],
  ['SELECT 1 /* outer /* nested ; UPDATE t SET a = 1 */ still comment */', R, 'read', 'select'],
  ['/* leading */ -- and line\nSELECT now()', R, 'read', 'select'],
  ["SELECT U&'d\\0061t\\+000061' AS x", R, 'read', 'select'],
  ['SELECT U&"d\\0061t" FROM t', R, 'read', 'select'],
  ["SELECT B'1010', X'1F', N'text'", R, 'read', 'select'],
  ['SELECT a$b FROM t', R, 'read', 'select'],
  ['SELECT 1.5e10, .5, 0x1F', R, 'read', 'select'],
  ['SELECT lower(name), coalesce(a, b) FROM t', R, 'read', 'select'],
  ['SELECT * FROM t WHERE id IN (SELECT id FROM s) AND EXISTS (SELECT 1)', R, 'read', 'select'],
  ['SELECT pg_last_wal_replay_lsn()', R, 'read', 'select'],
  ['SHOW server_version', R, 'read', 'show'],
  ['show transaction_read_only', R, 'read', 'show'],
  ['EXPLAIN SELECT * FROM users', R, 'read', 'explain'],
  ['EXPLAIN ANALYZE SELECT * FROM users', R, 'read', 'explain'],
  ['EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT 1', R, 'read', 'explain'],
  ['EXPLAIN INSERT INTO t VALUES (1)', R, 'read', 'explain'],
  ['EXPLAIN (ANALYZE false) DELETE FROM t', R, 'read', 'explain'],
  ['EXPLAIN VERBOSE UPDATE t SET a = 1', R, 'read', 'explain'],

  // writes
  ['INSERT INTO users (name) VALUES ($1)', P, 'write', 'insert'],
  ['insert into t select * from s', P, 'write', 'insert'],
  ['UPDATE users SET name = $1 WHERE id = $2', P, 'write', 'update'],
  ['DELETE FROM users WHERE id = $1 RETURNING *', P, 'write', 'delete'],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a', P, 'write', 'merge'],
  ['INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET n = t.n + 1', P, 'write', 'insert'],
  ['COPY t FROM STDIN', P, 'write', 'copy'],
  ['COPY (SELECT * FROM t) TO STDOUT', P, 'write', 'copy'],
  ['CREATE TABLE t (id int)', P, 'write', 'ddl'],
  ['CREATE TABLE t2 AS SELECT * FROM t', P, 'write', 'ddl'],
  ['ALTER TABLE t ADD COLUMN x int', P, 'write', 'ddl'],
  ['DROP TABLE IF EXISTS t', P, 'write', 'ddl'],
  ['TRUNCATE t', P, 'write', 'ddl'],
  ['VACUUM ANALYZE t', P, 'write', 'ddl'],
  ['ANALYZE t', P, 'write', 'ddl'],
  ['REFRESH MATERIALIZED VIEW mv', P, 'write', 'ddl'],
  ['CALL do_things(1)', P, 'write', 'call'],
  ["DO $$ BEGIN PERFORM 1; END $$", P, 'write', 'call'],

  // data-modifying CTEs and SELECTs that write
  ['WITH ins AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM ins', P, 'write', 'select'],
  ['WITH d AS (DELETE FROM t WHERE a < 0 RETURNING *) SELECT count(*) FROM d', P, 'write', 'select'],
  ['WITH u AS (SELECT 1) UPDATE t SET a = 1', P, 'write', 'select'],
  ['SELECT * INTO backup FROM users', P, 'write', 'select'],
  ['EXPLAIN ANALYZE INSERT INTO t VALUES (1)', P, 'write', 'explain'],
  ['EXPLAIN (ANALYZE) DELETE FROM t', P, 'write', 'explain'],
  ['EXPLAIN ANALYSE WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x', P, 'write', 'explain'],

  // locking reads
  ['SELECT * FROM jobs WHERE id = $1 FOR UPDATE', P, 'locking', 'select'],
  ['SELECT * FROM jobs FOR UPDATE SKIP LOCKED LIMIT 1', P, 'locking', 'select'],
  ['select * from jobs for no key update', P, 'locking', 'select'],
  ['SELECT * FROM jobs FOR SHARE', P, 'locking', 'select'],
  ['SELECT * FROM jobs FOR KEY SHARE OF jobs NOWAIT', P, 'locking', 'select'],
  ['WITH j AS (SELECT * FROM jobs FOR UPDATE) SELECT * FROM j', P, 'locking', 'select'],
  ['LOCK TABLE t IN ACCESS EXCLUSIVE MODE', P, 'locking', 'lock'],

  // volatile functions
  ["SELECT nextval('users_id_seq')", P, 'volatile', 'select'],
  ["SELECT setval('s', 10)", P, 'volatile', 'select'],
  ['SELECT pg_advisory_lock(42)', P, 'volatile', 'select'],
  ['SELECT pg_try_advisory_xact_lock(1, 2)', P, 'volatile', 'select'],
  ["SELECT pg_notify('chan', 'hi')", P, 'volatile', 'select'],
  ['SELECT txid_current()', P, 'volatile', 'select'],
  ['SELECT pg_current_wal_lsn()', P, 'volatile', 'select'],
  ['SELECT touch_user($1)', P, 'volatile', 'select'],
  ['SELECT TOUCH_USER($1)', P, 'volatile', 'select'],
  ['SELECT public.touch_user($1)', P, 'volatile', 'select'],
  ['SELECT audit.log_event($1)', P, 'volatile', 'select'],
  ['SELECT "Quoted Fn"()', P, 'volatile', 'select'],
  ['SELECT "nextval"(\'s\')', P, 'volatile', 'select'],
  ['SELECT other.log_event($1)', R, 'read', 'select'],
  ['SELECT log_event($1)', R, 'read', 'select'],

  // transactions and session state
  ['BEGIN', P, 'transaction', 'transaction'],
  ['START TRANSACTION READ ONLY', P, 'transaction', 'transaction'],
  ['COMMIT', P, 'transaction', 'transaction'],
  ['ROLLBACK', P, 'transaction', 'transaction'],
  ['SAVEPOINT s1', P, 'transaction', 'transaction'],
  ['SET search_path = app', P, 'unknown', 'session'],
  ['RESET ALL', P, 'unknown', 'session'],

  // multiple statements
  ['SELECT 1; SELECT 2', P, 'multi-statement', 'multi'],
  ['SELECT 1; DELETE FROM t', P, 'multi-statement', 'multi'],
  ["SELECT 'a;b'; UPDATE t SET a = 1", P, 'multi-statement', 'multi'],
  ["SELECT 'a\\'; DELETE FROM t; --'", P, 'multi-statement', 'multi'],

  // hints
  ['/* ri:primary */ SELECT * FROM users', P, 'hint', 'select'],
  ['SELECT * FROM users -- ri:primary', P, 'hint', 'select'],
  ['/*RI:PRIMARY*/ SHOW search_path', P, 'hint', 'show'],
  ['/* ri:primary */ INSERT INTO t VALUES (1)', P, 'write', 'insert'],
  ["SELECT '/* ri:primary */'", R, 'read', 'select'],

  // unsure: primary
  ['', P, 'unknown', 'empty'],
  ['   ;  ', P, 'unknown', 'empty'],
  ['-- only a comment', P, 'unknown', 'empty'],
  ["SELECT 'unterminated", P, 'unparseable', 'other'],
  ['SELECT 1 /* unterminated', P, 'unparseable', 'other'],
  ['SELECT $x$ unterminated', P, 'unparseable', 'other'],
  ['SELECT "unterminated', P, 'unparseable', 'other'],
  ['EXECUTE stmt(1)', P, 'unknown', 'other'],
  ['FETCH 10 FROM c', P, 'unknown', 'other'],
  ['LISTEN chan', P, 'unknown', 'other'],
  ['EXPLAIN EXECUTE stmt', P, 'unknown', 'other'],
  ['(INSERT INTO t VALUES (1))', P, 'unknown', 'other'],
  ['SELECT update FROM t', P, 'write', 'select'],
]

describe('statement classification', () => {
  it(`has at least 60 cases (${TABLE.length})`, () => {
    expect(TABLE.length).toBeGreaterThanOrEqual(60)
  })

  it.each(TABLE as unknown as Array<[string, string, string, string | undefined]>)('%s → %s (%s)', (sql, target, reason, kind) => {
    const verdict = classify(sql)
    expect({ target: verdict.target, reason: verdict.reason }).toEqual({ target, reason })
    if (kind) expect(verdict.kind).toBe(kind)
    if (verdict.target === 'replica') expect(verdict.mayWrite).toBe(false)
  })

  it('marks writes as mayWrite and locking/hinted reads as not', () => {
    expect(classify('INSERT INTO t VALUES (1)').mayWrite).toBe(true)
    expect(classify('WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x').mayWrite).toBe(true)
    expect(classify('SELECT * FROM t FOR UPDATE').mayWrite).toBe(false)
    expect(classify('/* ri:primary */ SELECT 1').mayWrite).toBe(false)
  })
})

describe('lexer', () => {
  it('skips comments, strings, dollar quotes and keeps parameters apart from dollar tags', () => {
    expect(lex("SELECT $1, $tag$ x $tag$, 'y' -- z\n FROM t").tokens).toEqual(['SELECT', '$', ',', "'", ',', "'", 'FROM', 'T'])
    expect(lex('SELECT 1 /* a /* b */ c */ + 2').tokens).toEqual(['SELECT', '0', '0'])
    expect(lex('/* ri:primary */ SELECT 1').hint).toBe(true)
  })
})

describe('classifier cache', () => {
  it('is bounded, evicts the least recently used entry and can learn a verdict', () => {
    let calls = 0
    const cache = createClassifierCache((sql) => {
      calls++
      return classify(sql)
    }, 4)
    for (const n of [1, 2, 3]) cache.get(`SELECT ${n}`)
    cache.get('SELECT 1') // used again after drifting to the old half: moves to the young end
    cache.get('SELECT 4')
    cache.get('SELECT 5') // evicts SELECT 2, the least recently used
    expect(cache.size).toBe(4)
    expect(calls).toBe(5)
    cache.get('SELECT 1')
    expect(calls).toBe(5)
    cache.get('SELECT 2')
    expect(calls).toBe(6)
    cache.learn('SELECT 2', { target: 'primary', kind: 'other', reason: 'learned', mayWrite: true })
    expect(cache.get('SELECT 2').reason).toBe('learned')
    expect(cache.size).toBe(4)
  })

  it('does not cache very long SQL texts', () => {
    const cache = createClassifierCache(classify, 10, 100)
    cache.get(`SELECT ${'1,'.repeat(100)}1`)
    expect(cache.size).toBe(0)
  })
})
