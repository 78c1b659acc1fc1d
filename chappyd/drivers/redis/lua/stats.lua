-- stats: counts of one queue's states and when its oldest ready job became available.
-- Jobs in the delayed zset that are already due count as ready; raw payloads waiting
-- in the intake list count as ready (they are taken in on the next reserve).
-- KEYS[1] ready list      P:{q}:ready
-- KEYS[2] delayed zset    P:{q}:delayed
-- KEYS[3] in-flight zset  P:{q}:inflight
-- KEYS[4] failed zset     P:{q}:failed
-- KEYS[5] paused flag     P:{q}:paused
-- KEYS[6] intake list     q
-- KEYS[7] job hash of the oldest ready id: built as KEYS[7]..id (deliberate exception)
-- KEYS[8] limited zset    P:{q}:limited
-- KEYS[9] limit prefix    P:{q}:limit:  (deliberate exception: prefix..key..':parked')
-- Jobs parked by a full limit are ready, and counted apart as limited.
-- Returns {ready, delayed, reserved, failed, paused (0/1), oldest available_at or '',
--          limited}
local plain_n = 0
if redis.call('TYPE', KEYS[6])['ok'] == 'list' then plain_n = redis.call('LLEN', KEYS[6]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZCOUNT', KEYS[2], '-inf', now)
local limited = 0
for _, lk in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
  limited = limited + redis.call('LLEN', KEYS[9] .. lk .. ':parked')
end
local ready = redis.call('LLEN', KEYS[1]) + due + plain_n + limited
local oldest = nil
local function consider(at)
  at = tonumber(at)
  if at and (oldest == nil or at < oldest) then oldest = at end
end
local head = redis.call('LINDEX', KEYS[1], -1)
if head then consider(redis.call('HGET', KEYS[7] .. head, 'available_at')) end
if due > 0 then consider(redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]) end
local raw = plain_n > 0 and redis.call('LINDEX', KEYS[6], -1)
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then consider(decoded['available_at']) end
  if oldest == nil then oldest = now end
end
return {ready, redis.call('ZCARD', KEYS[2]) - due, redis.call('ZCARD', KEYS[3]),
        redis.call('ZCARD', KEYS[4]), redis.call('EXISTS', KEYS[5]),
        oldest and string.format('%.6f', math.min(oldest, now)) or '', limited}
