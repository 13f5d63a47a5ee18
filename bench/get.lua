-- wrk script for bench/http-ratio.sh: audited record reads only, a random record of the
-- fixture's (bench/fixture.sh) per request (ids: bench/ids.lua).

local ids = dofile("bench/ids.lua")
local headers = { ["Authorization"] = "Bearer " .. ids.token }

function request()
  local r = ids.records[math.random(#ids.records)]
  return wrk.format("GET", "/v1/tenants/" .. ids.tenant .. "/subjects/" .. r.subject ..
    "/records/" .. r.record .. "?purpose=essential.service", headers)
end
