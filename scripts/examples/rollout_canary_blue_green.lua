#!/usr/bin/env lua5.4
-- Shows: a canary, then blue-green, from ubuntu2204 1.0.0 to 1.1.0 with job
-- handover. The world's pool workers-v1 runs three jobs; a 1-node canary on
-- 1.1.0 is checked by a health hook, grown to full size, the jobs are moved
-- to it (disable with requeue, new poolInfo, enable) and the old pool goes.
local here = arg[0]:match("^(.*)/scripts/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath
local azbatch = require "azbatch"
local rollout = require "azbatch.rollout"

local GALLERY = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers"
  .. "/Microsoft.Compute/galleries/devgallery/images/ubuntu2204"
local POLL = tonumber(os.getenv("ROLLOUT_POLL") or "") or 1

local batch <close> = assert(azbatch.client {})
local endpoint = batch.endpoint
local arm = assert(azbatch.arm { endpoint = os.getenv("AZURE_RESOURCE_MANAGER_ENDPOINT")
  or ((endpoint:match("^http://127%.") or endpoint:match("^http://localhost")) and endpoint) or nil })

-- the canary is healthy when every node is idle or running and on 1.1.0
local function healthy(ctx, pool)
  for node in ctx.client:list_nodes(pool, { select = "id,state,virtualMachineInfo" }) do
    if node.state ~= "idle" and node.state ~= "running" then return nil, node.id .. " is " .. node.state end
  end
  local audit, why = ctx.client:pool_image(pool, { arm = arm })
  if not audit then return nil, why end
  for _, v in ipairs(audit.versions) do
    if v.version ~= "1.1.0" then return nil, ("%d node(s) on %s"):format(v.nodes, v.version) end
  end
  return true
end

local r = assert(rollout.new(batch, {
  strategy = "canary", canary = { nodes = 1, ["then"] = "blue-green" },
  pools = { "workers-v1" }, image = GALLERY .. "/versions/1.1.0", arm = arm,
  handover = "jobs", disable_tasks = "requeue",
  timeouts = { poll = POLL, wait = 900, step = 1800 },
  hooks = {
    health = healthy,
    notify = function(e) if e.type ~= "step" then print("[event] " .. e.type) end end,
    on_step = function(s) print(("[step] %3d %-8s %s"):format(s.n, s.outcome, s.name)) end,
  },
}))
local report, why = r:run()
if not report then
  print("[rollout] failed and rolled back: " .. tostring(why))
  os.exit(1)
end
local moved = {}
for job in batch:list_jobs { select = "id,poolInfo" } do moved[#moved + 1] = job.id .. "@" .. job.poolInfo.poolId end
table.sort(moved)
print("[rollout] jobs now on " .. r.rec.new["workers-v1"] .. ": " .. table.concat(moved, ", "))
