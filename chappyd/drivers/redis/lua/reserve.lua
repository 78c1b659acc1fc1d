-- reserve: for each queue in strict priority order, skip it if paused, promote due
-- delayed jobs (bounded), take in raw payloads LPUSHed by Chappy.php producers onto
-- the plain list named after the queue, then take ready jobs: attempts + 1, token,
-- owner, reserved_at, and a lease in the in-flight zset. All in one atomic step, so a
-- job is always in exactly one of ready / delayed / in-flight / failed.
-- KEYS, in groups of 7 per queue (priority order):
--   +1 ready list       P:{q}:ready
--   +2 delayed zset     P:{q}:delayed   (score: available_at)
--   +3 in-flight zset   P:{q}:inflight  (score: lease deadline)
--   +4 paused flag      P:{q}:paused
--   +5 intake list      q               (the plain list a PHP producer LPUSHes onto;
--                                        same Cluster slot: its name is the hash tag)
--   +6 wake list        P:{q}:wake
--   +7 job key prefix   P:{q}:job:      (deliberate exception: the job hash of an id
--                                        popped here is prefix..id, in the same slot)
-- ARGV[1] owner   ARGV[2] lease_s   ARGV[3] limit (jobs to take in all)
-- ARGV[4] first spare id for intake   ARGV[5] how many spare ids   ARGV[6] token seed
-- ARGV[7] at most this many delayed jobs promoted per queue per call
-- ARGV[8..] queue names, one per group
-- Returns {spare ids used, then 6 per job: id, queue, payload, attempts, token, reserved_at}
local G = 7
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%.6f', now)
local owner, limit = ARGV[1], tonumber(ARGV[3])
local deadline = string.format('%.6f', now + tonumber(ARGV[2]))
local spare_base, spare_n = tonumber(ARGV[4]), tonumber(ARGV[5])
local seed, promote_max = ARGV[6], tonumber(ARGV[7])
local out = {0}
local taken, spare_used = 0, 0

-- A payload's available_at as unix seconds: a number, a numeric string, or a UTC
-- 'Y-m-d H:i:s' / ISO 8601 string (Chappy.php writes those); nil when unreadable (the
-- job is then taken in ready and its worker fails it as InvalidPayload).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m > 2) and (m - 3) or (m + 9)
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function unix_of(value)
  if type(value) == 'number' then return value end
  if type(value) ~= 'string' then return nil end
  local n = tonumber(value)
  if n then return n end
  local y, mo, d, h, mi, s, frac, zone = string.match(value,
    '^%s*(%d%d%d%d)%-(%d%d)%-(%d%d)[ T](%d%d):(%d%d):(%d%d)(%.?%d*)(.-)%s*$')
  if not y then return nil end
  y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi),
                       tonumber(s)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or s > 60 then return nil end
  local offset = 0
  if zone ~= '' and zone ~= 'Z' then
    local sign, zh, zm = string.match(zone, '^([+-])(%d%d):?(%d%d)$')
    if not sign then return nil end
    offset = (tonumber(zh) * 3600 + tonumber(zm) * 60) * (sign == '-' and -1 or 1)
  end
  local seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset
  if frac ~= '' and frac ~= '.' then seconds = seconds + tonumber('0' .. frac) end
  return seconds
end

local function intake(ready, delayed, plain, prefix)
  while spare_used < spare_n do
    -- pcall: a stray key of another type under the queue's name must not break the
    -- queue (WRONGTYPE comes back as an error table); nil comes back as false
    local raw = redis.pcall('RPOP', plain)
    if type(raw) ~= 'string' then return end
    local id = string.format('%d', spare_base + spare_used)
    spare_used = spare_used + 1
    local at = now
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == 'table' then
      local given = unix_of(decoded['available_at'])
      -- math.huge and NaN are no times either
      if given and given == given and given < 1e15 and given > -1e15 then at = given end
    end
    local at_text = string.format('%.6f', at)
    -- the fields push.lua writes: attempts count from an absent field at reservation
    redis.call('HSET', prefix .. id, 'payload', raw, 'available_at', at_text,
               'created_at', stamp)
    if at <= now then
      redis.call('LPUSH', ready, id)
    else
      redis.call('ZADD', delayed, at_text, id)
    end
  end
end

for g = 0, #KEYS / G - 1 do
  if taken >= limit then break end
  local k = g * G
  local ready, delayed, inflight = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local paused, plain, wake, prefix = KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], KEYS[k + 7]
  local queue = ARGV[8 + g]
  if redis.call('EXISTS', paused) == 0 then
    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, promote_max)
    if #due > 0 then
      redis.call('ZREMRANGEBYRANK', delayed, 0, #due - 1)
      redis.call('LPUSH', ready, unpack(due))
    end
    intake(ready, delayed, plain, prefix)
    for _ = 1, limit - taken do
      local id = redis.call('RPOP', ready)
      if not id then break end
      local key = prefix .. id
      local payload = redis.call('HGET', key, 'payload')
      if payload then
        taken = taken + 1
        local attempts = redis.call('HINCRBY', key, 'attempts', 1)
        local token = seed .. '.' .. taken
        redis.call('HSET', key, 'token', token, 'owner', owner, 'reserved_at', stamp,
                   'updated_at', stamp)
        redis.call('ZADD', inflight, deadline, id)
        local n = #out
        out[n + 1], out[n + 2], out[n + 3] = id, queue, payload
        out[n + 4], out[n + 5], out[n + 6] = attempts, token, stamp
      end
    end
    -- leaving work behind: wake the next idle worker (push.lua sets only one marker)
    if redis.call('LLEN', ready) > 0 then
      local marker = redis.call('LINDEX', wake, 0)
      if not marker then redis.call('LPUSH', wake, '1')
      elseif marker ~= '1' then redis.call('LSET', wake, 0, '1') end
    end
  end
end
out[1] = spare_used
return out
