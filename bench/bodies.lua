-- wrk script for bench/load.py: POST one JSON body per request from a file of JSON lines.
--
--   wrk -t T -c C -d 15s -s bench/bodies.lua URL -- FILE MODE T [HEADER]
--
-- MODE "unique": thread i of T takes lines i, i+T, i+2T, ... so no two threads send the same
--   body, and each body at most once (first deliveries); a thread that runs out starts
--   over and counts it in `wrapped`, which bench/load.py reports as a failed run.
-- MODE "cycle": every thread takes every line, starting at its own place, and goes round
--   and round (redeliveries, order creation with one body).
-- T: wrk's thread count again (setup() and init() run thread by thread, so a thread
--   can't count the others).
-- HEADER: an extra "Name: value" header (e.g. the shop's Authorization).
-- done() prints one line "BENCH_JSON {...}" (latencies in microseconds) for bench/load.py.

local threads = {}
local count = 0

function setup(thread)
   count = count + 1
   thread:set("index", count)
   table.insert(threads, thread)
end

local requests = {}
local position = 0
-- globals, so done() can read them with thread:get()
wrapped = 0
sent = 0
mode = "unique"

function init(args)
   local path, nthreads, header = args[1], tonumber(args[3]), args[4]
   mode = args[2] or "unique"
   local index = wrk.thread:get("index")
   local headers = { ["Content-Type"] = "application/json" }
   if header then
      local name, value = header:match("^([^:]+):%s*(.*)$")
      headers[name] = value
   end
   local line_no = 0
   for line in io.lines(path) do
      if (mode == "cycle" or line_no % nthreads == index - 1) and #line > 0 then
         requests[#requests + 1] = wrk.format("POST", nil, headers, line)
      end
      line_no = line_no + 1
   end
   if #requests == 0 then
      error("no bodies for thread " .. index .. " in " .. path)
   end
   if mode == "cycle" then  -- every thread has every line: start them apart
      position = math.floor((index - 1) * #requests / nthreads)
   end
end

function request()
   position = position + 1
   if position > #requests then
      position = 1
      wrapped = wrapped + 1
   end
   sent = sent + 1
   return requests[position]
end

function done(summary, latency, _)
   local total_wrapped, total_sent = 0, 0
   for _, t in ipairs(threads) do
      total_wrapped = total_wrapped + (t:get("wrapped") or 0)
      total_sent = total_sent + (t:get("sent") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "errors": {"connect": %d, '
      .. '"read": %d, "write": %d, "status": %d, "timeout": %d}, "wrapped": %d, '
      .. '"sent": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write,
      e.status, e.timeout, total_wrapped, total_sent))
end
