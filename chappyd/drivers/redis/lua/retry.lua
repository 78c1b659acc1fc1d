-- retry: a failed attempt with attempts left; back to ready (available_at <= now) or
-- delayed, exception recorded; only if the caller still holds the reservation.
-- KEYS[1] job hash        P:{q}:job:<id>
-- KEYS[2] in-flight zset  P:{q}:inflight
-- KEYS[3] ready list      P:{q}:ready
-- KEYS[4] delayed zset    P:{q}:delayed
-- KEYS[5] wake list       P:{q}:wake
-- KEYS[6] unique hash     P:{q}:unique
-- KEYS[7] limited zset    P:{q}:limited  (its limit key gets a look)
-- ARGV[1] id   ARGV[2] token   ARGV[3] available_at (unix s)   ARGV[4] exception text
-- Returns 1, or 0 when the token is stale.
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
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
hold_again(KEYS[6], KEYS[1], ARGV[1])
slot_freed(KEYS[7], KEYS[5], redis.call('HGET', KEYS[1], 'limit_key'))
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('HDEL', KEYS[1], 'token', 'owner', 'reserved_at')
redis.call('HSET', KEYS[1], 'available_at', ARGV[3], 'exception', ARGV[4],
           'updated_at', string.format('%.6f', now))
redis.call('ZREM', KEYS[2], ARGV[1])
local marker = redis.call('LINDEX', KEYS[5], 0)
if tonumber(ARGV[3]) <= now then
  redis.call('LPUSH', KEYS[3], ARGV[1])
  if not marker then redis.call('LPUSH', KEYS[5], '1')
  elseif marker ~= '1' then redis.call('LSET', KEYS[5], 0, '1') end
else
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
  if not marker then redis.call('LPUSH', KEYS[5], 'd') end
end
return 1
