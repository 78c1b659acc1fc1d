-- reserve: for each queue in strict priority order, skip it if paused, promote due
-- delayed jobs (bounded), take in raw payloads LPUSHed by Chappy.php producers onto
-- the plain list named after the queue, then take ready jobs: attempts + 1, token,
-- owner, reserved_at, and a lease in the in-flight zset. All in one atomic step, so a
-- job is always in exactly one of ready / delayed / in-flight / failed.
-- A job whose unique key is held until "started" frees it here; a raw payload that
-- carries a key another job holds creates nothing.
-- KEYS, in groups of 8 per queue (priority order):
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
-- ARGV[1] owner   ARGV[2] lease_s   ARGV[3] limit (jobs to take in all)
-- ARGV[4] first spare id for intake   ARGV[5] how many spare ids   ARGV[6] token seed
-- ARGV[7] at most this many delayed jobs promoted per queue per call
-- ARGV[8..] queue names, one per group
-- Returns {spare ids used, then 6 per job: id, queue, payload, attempts, token, reserved_at}
local G = 8
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%.6f', now)
local owner, limit = ARGV[1], tonumber(ARGV[3])
local deadline = string.format('%.6f', now + tonumber(ARGV[2]))
local spare_base, spare_n = tonumber(ARGV[4]), tonumber(ARGV[5])
local seed, promote_max = ARGV[6], tonumber(ARGV[7])
local out = {0}
local taken, spare_used = 0, 0

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
      if type(decoded['available_at']) == 'number' then at = decoded['available_at'] end
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
  local uniq = KEYS[k + 8]
  local queue = ARGV[8 + g]
  if redis.call('EXISTS', paused) == 0 then
    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, promote_max)
    if #due > 0 then
      redis.call('ZREMRANGEBYRANK', delayed, 0, #due - 1)
      redis.call('LPUSH', ready, unpack(due))
    end
    intake(ready, delayed, plain, prefix, uniq)
    for _ = 1, limit - taken do
      local id = redis.call('RPOP', ready)
      if not id then break end
      local key = prefix .. id
      local h = redis.call('HMGET', key, 'payload', 'unique_key', 'unique_until')
      local payload = h[1]
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
