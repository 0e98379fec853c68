-- wrk script for `make soak`: rotate over the five endpoints and both credential kinds,
-- and count response statuses per second so the outage phase can be read as a timeline.
-- AUTH_JWT and AUTH_KEY come from the environment.

local paths = {
  "/api/v1/stats", "/api/v1/sessions/recent?limit=10", "/api/v1/sessions?page=1&pageSize=20",
  "/api/v1/uploads/recent?limit=10", "/api/v1/uploads?page=2&pageSize=20",
}
local credentials = { os.getenv("AUTH_JWT"), os.getenv("AUTH_KEY") }
local threads = {}
local counter = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  timeline = {}
end

function request()
  counter = counter + 1
  local path = paths[counter % #paths + 1]
  local credential = credentials[counter % #credentials + 1]
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. credential })
end

-- Flat "second:status" keys: wrk crashes copying nested tables between threads.
function response(status, headers, body)
  local key = os.time() .. ":" .. status
  timeline[key] = (timeline[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get("timeline")) do
      local second, status = key:match("(%d+):(%d+)")
      merged[second] = merged[second] or {}
      merged[second][status] = (merged[second][status] or 0) + count
    end
  end
  local parts = {}
  for second, bucket in pairs(merged) do
    local statuses = {}
    for status, count in pairs(bucket) do
      table.insert(statuses, string.format('"%s": %d', status, count))
    end
    table.insert(parts, string.format('"%s": {%s}', second, table.concat(statuses, ", ")))
  end
  local e = summary.errors
  io.write(string.format(
    'SOAK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, ' ..
    '"timeline": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status, table.concat(parts, ", ")))
end
