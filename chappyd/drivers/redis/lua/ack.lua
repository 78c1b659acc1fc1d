-- ack: the job succeeded; delete it, only if the caller still holds its reservation.
-- KEYS[1] job hash        P:{q}:job:<id>
-- KEYS[2] in-flight zset  P:{q}:inflight
-- ARGV[1] id   ARGV[2] token
-- Returns 1, or 0 (nothing changed) when the token is stale.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
