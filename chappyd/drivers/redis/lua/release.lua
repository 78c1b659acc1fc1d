-- release: give reserved jobs of one queue back at once, attempt refunded (the daemon
-- is stopping, or prefetched jobs were not started); stale tokens are skipped. They go
-- back to the consuming end of the ready list, in their original order.
-- KEYS[1] in-flight zset  P:{q}:inflight
-- KEYS[2] ready list      P:{q}:ready
-- KEYS[3] wake list       P:{q}:wake
-- KEYS[4] unique hash     P:{q}:unique
-- KEYS[5] limited zset    P:{q}:limited  (their limit keys get a look)
-- KEYS[6..] job hashes    P:{q}:job:<id>, one per ARGV pair
-- ARGV pairs: id, token (in reservation order)
-- Returns how many were released.
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
for i = #KEYS, 6, -1 do  -- backwards: RPUSH puts the first reservation at the very end
  local j = (i - 6) * 2 + 1
  local key, id = KEYS[i], ARGV[j]
  if redis.call('HGET', key, 'token') == ARGV[j + 1] then
    if tonumber(redis.call('HINCRBY', key, 'attempts', -1)) < 0 then
      redis.call('HSET', key, 'attempts', 0)
    end
    redis.call('HDEL', key, 'token', 'owner', 'reserved_at')
    hold_again(KEYS[4], key, id)
    slot_freed(KEYS[5], KEYS[3], redis.call('HGET', key, 'limit_key'))
    redis.call('HSET', key, 'updated_at', stamp)
    redis.call('ZREM', KEYS[1], id)
    redis.call('RPUSH', KEYS[2], id)
    released = released + 1
  end
end
if released > 0 then
  local marker = redis.call('LINDEX', KEYS[3], 0)
  if not marker then redis.call('LPUSH', KEYS[3], '1')
  elseif marker ~= '1' then redis.call('LSET', KEYS[3], 0, '1') end
end
return released
