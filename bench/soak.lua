-- wrk request mix for bench/soak.sh: 60% record reads, 25% record creates, 10% blind-index
-- lookups, 5% subject exports, over the subjects and records the script created (ids:
-- bench/ids.lua).

local ids = dofile("bench/ids.lua")
local purpose = "purpose=essential.service"
local headers = { ["Authorization"] = "Bearer " .. ids.token, ["Content-Type"] = "application/json" }
local counter = 0

-- Letters only: a run of digits could read as a payment card number, which Ward refuses.
local function letters(n)
  local s = ""
  repeat
    s = s .. string.char(97 + n % 26)
    n = math.floor(n / 26)
  until n == 0
  return s
end

function request()
  counter = counter + 1
  local r = ids.records[math.random(#ids.records)]
  local base = "/v1/tenants/" .. ids.tenant .. "/subjects/" .. r.subject
  local dice = math.random(100)
  if dice <= 60 then
    return wrk.format("GET", base .. "/records/" .. r.record .. "?" .. purpose, headers)
  elseif dice <= 85 then
    local name = letters(counter * 7919 + math.random(1000000))
    local body = '{"collection": "contact", "fields": {"name": "Soak ' .. name ..
      '", "email": "' .. name .. '@example.com"}}'
    return wrk.format("POST", base .. "/records", headers, body)
  elseif dice <= 95 then
    return wrk.format("GET", "/v1/tenants/" .. ids.tenant .. "/lookup?collection=contact&field=email&value=" ..
      r.email .. "&" .. purpose, headers)
  else
    return wrk.format("GET", base .. "/export", headers)
  end
end

local failures = 0
function response(status, headers, body)
  if status >= 300 then
    failures = failures + 1
    if failures <= 5 then io.stderr:write("soak: unexpected " .. status .. ": " .. body:sub(1, 200) .. "\n") end
  end
end

function done(summary, latency, requests)
  io.write(string.format("soak: %d requests, %d errors (connect %d, read %d, write %d, status %d, timeout %d)\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.status + summary.errors.timeout, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
  io.write(string.format("soak: latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
