#!/usr/bin/env lua5.4
-- Shows: an in-place upgrade: the pool keeps its id (jobs need not change):
-- it shrinks to zero (running tasks requeued), its virtualMachineConfiguration
-- changes while it is empty, and it grows back to its old size on 1.1.0.
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

local id = "render-ip"
assert(batch:create_pool { id = id, vmSize = "Standard_D2s_v3", targetDedicatedNodes = 3,
  virtualMachineConfiguration = { imageReference = { virtualMachineImageId = GALLERY .. "/versions/1.0.0" },
    nodeAgentSKUId = "batch.node.ubuntu 22.04" } })
assert(batch:wait_pool(id, { interval = POLL }))

local r = assert(rollout.new(batch, {
  strategy = "in-place", pools = { id }, image = GALLERY .. "/versions/1.1.0", arm = arm,
  deallocation = "requeue", timeouts = { poll = POLL },
  hooks = { on_step = function(s) print(("[step] %3d %-8s %s"):format(s.n, s.outcome, s.name)) end },
}))
local report, why = r:run()
if not report then
  print("[rollout] failed: " .. tostring(why))
  os.exit(1)
end
local pool = assert(batch:get_pool(id))
print(("[rollout] in-place upgrade done: %s on %s, %d nodes"):format(id,
  pool.virtualMachineConfiguration.imageReference.virtualMachineImageId:match("[^/]+$"), pool.currentDedicatedNodes))
