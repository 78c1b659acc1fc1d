-- clear: delete ready and delayed jobs of one queue, and raw payloads waiting in its
-- intake list; reserved and failed jobs stay. Bounded per call: call again until 0.
-- KEYS[1] ready list      P:{q}:ready
-- KEYS[2] delayed zset    P:{q}:delayed
-- KEYS[3] intake list     q
-- KEYS[4] job key prefix  P:{q}:job:   (deliberate exception: job hash = prefix..id)
-- KEYS[5] unique hash     P:{q}:unique (the deleted jobs' keys are freed)
-- KEYS[6] limited zset    P:{q}:limited (ready jobs parked by their limit go too)
-- KEYS[7] limit prefix    P:{q}:limit:  (deliberate exception: prefix..key..':parked')
-- ARGV[1] batch size
-- Returns how many jobs were deleted.
-- frees the job's unique key, if it holds one
local function free_key(uniq, job, id)
  local key = redis.call('HGET', job, 'unique_key')
  if key and redis.call('HGET', uniq, key) == id then redis.call('HDEL', uniq, key) end
end
local batch = tonumber(ARGV[1])
local deleted = 0
while deleted < batch do
  local id = redis.call('RPOP', KEYS[1])
  if not id then break end
  free_key(KEYS[5], KEYS[4] .. id, id)
  redis.call('DEL', KEYS[4] .. id)
  deleted = deleted + 1
end
if deleted < batch then
  local ids = redis.call('ZRANGE', KEYS[2], 0, batch - deleted - 1)
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[2], id)
    free_key(KEYS[5], KEYS[4] .. id, id)
    redis.call('DEL', KEYS[4] .. id)
  end
  deleted = deleted + #ids
end
if deleted < batch then
  for _, lk in ipairs(redis.call('ZRANGE', KEYS[6], 0, 63)) do
    local parked = KEYS[7] .. lk .. ':parked'
    while deleted < batch do
      local id = redis.call('RPOP', parked)
      if not id then break end
      free_key(KEYS[5], KEYS[4] .. id, id)
      redis.call('DEL', KEYS[4] .. id)
      deleted = deleted + 1
    end
    if redis.call('LLEN', parked) == 0 then redis.call('ZREM', KEYS[6], lk) end
    if deleted >= batch then break end
  end
end
if redis.call('TYPE', KEYS[3])['ok'] == 'list' then
  while deleted < batch and redis.call('RPOP', KEYS[3]) do deleted = deleted + 1 end
end
return deleted
