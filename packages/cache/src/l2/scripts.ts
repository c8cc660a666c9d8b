// Lua scripts run by the L2 driver. Each is one round trip. READ/WRITE/INVALIDATE/DELETE/ACQUIRE
// read tag keys named in the value (not in KEYS), which standalone Redis allows; on a Cluster
// those keys live in other slots, so the Cluster path uses the single-slot scripts at the end
// (BUMP, SET_LOCAL, ACQUIRE_LOCAL) plus per-slot pipelines for the tag versions.
//
// Tag keys are hashes { v: expire version, d: delete version }, both bumped with HINCRBY /
// HSET: atomic, no reliance on any client clock.

/** KEYS[1] value key; ARGV[1] tag key prefix (ends with `{`). Returns nil or {value, v1, d1, v2, d2, ...}. */
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
 * the loader ran (observed < current) leaves the new value already expired.
 * Returns the current {v1, d1, ...}.
 */
export const WRITE = `
local obs = {}
for o in string.gmatch(ARGV[4], '[^,]+') do obs[#obs + 1] = tonumber(o) end
local vers = {}
local cur = {}
local i = 0
for tag in string.gmatch(ARGV[3], '[^\\031]+') do
  i = i + 1
  local r = redis.call('HMGET', ARGV[1] .. tag .. '}', 'v', 'd')
  local v = tonumber(r[1]) or 0
  cur[#cur + 1] = v
  cur[#cur + 1] = tonumber(r[2]) or 0
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
 * Returns {v1, d1, ...} after the bump.
 */
export const INVALIDATE = `
local out = {}
for i = 5, #ARGV do
  local key = ARGV[1] .. ARGV[i] .. '}'
  local v = redis.call('HINCRBY', key, 'v', 1)
  local d
  if ARGV[2] == 'd' then
    redis.call('HSET', key, 'd', v)
    d = v
  else
    d = tonumber(redis.call('HGET', key, 'd')) or 0
  end
  out[#out + 1] = v
  out[#out + 1] = d
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4] .. table.concat(out, ',') .. ']}') end
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

/** KEYS[1] tag key; ARGV[1] mode ('e' | 'd'). Returns {v, d} after the bump. */
export const BUMP = `
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
local d
if ARGV[1] == 'd' then
  redis.call('HSET', KEYS[1], 'd', v)
  d = v
else
  d = tonumber(redis.call('HGET', KEYS[1], 'd')) or 0
end
return {v, d}
`

/**
 * KEYS[1] value key, KEYS[2] lock key (same slot: the lock key is the value key + ':lock');
 * ARGV: 1 px, 2 full stored bytes (tag lines included), 3 lock token ('' none), 4 channel,
 * 5 bus message ('' none). The versions were read (per slot) before this call.
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
