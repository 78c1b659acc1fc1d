-- push: insert jobs into one queue, each ready or delayed by its available_at, and
-- wake one idle worker.
-- KEYS[1]    ready list      P:{q}:ready
-- KEYS[2]    delayed zset    P:{q}:delayed   (score: available_at, unix s)
-- KEYS[3]    wake list       P:{q}:wake
-- KEYS[4..]  one job hash per job, P:{q}:job:<id>, in the order of ARGV's triples
-- ARGV       triples: id, payload, available_at (unix s, text kept as given)
-- Returns how many jobs were made ready at once.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%.6f', now)
local ready, ready_count = {}, 0
for i = 4, #KEYS do
  local j = 1 + (i - 4) * 3
  local id, at = ARGV[j], ARGV[j + 2]
  -- attempts and the worker's fields appear at reservation (HINCRBY counts from 0)
  redis.call('HSET', KEYS[i], 'payload', ARGV[j + 1], 'available_at', at, 'created_at', stamp)
  if tonumber(at) <= now then
    ready[#ready + 1] = id
    ready_count = ready_count + 1
    if #ready == 1000 then  -- unpack() has a stack limit: flush in chunks
      redis.call('LPUSH', KEYS[1], unpack(ready))
      ready = {}
    end
  else
    redis.call('ZADD', KEYS[2], at, id)
  end
end
if #ready > 0 then redis.call('LPUSH', KEYS[1], unpack(ready)) end
-- The wake list holds at most one marker: '1' (work is ready: one waiter returns, and
-- a worker that leaves work behind wakes the next, see reserve.lua) or 'd' (a delayed
-- job was added: a waiter re-reads the next due time and blocks again).
local marker = redis.call('LINDEX', KEYS[3], 0)
if ready_count > 0 then
  if not marker then redis.call('LPUSH', KEYS[3], '1')
  elseif marker ~= '1' then redis.call('LSET', KEYS[3], 0, '1') end
elseif not marker then
  redis.call('LPUSH', KEYS[3], 'd')
end
return ready_count
