-- release_owner: give back at once, attempts refunded, every job one owner holds over
-- the given queues (a stopping daemon must not burn attempts).
-- KEYS, in groups of 6 per queue:
--   +1 in-flight zset   P:{q}:inflight
--   +2 ready list       P:{q}:ready
--   +3 wake list        P:{q}:wake
--   +4 job key prefix   P:{q}:job:   (deliberate exception: job hash = prefix..id)
--   +5 unique hash      P:{q}:unique
--   +6 limited zset     P:{q}:limited  (their limit keys get a look)
-- ARGV[1] owner
-- Returns how many jobs were released.
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
local stamp = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
local released = 0
for g = 0, #KEYS / 6 - 1 do
  local inflight, ready, wake, prefix = KEYS[g * 6 + 1], KEYS[g * 6 + 2], KEYS[g * 6 + 3],
                                        KEYS[g * 6 + 4]
  local uniq, limited = KEYS[g * 6 + 5], KEYS[g * 6 + 6]
  local here = 0
  -- newest lease first, so that RPUSH leaves the oldest reservation at the consuming end
  for _, id in ipairs(redis.call('ZREVRANGE', inflight, 0, -1)) do
    local key = prefix .. id
    if redis.call('HGET', key, 'owner') == ARGV[1] then
      if tonumber(redis.call('HINCRBY', key, 'attempts', -1)) < 0 then
        redis.call('HSET', key, 'attempts', 0)
      end
      redis.call('HDEL', key, 'token', 'owner', 'reserved_at')
      hold_again(uniq, key, id)
      slot_freed(limited, wake, redis.call('HGET', key, 'limit_key'))
      redis.call('HSET', key, 'updated_at', stamp)
      redis.call('ZREM', inflight, id)
      redis.call('RPUSH', ready, id)
      here = here + 1
    end
  end
  if here > 0 then
    local marker = redis.call('LINDEX', wake, 0)
    if not marker then redis.call('LPUSH', wake, '1')
    elseif marker ~= '1' then redis.call('LSET', wake, 0, '1') end
  end
  released = released + here
end
return released
