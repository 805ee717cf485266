-- wrk script for the dispatch bench.
-- Arguments after `--`: <path> <prefix> <token>. With a prefix other than "-", every request
-- carries a distinct ?n=<prefix>-<thread>-<counter> (a new window each time); with "-" every
-- request is the same (duplicates). done() prints one BENCH_JSON line for the bench to
-- parse (bench/wrk_report.lua).

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

dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "wrk_report.lua")

function done(summary, latency, requests)
  report(summary, latency)
end
