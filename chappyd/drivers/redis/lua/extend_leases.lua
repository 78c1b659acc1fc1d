-- extend_leases: push the lease deadline of every job held by the given owners to
-- now + lease_s (the master renews its running children's leases every lease/3).
-- KEYS, in groups of 2 per queue:
--   +1 in-flight zset   P:{q}:inflight
--   +2 job key prefix   P:{q}:job:   (deliberate exception: job hash = prefix..id)
-- ARGV[1] lease_s   ARGV[2..] owners
-- Returns how many leases were extended.
local t = redis.call('TIME')
local deadline = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000
                                       + tonumber(ARGV[1]))
local owners = {}
for i = 2, #ARGV do owners[ARGV[i]] = true end
local extended = 0
for g = 0, #KEYS / 2 - 1 do
  local inflight, prefix = KEYS[g * 2 + 1], KEYS[g * 2 + 2]
  for _, id in ipairs(redis.call('ZRANGE', inflight, 0, -1)) do
    local owner = redis.call('HGET', prefix .. id, 'owner')
    if owner and owners[owner] then
      redis.call('ZADD', inflight, 'XX', deadline, id)
      extended = extended + 1
    end
  end
end
return extended
