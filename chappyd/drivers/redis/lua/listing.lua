-- listing: one slice of a queue's jobs in one state, newest first, optionally only the
-- jobs whose payload names one job (the dashboard's filter). The caller pages through
-- a large set slice by slice, so no call blocks the server for long; a sorted set is
-- sliced by rank, so a deep page costs what the first one does.
-- KEYS[1]  the state's key: a zset (delayed, in-flight, failed) or the ready list
-- KEYS[2]  job hash prefix P:{q}:job: (built as KEYS[2]..id, in the same slot; the
--          ids are only known inside the script)
-- ARGV[1]  'zset' or 'list'
-- ARGV[2]  zset only: keep scores > this ('' = no lower bound)
-- ARGV[3]  zset only: keep scores <= this ('' = no upper bound)
-- ARGV[4], ARGV[5]  offset and size of the slice, within those bounds
-- ARGV[6]  the job name to keep ('' keeps every job)
-- ARGV[7]  that name as JSON-escaped text, a cheap substring test before decoding
-- ARGV[8]  at most this many matches are returned (0: count them only)
-- Returns {members scanned, matches, {id, time, id, time, ...}} (time: the zset score,
-- or a ready job's available_at).
local offset, size = tonumber(ARGV[4]), tonumber(ARGV[5])
local rows = {}
if ARGV[1] == 'zset' then
  local start = offset
  if ARGV[3] ~= '' then start = start + redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[3], '+inf') end
  local got = redis.call('ZREVRANGE', KEYS[1], start, start + size - 1, 'WITHSCORES')
  local low = tonumber(ARGV[2])
  for i = 1, #got, 2 do
    if low and tonumber(got[i + 1]) <= low then break end
    rows[#rows + 1] = got[i]
    rows[#rows + 1] = got[i + 1]
  end
else
  for _, id in ipairs(redis.call('LRANGE', KEYS[1], offset, offset + size - 1)) do
    rows[#rows + 1] = id
    rows[#rows + 1] = redis.call('HGET', KEYS[2] .. id, 'available_at') or '0'
  end
end
local name, escaped, want = ARGV[6], ARGV[7], tonumber(ARGV[8])
local found, matches = {}, 0
for i = 1, #rows, 2 do
  local keep = name == ''
  if not keep then
    local payload = redis.call('HGET', KEYS[2] .. rows[i], 'payload')
    if payload and string.find(payload, escaped, 1, true) then
      local ok, decoded = pcall(cjson.decode, payload)
      keep = ok and type(decoded) == 'table' and decoded['job'] == name
    end
  end
  if keep then
    matches = matches + 1
    if matches <= want then
      found[#found + 1] = rows[i]
      found[#found + 1] = rows[i + 1]
    end
  end
end
return {#rows / 2, matches, found}
