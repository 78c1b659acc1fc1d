-- push_full: push.lua for a batch with unique keys or limits (their fields are kept in
-- the job hash, where reserve.lua reads them). A job whose key another job of
-- the queue holds (in the unique hash, which the scripts that reserve, ack, fail,
-- retry, release, forget and clear keep in step with the holders' states) creates
-- nothing; its position and the holder's id are returned instead. A later copy of a
-- key in the same batch finds the first one.
-- KEYS[1]    ready list      P:{q}:ready
-- KEYS[2]    delayed zset    P:{q}:delayed   (score: available_at, unix s)
-- KEYS[3]    wake list       P:{q}:wake
-- KEYS[4]    unique hash     P:{q}:unique    (key -> id of the job holding it)
-- KEYS[5]    job key prefix  P:{q}:job:      (deliberate exception: a holder's hash)
-- KEYS[6..]  one job hash per job, P:{q}:job:<id>, in the order of ARGV's groups
-- ARGV       groups of 9: id, payload, available_at, unique_key ('' for none),
--            unique_until ('started' or 'done'), limit_key ('' for none), concurrency,
--            rate, window_s ('' when the job has no such limit)
-- Returns {ready count, then pairs: 1-based position in the batch, holder id}
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%.6f', now)
local out = {0}
local ready_count = 0
local added_delayed = false
for i = 6, #KEYS do
  local j = 1 + (i - 6) * 9
  local id, at, key, mode = ARGV[j], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4]
  local holder = nil
  if key ~= '' then
    holder = redis.call('HGET', KEYS[4], key)
    -- a holder whose job is gone never blocks (the scripts free keys as they go; this
    -- keeps a hand-deleted job hash from blocking its key forever)
    if holder and redis.call('EXISTS', KEYS[5] .. holder) == 0 then
      holder = nil
    end
  end
  if holder then
    out[#out + 1] = i - 5
    out[#out + 1] = holder
  else
    redis.call('HSET', KEYS[i], 'payload', ARGV[j + 1], 'available_at', at,
               'created_at', stamp)
    if key ~= '' then
      redis.call('HSET', KEYS[i], 'unique_key', key, 'unique_until', mode)
      redis.call('HSET', KEYS[4], key, id)
    end
    if ARGV[j + 5] ~= '' then
      redis.call('HSET', KEYS[i], 'limit_key', ARGV[j + 5])
      for f, name in ipairs({'concurrency', 'rate', 'window_s'}) do
        if ARGV[j + 5 + f] ~= '' then redis.call('HSET', KEYS[i], name, ARGV[j + 5 + f]) end
      end
    end
    if tonumber(at) <= now then
      redis.call('LPUSH', KEYS[1], id)
      ready_count = ready_count + 1
    else
      redis.call('ZADD', KEYS[2], at, id)
      added_delayed = true
    end
  end
end
out[1] = ready_count
-- at most one wake marker, as in push.lua
local marker = redis.call('LINDEX', KEYS[3], 0)
if ready_count > 0 then
  if not marker then redis.call('LPUSH', KEYS[3], '1')
  elseif marker ~= '1' then redis.call('LSET', KEYS[3], 0, '1') end
elseif added_delayed and not marker then
  redis.call('LPUSH', KEYS[3], 'd')
end
return out
