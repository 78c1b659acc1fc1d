-- ack: the job succeeded; delete it, only if the caller still holds its reservation.
-- KEYS[1] job hash        P:{q}:job:<id>
-- KEYS[2] in-flight zset  P:{q}:inflight
-- KEYS[3] unique hash     P:{q}:unique   (its key is freed)
-- ARGV[1] id   ARGV[2] token
-- Returns 1, or 0 (nothing changed) when the token is stale.
local h = redis.call('HMGET', KEYS[1], 'token', 'unique_key')
if h[1] ~= ARGV[2] then return 0 end
if h[2] and redis.call('HGET', KEYS[3], h[2]) == ARGV[1] then redis.call('HDEL', KEYS[3], h[2]) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
