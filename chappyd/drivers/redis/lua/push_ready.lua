-- push_ready: insert one job that is ready now by the producer's clock and wake one
-- idle worker. The one-by-one push path: no loop, no TIME call, three hash fields
-- (attempts and the worker's fields appear at reservation), about half of push.lua's
-- server time per job.
-- KEYS[1]  ready list  P:{q}:ready
-- KEYS[2]  wake list   P:{q}:wake
-- KEYS[3]  job hash    P:{q}:job:<id>
-- ARGV[1]  id   ARGV[2] payload   ARGV[3] available_at   ARGV[4] created_at (unix s)
redis.call('HSET', KEYS[3], 'payload', ARGV[2], 'available_at', ARGV[3],
           'created_at', ARGV[4])
redis.call('LPUSH', KEYS[1], ARGV[1])
-- at most one marker, as in push.lua
local marker = redis.call('LINDEX', KEYS[2], 0)
if not marker then redis.call('LPUSH', KEYS[2], '1')
elseif marker ~= '1' then redis.call('LSET', KEYS[2], 0, '1') end
return 1
