-- fail: final failure; the job is kept in the failed zset with failed_at and its
-- exception until retried or forgotten; only if the caller still holds it.
-- KEYS[1] job hash        P:{q}:job:<id>
-- KEYS[2] in-flight zset  P:{q}:inflight
-- KEYS[3] failed zset     P:{q}:failed   (score: failed_at, unix s)
-- KEYS[4] unique hash     P:{q}:unique   (its key is freed)
-- KEYS[5] limited zset    P:{q}:limited  (its limit key gets a look)
-- KEYS[6] wake list       P:{q}:wake
-- ARGV[1] id   ARGV[2] token   ARGV[3] exception text
-- Returns 1, or 0 when the token is stale.
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
slot_freed(KEYS[5], KEYS[6], h[3])
if h[2] and redis.call('HGET', KEYS[4], h[2]) == ARGV[1] then redis.call('HDEL', KEYS[4], h[2]) end
local t = redis.call('TIME')
local stamp = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
redis.call('HDEL', KEYS[1], 'token', 'owner', 'reserved_at')
redis.call('HSET', KEYS[1], 'failed_at', stamp, 'exception', ARGV[3], 'updated_at', stamp)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], stamp, ARGV[1])
return 1
