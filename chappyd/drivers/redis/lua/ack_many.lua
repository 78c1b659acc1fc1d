-- ack_many: the jobs succeeded (one or several reserved jobs of one queue): each job
-- whose caller still holds its reservation is deleted, its unique key freed and its
-- limit key given a look; stale tokens are skipped.
-- KEYS[1] in-flight zset  P:{q}:inflight
-- KEYS[2] unique hash     P:{q}:unique   (their keys are freed)
-- KEYS[3] limited zset    P:{q}:limited  (their limit keys get a look)
-- KEYS[4] wake list       P:{q}:wake
-- KEYS[5..] job hashes    P:{q}:job:<id>, one per ARGV pair
-- ARGV pairs: id, token
-- Returns how many were deleted.
-- a limited job stops running: its key's parked jobs are looked at by the next reserve
local function slot_freed(limited, wake, lk)
  if lk and redis.call('ZSCORE', limited, lk) then
    redis.call('ZADD', limited, 0, lk)
  local marker = redis.call('LINDEX', wake, 0)
  if not marker then redis.call('LPUSH', wake, '1')
  elseif marker ~= '1' then redis.call('LSET', wake, 0, '1') end
  end
end
local acked = 0
for i = 5, #KEYS do
  local j = (i - 5) * 2 + 1
  local key, id = KEYS[i], ARGV[j]
  local h = redis.call('HMGET', key, 'token', 'unique_key', 'limit_key')
  if h[1] == ARGV[j + 1] then
    slot_freed(KEYS[3], KEYS[4], h[3])
    if h[2] and redis.call('HGET', KEYS[2], h[2]) == id then redis.call('HDEL', KEYS[2], h[2]) end
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], id)
    acked = acked + 1
  end
end
return acked
