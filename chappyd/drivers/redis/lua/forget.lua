-- forget / flush: delete failed jobs of one queue (never live ones).
-- KEYS[1] failed zset     P:{q}:failed
-- KEYS[2] job key prefix  P:{q}:job:   (deliberate exception: job hash = prefix..id)
-- KEYS[3] unique hash     P:{q}:unique (a key still held by a deleted job is freed)
-- ARGV[1] 'all' (then ARGV[2] is the batch size) or 'ids' (then ARGV[2..] are ids)
-- Returns how many were deleted (in 'all' mode, call again until 0).
-- frees the job's unique key, if it holds one
local function free_key(uniq, job, id)
  local key = redis.call('HGET', job, 'unique_key')
  if key and redis.call('HGET', uniq, key) == id then redis.call('HDEL', uniq, key) end
end
local ids
if ARGV[1] == 'all' then
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
else
  ids = {}
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local deleted = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    free_key(KEYS[3], KEYS[2] .. id, id)
    redis.call('DEL', KEYS[2] .. id)
    deleted = deleted + 1
  end
end
return deleted
