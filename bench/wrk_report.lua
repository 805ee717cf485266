-- The BENCH_JSON line both wrk scripts print from done(): the latencies of the requests wrk
-- sent, not the histogram wrk prints.
--
-- wrk 4 "corrects" its latency histogram for coordinated omission before done() sees it: with
-- interval = duration / (requests / connections), every latency n >= 2 x interval adds one
-- imagined sample at n - interval, n - 2 x interval, ... down to just above interval
-- (stats_correct() in wrk.c). The imagined samples stand for requests an open-loop client at
-- this case's own rate would have sent during the stall, so the same 150 ms stall weighs four
-- times more on a case running four times faster: on the duplicate route (3,000 req/s, a 1.3 ms
-- interval) a few stalls put hundreds of samples between 2 and 150 ms and moved its p99 from
-- 4 ms to 96-162 ms, while the baseline (800 req/s) kept its own. The targets compare the
-- latencies of the requests each case served, so this file takes the correction back out (it
-- is exact: a bucket only ever receives samples from higher ones) and reports those, beside
-- wrk's own p99 and mean for information.
--
-- The number of connections comes from BENCH_WRK_CONNECTIONS (wrk gives a script no way to
-- read -c).

local function histogram(latency)
  local counts, values = {}, {}
  for i = 1, #latency do
    local value, count = latency(i)
    counts[value] = count
    values[#values + 1] = value
  end
  return counts, values
end

local function uncorrect(counts, values, interval)
  -- Highest bucket first: its count is then its own (higher buckets have given theirs back),
  -- and it gives back what wrk added below it.
  for k = #values, 1, -1 do
    local value = values[k]
    if value < 2 * interval then break end
    local count = counts[value]
    local at = value - interval
    while count > 0 and at > interval do
      counts[at] = (counts[at] or 0) - count
      at = at - interval
    end
  end
end

local function summarise(counts, values)
  local total, sum, max = 0, 0, 0
  for _, value in ipairs(values) do
    local count = counts[value]
    assert(count >= 0, "taking wrk's correction out left a negative count: see uncorrect()")
    if count > 0 then
      total = total + count
      sum = sum + value * count
      max = value
    end
  end
  local function percentile(p)
    -- wrk's rule (stats_percentile): the first value whose cumulative count reaches the rank.
    local rank, seen = math.floor(p / 100 * total + 0.5 + 0.5), 0
    for _, value in ipairs(values) do
      seen = seen + counts[value]
      if seen >= rank then return value end
    end
    return max
  end
  return {count = total, mean = total > 0 and sum / total or 0, max = max,
          p50 = percentile(50), p90 = percentile(90), p99 = percentile(99)}
end

function report(summary, latency)
  local connections = tonumber(os.getenv("BENCH_WRK_CONNECTIONS"))
  assert(connections, "set BENCH_WRK_CONNECTIONS to wrk's -c")
  local counts, values = histogram(latency)
  local per_connection = math.floor(summary.requests / connections)
  local interval = per_connection > 0 and math.floor(summary.duration / per_connection) or 0
  if interval > 0 then uncorrect(counts, values, interval) end
  local recorded = summarise(counts, values)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"recorded":%d,"interval_us":%d,' ..
    '"wrk_p99_us":%d,"wrk_mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    recorded.p50, recorded.p90, recorded.p99, recorded.max, recorded.mean, recorded.count,
    interval, latency:percentile(99), latency.mean))
end
