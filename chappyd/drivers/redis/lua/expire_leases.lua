-- expire_leases: jobs whose lease ran out (their host or master vanished) go back to
-- ready, the attempt stays charged and `exception` says why. Atomic per call and
-- idempotent, so every master may run it at once: each job moves exactly once.
-- KEYS, in groups of 6 per queue:
--   +1 in-flight zset   P:{q}:inflight
--   +2 ready list       P:{q}:ready
--   +3 wake list        P:{q}:wake
--   +4 job key prefix   P:{q}:job:   (deliberate exception: job hash = prefix..id)
--   +5 unique hash      P:{q}:unique
--   +6 limited zset     P:{q}:limited  (their limit keys get a look)
-- ARGV[1] exception text   ARGV[2] at most this many jobs per queue per call
-- Returns how many jobs were taken back.
-- a job back to waiting holds its unique key again, unless another job took it
-- meanwhile (a "started" key is free while its job runs): then it goes on without one
local function hold_again(uniq, job, id)
  local key = redis.call('HGET', job, 'unique_key')
  if not key then return end
  local holder = redis.call('HGET', uniq, key)
  if not holder then redis.call('HSET', uniq, key, id)
  elseif holder ~= id then redis.call('HDEL', job, 'unique_key', 'unique_until') end
end
-- a limited job stops running: its key's parked jobs are looked at by the next reserve
local function slot_freed(limited, wake, lk)
  if lk and redis.call('ZSCORE', limited, lk) then
    redis.call('ZADD', limited, 0, lk)
  local marker = redis.call('LINDEX', wake, 0)
  if not marker then redis.call('LPUSH', wake, '1')
  elseif marker ~= '1' then redis.call('LSET', wake, 0, '1') end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%.6f', now)
local expired = 0
for g = 0, #KEYS / 6 - 1 do
  local inflight, ready, wake, prefix = KEYS[g * 6 + 1], KEYS[g * 6 + 2], KEYS[g * 6 + 3],
                                        KEYS[g * 6 + 4]
  local uniq, limited = KEYS[g * 6 + 5], KEYS[g * 6 + 6]
  local ids = redis.call('ZRANGEBYSCORE', inflight, '-inf', '(' .. stamp, 'LIMIT', 0, ARGV[2])
  for _, id in ipairs(ids) do
    local key = prefix .. id
    redis.call('ZREM', inflight, id)
    if redis.call('EXISTS', key) == 1 then
      redis.call('HDEL', key, 'token', 'owner', 'reserved_at')
      hold_again(uniq, key, id)
      slot_freed(limited, wake, redis.call('HGET', key, 'limit_key'))
      redis.call('HSET', key, 'exception', ARGV[1], 'updated_at', stamp)
      redis.call('RPUSH', ready, id)  -- it was taken first: it goes first again
      expired = expired + 1
    end
  end
  if #ids > 0 then
    local marker = redis.call('LINDEX', wake, 0)
    if not marker then redis.call('LPUSH', wake, '1')
    elseif marker ~= '1' then redis.call('LSET', wake, 0, '1') end
  end
end
return expired
