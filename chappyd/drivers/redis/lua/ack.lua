-- ack: the job succeeded; delete it, only if the caller still holds its reservation.
-- KEYS[1] job hash        P:{q}:job:<id>
-- KEYS[2] in-flight zset  P:{q}:inflight
-- KEYS[3] unique hash     P:{q}:unique   (its key is freed)
-- KEYS[4] limited zset    P:{q}:limited  (its limit key gets a look)
-- KEYS[5] wake list       P:{q}:wake
-- ARGV[1] id   ARGV[2] token
-- Returns 1, or 0 (nothing changed) when the token is stale.
-- a limited job stops running: its key's parked jobs are looked at by the next reserve
local function slot_freed(limited, wake, lk)
  if lk and redis.call('ZSCORE', limited, lk) then
    redis.call('ZADD', limited, 0, lk)
  local marker = redis.call('LINDEX', wake, 0)
  if not marker then redis.call('LPUSH', wake, '1')
  elseif marker ~= '1' then redis.call('LSET', wake, 0, '1') end
  end
end
local h = redis.call('HMGET', KEYS[1], 'token', 'unique_key', 'limit_key')
if h[1] ~= ARGV[2] then return 0 end
slot_freed(KEYS[4], KEYS[5], h[3])
if h[2] and redis.call('HGET', KEYS[3], h[2]) == ARGV[1] then redis.call('HDEL', KEYS[3], h[2]) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
