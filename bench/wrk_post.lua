-- wrk script of the bench (bench/wrk.py): POST a JSON body whose "{seed}" is replaced by a
-- per-request seed, count answers by status, and print one JSON line when done.
--
--   wrk -t1 -c32 -d20s -s bench/wrk_post.lua http://127.0.0.1:8000 -- /generate \
--       '{"model": "dcgan-fashion", "n": 1, "seed": {seed}}' 0
--
-- Arguments after "--": the path, the body template, the first seed. Thread i draws seeds
-- first + i * 2^32 + k (k = 0, 1, ...), so no two requests of a run are alike. A 200 whose
-- body does not start with the PNG signature is counted as "bad-body", a 503 with a
-- Retry-After header as "503+retry-after".

local threads = {}
local PNG = "\137PNG\r\n\26\n"

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  path = args[1] or "/"
  template = args[2] or "{}"
  seed = (tonumber(args[3]) or 0) + thread_index * 4294967296
  headers = { ["Content-Type"] = "application/json" }
  counts = {}
end

function request()
  local body = template:gsub("{seed}", string.format("%d", seed))
  seed = seed + 1
  return wrk.format("POST", path, headers, body)
end

local function count(kind)
  counts[kind] = (counts[kind] or 0) + 1
end

function response(status, hdrs, body)
  if status == 200 then
    if body:sub(1, 8) == PNG then count("ok") else count("bad-body") end
  elseif status == 503 and (hdrs["retry-after"] or hdrs["Retry-After"]) then
    count("503+retry-after")
  else
    count(tostring(status))
  end
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts") or {}
    for kind, n in pairs(c) do totals[kind] = (totals[kind] or 0) + n end
  end
  local parts = {}
  for kind, n in pairs(totals) do
    table.insert(parts, string.format('"%s": %d', kind, n))
  end
  local pct = {}
  for _, p in ipairs({ 50, 90, 95, 99 }) do
    table.insert(pct, string.format('"%d": %d', p, latency:percentile(p)))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, "counts": {%s}, ' ..
    '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "percentiles": {%s}}}\n',
    summary.duration, summary.requests, summary.bytes, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout,
    latency.min, latency.mean, latency.max, table.concat(pct, ", ")))
end
