#!/usr/bin/env lua5.4
-- Shows: a rolling upgrade of three pools, two at a time, never more than
-- 2 nodes above their combined size (the budget is also cut to the
-- account's free core quota): each new pool on 1.1.0 grows while its old
-- pool on 1.0.0 shrinks.
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

-- three pools on 1.0.0 to roll (made here so the example stands alone)
local pools = { "render-east", "render-west", "render-north" }
local made = {}
for i, id in ipairs(pools) do
  made[i] = function()
    assert(batch:create_pool { id = id, vmSize = "Standard_D2s_v3", targetDedicatedNodes = i + 1,
      virtualMachineConfiguration = { imageReference = { virtualMachineImageId = GALLERY .. "/versions/1.0.0" },
        nodeAgentSKUId = "batch.node.ubuntu 22.04" } })
    assert(batch:wait_pool(id, { interval = POLL }))
  end
end
azbatch.parallel(made)

local r = assert(rollout.new(batch, {
  strategy = "rolling", pools = pools, image = GALLERY .. "/versions/1.1.0", arm = arm,
  batch = 2, extra_nodes = 2, deallocation = "taskcompletion",
  timeouts = { poll = POLL },
  hooks = { on_step = function(s) print(("[step] %3d %-8s %s"):format(s.n, s.outcome, s.name)) end },
}))
local report, why = r:run()
if not report then
  print("[rollout] failed: " .. tostring(why))
  os.exit(1)
end
local on = 0
for _, id in ipairs(pools) do
  local audit = assert(batch:pool_image(r.rec.new[id], { arm = arm, nodes = false }))
  if audit.image.virtualMachineImageId:match("/1%.1%.0$") then on = on + 1 end
end
print(("[rollout] %d pools on 1.1.0 (%s)"):format(on, r.id))
