// Lua scripts run by the L2 driver. Each is one round trip. READ/WRITE/INVALIDATE/DELETE/ACQUIRE
// read tag keys named in the value (not in KEYS), which standalone Redis allows; on a Cluster
// those keys live in other slots, so the Cluster path uses the single-slot scripts at the end
// (BUMP, ENSURE, SET_LOCAL, ACQUIRE_LOCAL) plus per-slot pipelines for the tag versions.
//
// Tag keys are hashes { v: expire version, d: delete version }, changed only inside scripts
// (atomic, no reliance on any client clock). Versions never restart:
// - A record is created (when missing) whenever a version is handed out for a write or bumped,
//   with v = d = the server's TIME in microseconds (sec * 1e6 + usec: below 2^53, exact in a Lua
//   double and a JS number). Invalidations add 1, far slower than the clock runs, so a record
//   recreated after it was lost (eviction, a flushed key, a failover that lost it) starts above
//   every version handed out before, and d = base makes every entry stored under an older
//   version deleted-by-tag: what happened while the record was gone is unknown. An entry written
//   as the record is created stores base and is fresh.
// - A read never creates a record. A missing record reads as v = 0, d = 0; no record ever holds
//   v = 0 (new ones start at TIME, older ones were created by HINCRBY at 1), so the TS side reads
//   v = 0 as "record lost": an entry carrying that tag is deleted (a miss, not even a stale
//   fallback), and 0 is never recorded as a known version.
// Numbers are handed to Redis and to bus messages with string.format('%d'): Lua's own
// number-to-string conversion (%.14g) would print these 16-digit versions in exponent form.

/** The TIME-based start of a new tag record (defines `base()`, cached per script call). */
const BASE = `
local now
local function base()
  if now == nil then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return now
end
`

/**
 * Reads the record at `key`, creating it when missing: returns its v and d (numbers). A record
 * with a d but no v (never written by these scripts) is recreated from max(base, d).
 */
const ENSURE_FN = `
local function ensure(key)
  local r = redis.call('HMGET', key, 'v', 'd')
  local v = tonumber(r[1])
  local d = tonumber(r[2]) or 0
  if v == nil then
    v = base()
    if d > v then v = d end
    d = v
    redis.call('HSET', key, 'v', string.format('%d', v), 'd', string.format('%d', d))
  end
  return v, d
end
`

/**
 * Bumps the record at `key` (created first when missing) in mode 'e' (v + 1) or 'd' (v + 1 and
 * d = v); returns the new v and d.
 */
const BUMP_FN = `
local function bump(key, mode)
  local v, d = ensure(key)
  v = v + 1
  if mode == 'd' then d = v end
  redis.call('HSET', key, 'v', string.format('%d', v), 'd', string.format('%d', d))
  return v, d
end
`

/**
 * KEYS[1] value key; ARGV[1] tag key prefix (ends with `{`). Returns nil or {value, v1, d1, v2, d2, ...};
 * a missing tag record reads as 0, 0 (record lost: the caller treats the entry as deleted).
 */
export const READ = `
local v = redis.call('GET', KEYS[1])
if not v then return nil end
local out = {v}
local nl = string.find(v, '\\n', 1, true)
if nl == nil or nl == 1 then return out end
for tag in string.gmatch(string.sub(v, 1, nl - 1), '[^\\031]+') do
  local r = redis.call('HMGET', ARGV[1] .. tag .. '}', 'v', 'd')
  out[#out + 1] = tonumber(r[1]) or 0
  out[#out + 1] = tonumber(r[2]) or 0
end
return out
`

/**
 * KEYS[1] value key, KEYS[2] lock key (or the value key when unused);
 * ARGV: 1 tag prefix, 2 px, 3 tag line, 4 observed versions (`,`-joined, -1 unknown),
 * 5 body (meta + payload), 6 lock token ('' when none), 7 bus channel, 8 bus message ('' when none).
 * Publishing from the script makes "write + tell the other instances" one round trip.
 * Stores the value under the versions it was loaded with: an invalidation that happened while
 * the loader ran (observed < current) leaves the new value already expired. A missing tag
 * record is created first (at TIME, see above): a version observed before that (from the lost
 * record) is then older than d, and the value is stored already deleted; with nothing observed
 * (-1) it is stored under the new record's version, fresh.
 * Returns the current {v1, d1, ...} (never 0: every record exists afterwards).
 */
export const WRITE = `${BASE}${ENSURE_FN}
local obs = {}
for o in string.gmatch(ARGV[4], '[^,]+') do obs[#obs + 1] = tonumber(o) end
local vers = {}
local cur = {}
local i = 0
for tag in string.gmatch(ARGV[3], '[^\\031]+') do
  i = i + 1
  local v, d = ensure(ARGV[1] .. tag .. '}')
  cur[#cur + 1] = v
  cur[#cur + 1] = d
  local o = obs[i]
  if o ~= nil and o >= 0 and o < v then vers[i] = string.format('%d', o) else vers[i] = string.format('%d', v) end
end
redis.call('SET', KEYS[1], ARGV[3] .. '\\n' .. table.concat(vers, ',') .. '\\n' .. ARGV[5], 'PX', ARGV[2])
if ARGV[6] ~= '' and redis.call('GET', KEYS[2]) == ARGV[6] then redis.call('DEL', KEYS[2]) end
if ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[7], ARGV[8]) end
return cur
`

/**
 * ARGV: 1 tag prefix, 2 mode ('e' expire | 'd' delete), 3 bus channel, 4 bus message head
 * ('' when none; the script appends the new versions and closes it), 5.. tags.
 * A missing tag record is created (at TIME) before the bump. Returns {v1, d1, ...} after the bump.
 */
export const INVALIDATE = `${BASE}${ENSURE_FN}${BUMP_FN}
local out = {}
local text = {}
for i = 5, #ARGV do
  local v, d = bump(ARGV[1] .. ARGV[i] .. '}', ARGV[2])
  out[#out + 1] = v
  out[#out + 1] = d
  text[#text + 1] = string.format('%d,%d', v, d)
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4] .. table.concat(text, ',') .. ']}') end
return out
`

/** KEYS: value keys; ARGV: 1 bus channel, 2 bus message ('' when none). */
export const DELETE = `
local n = redis.call('DEL', unpack(KEYS))
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n
`

/**
 * KEYS[1] lock key, KEYS[2] value key; ARGV: 1 token, 2 lease ms, 3 tag prefix.
 * Takes the lease when free and returns {1, <READ result...>} so a value written between the
 * caller's miss and this call is seen (no second loader call); returns {0, pttl} when held.
 * As in READ, a missing tag record reads as 0, 0 (the entry counts as deleted).
 */
export const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local v = redis.call('GET', KEYS[2])
  if not v then return {1} end
  local out = {1, v}
  local nl = string.find(v, '\\n', 1, true)
  if nl == nil or nl == 1 then return out end
  for tag in string.gmatch(string.sub(v, 1, nl - 1), '[^\\031]+') do
    local r = redis.call('HMGET', ARGV[3] .. tag .. '}', 'v', 'd')
    out[#out + 1] = tonumber(r[1]) or 0
    out[#out + 1] = tonumber(r[2]) or 0
  end
  return out
end
return {0, redis.call('PTTL', KEYS[1])}
`

/** KEYS[1] lock key; ARGV[1] token. Deletes the lock only when it is still ours. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

// ---- Cluster: every script touches one slot only ---------------------------------------------

/**
 * KEYS[1] tag key; ARGV[1] mode ('e' | 'd'). Returns {v, d} after the bump (the record created
 * at TIME first when missing, as in INVALIDATE).
 */
export const BUMP = `${BASE}${ENSURE_FN}${BUMP_FN}
local v, d = bump(KEYS[1], ARGV[1])
return {v, d}
`

/**
 * KEYS[1] tag key. Returns its {v, d}, creating the record (at TIME) when missing: the versions
 * a Cluster write stores its value under (read per slot before SET_LOCAL), as WRITE does.
 */
export const ENSURE = `${BASE}${ENSURE_FN}
local v, d = ensure(KEYS[1])
return {v, d}
`

/**
 * KEYS[1] value key, KEYS[2] lock key (same slot: the lock key is the value key + ':lock');
 * ARGV: 1 px, 2 full stored bytes (tag lines included), 3 lock token ('' none), 4 channel,
 * 5 bus message ('' none). The versions were read (per slot, with ENSURE) before this call.
 */
export const SET_LOCAL = `
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return 1
`

/** KEYS[1] lock key, KEYS[2] value key; ARGV 1 token, 2 lease. {1} / {1, value} / {0, pttl}. */
export const ACQUIRE_LOCAL = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local v = redis.call('GET', KEYS[2])
  if not v then return {1} end
  return {1, v}
end
return {0, redis.call('PTTL', KEYS[1])}
`
