-- held_by: every job an owner holds, over the given queues (the in-flight zsets are
-- small: at most workers x prefetch jobs per queue).
-- KEYS, in groups of 2 per queue:
--   +1 in-flight zset   P:{q}:inflight
--   +2 job key prefix   P:{q}:job:   (deliberate exception: job hash = prefix..id)
-- ARGV[1] owner   ARGV[2..] queue names, one per group
-- Returns 6 per job: id, queue, payload, attempts, token, reserved_at
local out = {}
for g = 0, #KEYS / 2 - 1 do
  local inflight, prefix, queue = KEYS[g * 2 + 1], KEYS[g * 2 + 2], ARGV[g + 2]
  for _, id in ipairs(redis.call('ZRANGE', inflight, 0, -1)) do
    local h = redis.call('HMGET', prefix .. id, 'owner', 'payload', 'attempts', 'token',
                         'reserved_at')
    if h[1] == ARGV[1] then
      local n = #out
      out[n + 1], out[n + 2], out[n + 3] = id, queue, h[2]
      out[n + 4], out[n + 5], out[n + 6] = h[3], h[4], h[5]
    end
  end
end
return out
