-- The fixture's ids (bench/fixture.sh) for the wrk scripts of bench/, read from the file named
-- by SOAK_IDS (lines: "tenant T", "token K", "R subject record email"). Loaded with
-- `dofile("bench/ids.lua")` from the repository's root, where the scripts run wrk.

local ids = { records = {} }
for line in io.lines(os.getenv("SOAK_IDS")) do
  local kind, a, b, c = line:match("^(%S+) (%S+) ?(%S*) ?(%S*)$")
  if kind == "tenant" then ids.tenant = a
  elseif kind == "token" then ids.token = a
  elseif kind == "R" then table.insert(ids.records, { subject = a, record = b, email = c })
  end
end
return ids
