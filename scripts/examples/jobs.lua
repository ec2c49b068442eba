-- The account's jobs and the pools they run on, for `azbatch run`:
--   azbatch run scripts/examples/jobs.lua [POOL_PREFIX]
-- (azbatch run gives the script the globals azbatch, client and arg.)
-- luacheck: read globals azbatch client
local prefix = ...
local rows = {}
for job in client:list_jobs { select = "id,state,poolInfo" } do
  local pool = type(job.poolInfo) == "table" and job.poolInfo.poolId or "(auto pool)"
  if not prefix or pool:sub(1, #prefix) == prefix then
    rows[#rows + 1] = ("%-16s %-10s %s"):format(job.id, job.state, pool)
  end
end
table.sort(rows)
print(("%-16s %-10s %s"):format("Job", "State", "Pool"))
for _, row in ipairs(rows) do print(row) end
return true
