-- reserve: for each queue in strict priority order, skip it if paused, promote due
-- delayed jobs (bounded), take in raw payloads LPUSHed by Chappy.php producers onto
-- the plain list named after the queue, then take ready jobs: attempts + 1, token,
-- owner, reserved_at, and a lease in the in-flight zset. All in one atomic step, so a
-- job is always in exactly one of ready / delayed / in-flight / failed.
-- A job whose unique key is held until "started" frees it here; a raw payload that
-- carries a key another job holds creates nothing. A job over its concurrency or rate
-- limit is parked (no attempt charged) in its limit key's list and the next ready job
-- is looked at: none waits behind it. Parked jobs go back to the consuming end of the
-- ready list when their key has room again: the scripts that end a running job mark
-- its key for a look (score 0 in the limited zset), a rate's key is looked at when
-- its oldest start leaves the window. Running jobs are counted from the in-flight
-- zset, so no counter can be left behind.
-- KEYS, in groups of 10 per queue (priority order):
--   +1 ready list       P:{q}:ready
--   +2 delayed zset     P:{q}:delayed   (score: available_at)
--   +3 in-flight zset   P:{q}:inflight  (score: lease deadline)
--   +4 paused flag      P:{q}:paused
--   +5 intake list      q               (the plain list a PHP producer LPUSHes onto;
--                                        same Cluster slot: its name is the hash tag)
--   +6 wake list        P:{q}:wake
--   +7 job key prefix   P:{q}:job:      (deliberate exception: the job hash of an id
--                                        popped here is prefix..id, in the same slot)
--   +8 unique hash      P:{q}:unique    (unique key -> id of the job holding it)
--   +9 limited zset     P:{q}:limited   (limit key -> when to look at its parked jobs)
--   +10 limit prefix    P:{q}:limit:    (deliberate exception: prefix..key..':parked',
--                                        a list of ids, and ..':starts', a zset)
-- ARGV[1] owner   ARGV[2] lease_s   ARGV[3] limit (jobs to take in all)
-- ARGV[4] first spare id for intake   ARGV[5] how many spare ids   ARGV[6] token seed
-- ARGV[7] at most this many delayed jobs promoted per queue per call
-- ARGV[8..] queue names, one per group
-- Returns {spare ids used, then 6 per job: id, queue, payload, attempts, token, reserved_at}
local G = 10
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%.6f', now)
local owner, limit = ARGV[1], tonumber(ARGV[3])
local deadline = string.format('%.6f', now + tonumber(ARGV[2]))
local spare_base, spare_n = tonumber(ARGV[4]), tonumber(ARGV[5])
local seed, promote_max = ARGV[6], tonumber(ARGV[7])
local out = {0}
local taken, spare_used = 0, 0
--: how many jobs one call parks per queue, and the score of a key only a job's end
--: (not the clock) can give room to
local PARK_MAX, FAR = 256, '1e18'

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


-- running jobs per limit key, counted from the queue's in-flight zset
local function running_by_key(inflight, prefix)
  local counts = {}
  for _, id in ipairs(redis.call('ZRANGE', inflight, 0, -1)) do
    local lk = redis.call('HGET', prefix .. id, 'limit_key')
    if lk then counts[lk] = (counts[lk] or 0) + 1 end
  end
  return counts
end

-- how many more jobs of limit key `lk` may start now, and when to look again if none
local function room_of(lk, conc, rate, window, running, lprefix)
  local room, again = math.huge, FAR
  if conc then room = conc - (running[lk] or 0) end
  if rate then
    local starts = lprefix .. lk .. ':starts'
    redis.call('ZREMRANGEBYSCORE', starts, '-inf', string.format('%.6f', now - window))
    local left = rate - redis.call('ZCARD', starts)
    if left < room then room = left end
    if left <= 0 then
      local oldest = redis.call('ZRANGE', starts, 0, 0, 'WITHSCORES')[2]
      again = string.format('%.6f', tonumber(oldest) + window)
    end
  end
  return room, again
end

-- keep the earliest time to look at `lk` again
local function look_again(limited, lk, at)
  local score = redis.call('ZSCORE', limited, lk)
  if not score or tonumber(at) < tonumber(score) then redis.call('ZADD', limited, at, lk) end
end

-- parked jobs of keys due for a look go back to the ready list, as many as have room
local function unpark(ready, inflight, prefix, limited, lprefix, running)
  for _, lk in ipairs(redis.call('ZRANGEBYSCORE', limited, '-inf', stamp, 'LIMIT', 0, 64)) do
    local parked = lprefix .. lk .. ':parked'
    local oldest = redis.call('LINDEX', parked, -1)
    if not oldest then
      redis.call('ZREM', limited, lk)
    else
      local h = redis.call('HMGET', prefix .. oldest, 'concurrency', 'rate', 'window_s')
      local room, again = room_of(lk, tonumber(h[1]), tonumber(h[2]), tonumber(h[3]),
                                  running, lprefix)
      if room <= 0 then
        redis.call('ZADD', limited, again, lk)
      else
        local moved = {}
        while #moved < room and #moved < PARK_MAX do
          local id = redis.call('RPOP', parked)
          if not id then break end
          moved[#moved + 1] = id
        end
        -- RPUSH in reverse: the oldest ends at the consuming end, taken first
        for i = #moved, 1, -1 do redis.call('RPUSH', ready, moved[i]) end
        if redis.call('LLEN', parked) == 0 then redis.call('ZREM', limited, lk)
        else redis.call('ZADD', limited, stamp, lk) end  -- the next call counts again
      end
    end
  end
end

-- the unique key a raw payload asks for, when no other job of the queue holds it:
-- (key, mode), (nil, nil) for none, (false) when it is held (the payload is dropped)
local function raw_key(decoded, uniq, prefix)
  local key = decoded['unique_key']
  if type(key) ~= 'string' or key == '' then return nil, nil end
  local holder = redis.call('HGET', uniq, key)
  if holder and redis.call('EXISTS', prefix .. holder) == 1 then return false end
  return key, decoded['unique_until'] == 'started' and 'started' or 'done'
end

local function intake(ready, delayed, plain, prefix, uniq)
  while spare_used < spare_n do
    -- pcall: a stray key of another type under the queue's name must not break the
    -- queue (WRONGTYPE comes back as an error table); nil comes back as false
    local raw = redis.pcall('RPOP', plain)
    if type(raw) ~= 'string' then return end
    local id = string.format('%d', spare_base + spare_used)
    spare_used = spare_used + 1
    local at = now
    local ok, decoded = pcall(cjson.decode, raw)
    local key, mode = nil, nil
    if ok and type(decoded) == 'table' then
      local given = unix_of(decoded['available_at'])
      -- math.huge and NaN are no times either
      if given and given == given and given < 1e15 and given > -1e15 then at = given end
      key, mode = raw_key(decoded, uniq, prefix)
    end
    if key ~= false then  -- false: its key is held, a copy that is created nowhere
      local at_text = string.format('%.6f', at)
      -- the fields push.lua writes: attempts count from an absent field at reservation
      local fields = {'payload', raw, 'available_at', at_text, 'created_at', stamp}
      if key then
        fields[7], fields[8], fields[9], fields[10] = 'unique_key', key, 'unique_until', mode
        redis.call('HSET', uniq, key, id)
      end
      redis.call('HSET', prefix .. id, unpack(fields))
      if at <= now then
        redis.call('LPUSH', ready, id)
      else
        redis.call('ZADD', delayed, at_text, id)
      end
    end
  end
end

for g = 0, #KEYS / G - 1 do
  if taken >= limit then break end
  local k = g * G
  local ready, delayed, inflight = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local paused, plain, wake, prefix = KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], KEYS[k + 7]
  local uniq, limited, lprefix = KEYS[k + 8], KEYS[k + 9], KEYS[k + 10]
  local queue = ARGV[8 + g]
  if redis.call('EXISTS', paused) == 0 then
    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, promote_max)
    if #due > 0 then
      redis.call('ZREMRANGEBYRANK', delayed, 0, #due - 1)
      redis.call('LPUSH', ready, unpack(due))
    end
    intake(ready, delayed, plain, prefix, uniq)
    -- the in-flight count per limit key, read once per queue and call, and what this
    -- call took since (rooms)
    local running, rooms, parked_n = nil, {}, 0
    if redis.call('ZCARD', limited) > 0 then
      running = running_by_key(inflight, prefix)
      unpark(ready, inflight, prefix, limited, lprefix, running)
    end
    while taken < limit and parked_n < PARK_MAX do
      local id = redis.call('RPOP', ready)
      if not id then break end
      local key = prefix .. id
      local h = redis.call('HMGET', key, 'payload', 'unique_key', 'unique_until', 'limit_key',
                           'concurrency', 'rate', 'window_s')
      local payload, lk = h[1], h[4]
      if payload and lk then
        local conc, rate, window = tonumber(h[5]), tonumber(h[6]), tonumber(h[7])
        running = running or running_by_key(inflight, prefix)
        if rooms[lk] == nil then
          rooms[lk] = room_of(lk, conc, rate, window, running, lprefix)
        end
        if rooms[lk] <= 0 then
          redis.call('LPUSH', lprefix .. lk .. ':parked', id)
          local _, again = room_of(lk, conc, rate, window, running, lprefix)
          look_again(limited, lk, again)
          parked_n = parked_n + 1
          payload = nil  -- parked, not taken
        else
          rooms[lk] = rooms[lk] - 1
          if rate then
            local starts = lprefix .. lk .. ':starts'
            redis.call('ZADD', starts, stamp, id .. '@' .. stamp)
            -- a key no longer used leaves nothing behind
            redis.call('PEXPIRE', starts, math.ceil(window * 1000) + 1000)
          end
        end
      end
      if payload then
        if h[3] == 'started' and redis.call('HGET', uniq, h[2]) == id then
          redis.call('HDEL', uniq, h[2])  -- a copy may be pushed from now on
        end
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
