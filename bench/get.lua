-- wrk script for bench/http-ratio.sh: audited record reads only, a random record of the
-- fixture's (bench/fixture.sh) per request. Ids come from the file named by SOAK_IDS.

local ids = { records = {} }
for line in io.lines(os.getenv("SOAK_IDS")) do
  local kind, a, b = line:match("^(%S+) (%S+) ?(%S*)")
  if kind == "tenant" then ids.tenant = a
  elseif kind == "token" then ids.token = a
  elseif kind == "R" then table.insert(ids.records, { subject = a, record = b })
  end
end

local headers = { ["Authorization"] = "Bearer " .. ids.token }

function request()
  local r = ids.records[math.random(#ids.records)]
  return wrk.format("GET", "/v1/tenants/" .. ids.tenant .. "/subjects/" .. r.subject ..
    "/records/" .. r.record .. "?purpose=essential.service", headers)
end
