-- wrk script: subscribe/cancel mix against the fundcore REST host (docs/apis.md, REST).
-- usage: wrk -t1 -c64 -d15s --latency -s mix.lua http://127.0.0.1:PORT -- TOKEN CLIENTS_FILE OUT_JSON
--
-- Request k goes to client k mod N: on even rounds it subscribes to a fund (minimum amount), on
-- odd rounds it cancels that fund. A client's cancel is N requests after its subscribe, so with
-- N well above the connection count the subscribe has completed before its cancel is sent and
-- every request is a valid operation (anything not 2xx is counted as an error).

-- globals, so that done() can read them from the thread with thread:get()
token, clients, out_path = nil, nil, nil
n = 0
k = 0
non2xx = 0
by_status = {}
first_error = ""

function init(args)
  token = args[1]
  out_path = args[3]
  clients = {}
  for line in io.lines(args[2]) do
    if #line > 0 then clients[#clients + 1] = line end
  end
  n = #clients
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
end

-- wrk calls request() once on thread 0's state to check the script (script_verify_request) and
-- never sends that one: answer it with a request that does not consume a step of the cycle.
verified = false

function request()
  if not verified then
    verified = true
    return wrk.format("GET", "/health")
  end
  local i = k % n
  local round = math.floor(k / n)
  local fund = (math.floor(round / 2) % 5) + 1
  local id = clients[i + 1]
  k = k + 1
  if round % 2 == 0 then
    return wrk.format("POST", "/clients/" .. id .. "/subscriptions", nil,
                      '{"fund_id": ' .. fund .. '}')
  else
    return wrk.format("DELETE", "/clients/" .. id .. "/subscriptions/" .. fund, nil, nil)
  end
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    by_status[status] = (by_status[status] or 0) + 1
    if first_error == "" then first_error = status .. " " .. string.sub(body or "", 1, 300) end
  end
end

-- done() runs in the main Lua state, not the thread's: per-thread counters come via thread:get
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local errs = 0
  local statuses = {}
  for _, t in ipairs(threads) do
    errs = errs + (t:get("non2xx") or 0)
    local bs = t:get("by_status") or {}
    for s, c in pairs(bs) do statuses[#statuses + 1] = '"' .. s .. '": ' .. c end
  end
  local first = threads[1] and threads[1]:get("first_error") or ""
  first = string.gsub(first, '[\\"]', "'")
  local secs = summary.duration / 1e6
  local json = string.format(
    '{"requests": %d, "seconds": %.3f, "req_per_s": %.1f, "p50_ms": %.3f, "p90_ms": %.3f, ' ..
    '"p99_ms": %.3f, "max_ms": %.3f, "non2xx": %d, "socket_errors": %d, "statuses": {%s}, "first_error": "%s"}',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, errs,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(statuses, ", "), first)
  io.write("RESULT " .. json .. "\n")
  local path = threads[1] and threads[1]:get("out_path")
  if path then
    local f = io.open(path, "w")
    f:write(json)
    f:close()
  end
end
