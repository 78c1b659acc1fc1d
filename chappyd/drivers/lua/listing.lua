-- listing: one slice of a queue's jobs in one state, newest first, optionally only the
-- jobs whose payload names one job (the dashboard's filter). The caller pages through
-- a large set slice by slice, so no call blocks the server for long.
-- KEYS[1]  the state's key: a zset (delayed, in-flight, failed) or the ready list
-- KEYS[2]  job hash prefix P:{q}:job: (built as KEYS[2]..id, in the same slot; the
--          ids are only known inside the script)
-- ARGV[1]  'zset' or 'list'
-- ARGV[2], ARGV[3]  min and max score (zset only)
-- ARGV[4], ARGV[5]  offset and count of the slice
-- ARGV[6]  the job name to keep ('' keeps every job)
-- ARGV[7]  that name as JSON-escaped text, a cheap substring test before decoding
-- Returns {members scanned, {id, time, id, time, ...}} (time: the zset score, or a
-- ready job's available_at).
local offset, count = tonumber(ARGV[4]), tonumber(ARGV[5])
local rows = {}
if ARGV[1] == 'zset' then
  rows = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[3], ARGV[2], 'WITHSCORES',
                    'LIMIT', offset, count)
else
  for _, id in ipairs(redis.call('LRANGE', KEYS[1], offset, offset + count - 1)) do
    rows[#rows + 1] = id
    rows[#rows + 1] = redis.call('HGET', KEYS[2] .. id, 'available_at') or '0'
  end
end
local name, escaped = ARGV[6], ARGV[7]
if name == '' then return {#rows / 2, rows} end
local found = {}
for i = 1, #rows, 2 do
  local payload = redis.call('HGET', KEYS[2] .. rows[i], 'payload')
  if payload and string.find(payload, escaped, 1, true) then
    local ok, decoded = pcall(cjson.decode, payload)
    if ok and type(decoded) == 'table' and decoded['job'] == name then
      found[#found + 1] = rows[i]
      found[#found + 1] = rows[i + 1]
    end
  end
end
return {#rows / 2, found}
