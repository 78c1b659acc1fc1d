-- enqueue_tick: push the run of a periodic job for one tick, unless that (job, tick)
-- was taken already or the schedule's last run still waits. One script, so the check
-- and the push are one atomic step however many masters race for the tick.
-- KEYS[1]  ready list        P:{q}:ready
-- KEYS[2]  delayed zset      P:{q}:delayed
-- KEYS[3]  wake list         P:{q}:wake
-- KEYS[4]  new job hash      P:{q}:job:<id>
-- KEYS[5]  tick record       P:{q}:tick:<tick>:<job>   (a dedup record that expires)
-- KEYS[6]  last ticks hash   P:{q}:schedules           (job -> last enqueued tick)
-- KEYS[7]  last runs hash    P:{q}:schedule_runs       (job -> id of that tick's job)
-- KEYS[8]  job hash prefix   P:{q}:job:                (+ the last run's id)
-- ARGV[1] job name   ARGV[2] tick (unix s)   ARGV[3] new id   ARGV[4] payload
-- ARGV[5] available_at   ARGV[6] record lifetime (s)   ARGV[7] '1': skip if waiting
-- Returns {'duplicate'}, {'skipped'} or {'enqueued', id}.
if not redis.call('SET', KEYS[5], '1', 'NX', 'EX', ARGV[6]) then
  return {'duplicate'}
end
if ARGV[7] == '1' then
  local last = redis.call('HGET', KEYS[7], ARGV[1])
  if last then
    local h = redis.call('HMGET', KEYS[8] .. last, 'payload', 'token', 'failed_at')
    if h[1] and not h[2] and not h[3] then return {'skipped'} end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local id, at = ARGV[3], ARGV[5]
redis.call('HSET', KEYS[4], 'payload', ARGV[4], 'available_at', at,
           'created_at', string.format('%.6f', now))
local marker = redis.call('LINDEX', KEYS[3], 0)
if tonumber(at) <= now then
  redis.call('LPUSH', KEYS[1], id)
  if not marker then redis.call('LPUSH', KEYS[3], '1')
  elseif marker ~= '1' then redis.call('LSET', KEYS[3], 0, '1') end
else
  redis.call('ZADD', KEYS[2], at, id)
  if not marker then redis.call('LPUSH', KEYS[3], 'd') end
end
local previous = tonumber(redis.call('HGET', KEYS[6], ARGV[1]) or '0')
if tonumber(ARGV[2]) > previous then redis.call('HSET', KEYS[6], ARGV[1], ARGV[2]) end
redis.call('HSET', KEYS[7], ARGV[1], id)
return {'enqueued', id}
