-- retry_failed: failed jobs of one queue back to ready with attempts 0 (an operator's
-- `chappyctl retry`); the last exception is kept for reference.
-- KEYS[1] failed zset     P:{q}:failed
-- KEYS[2] ready list      P:{q}:ready
-- KEYS[3] wake list       P:{q}:wake
-- KEYS[4] job key prefix  P:{q}:job:   (deliberate exception: job hash = prefix..id)
-- KEYS[5] unique hash     P:{q}:unique
-- ARGV[1] 'all' (then ARGV[2] is the batch size) or 'ids' (then ARGV[2..] are ids)
-- Returns how many jobs were revived (in 'all' mode, call again until 0).
-- a job back to waiting holds its unique key again, unless another job took it
-- meanwhile (a "started" key is free while its job runs): then it goes on without one
local function hold_again(uniq, job, id)
  local key = redis.call('HGET', job, 'unique_key')
  if not key then return end
  local holder = redis.call('HGET', uniq, key)
  if not holder then redis.call('HSET', uniq, key, id)
  elseif holder ~= id then redis.call('HDEL', job, 'unique_key', 'unique_until') end
end
local t = redis.call('TIME')
local stamp = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
local ids
if ARGV[1] == 'all' then
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
else
  ids = {}
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local revived = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local key = KEYS[4] .. id
    redis.call('HDEL', key, 'failed_at')
    hold_again(KEYS[5], key, id)
    redis.call('HSET', key, 'attempts', 0, 'available_at', stamp, 'updated_at', stamp)
    redis.call('LPUSH', KEYS[2], id)
    revived = revived + 1
  end
end
if revived > 0 then
  local marker = redis.call('LINDEX', KEYS[3], 0)
  if not marker then redis.call('LPUSH', KEYS[3], '1')
  elseif marker ~= '1' then redis.call('LSET', KEYS[3], 0, '1') end
end
return revived
