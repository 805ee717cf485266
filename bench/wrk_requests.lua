-- wrk script for the dispatch bench.
-- Arguments after `--`: <path> <prefix> <token>. With a prefix other than "-", every request
-- carries a distinct ?n=<prefix>-<thread>-<counter> (a new window each time); with "-" every
-- request is the same (duplicates). done() prints one BENCH_JSON line for the bench to parse.

local threads = {}
local counter = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  path = args[1]
  prefix = args[2]
  wrk.headers["Authorization"] = "Bearer " .. args[3]
end

function request()
  counter = counter + 1
  if prefix == "-" then
    return wrk.format("GET", path)
  end
  return wrk.format("GET", path .. "?n=" .. prefix .. "-" .. tid .. "-" .. counter)
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
