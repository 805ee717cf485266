-- wrk script for the webhook bench: POSTs an EMAIL_SENT body whose scheduled_email.id is new
-- on every request, so every delivery is a new event (never a duplicate).
-- Arguments after `--`: <path> <token> <template file> <id prefix>. The template holds the
-- placeholder __SCHEDULED_ID__; the id is <prefix><thread><9-digit counter>, digits only.
-- done() prints one BENCH_JSON line for the bench to parse (bench/wrk_report.lua).

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

dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "wrk_report.lua")

function done(summary, latency, requests)
  report(summary, latency)
end
