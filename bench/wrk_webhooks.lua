-- wrk script for the webhook bench: POSTs an EMAIL_SENT body whose scheduled_email.id is new
-- on every request, so every delivery is a new event (never a duplicate).
-- Arguments after `--`: <path> <token> <template file> <id prefix>. The template holds the
-- placeholder __SCHEDULED_ID__; the id is <prefix><thread><9-digit counter>, digits only.
-- done() prints one BENCH_JSON line for the bench to parse.

local threads = {}
local counter = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  path = args[1]
  wrk.headers["X-Webhook-Token"] = args[2]
  wrk.headers["Content-Type"] = "application/json"
  local file = assert(io.open(args[3], "rb"))
  local template = file:read("*a")
  file:close()
  local at = string.find(template, "__SCHEDULED_ID__", 1, true)
  head = string.sub(template, 1, at - 1)
  tail = string.sub(template, at + string.len("__SCHEDULED_ID__"))
  prefix = args[4]
end

function request()
  counter = counter + 1
  local id = prefix .. tid .. string.format("%09d", counter)
  return wrk.format("POST", path, nil, head .. id .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
