#!/usr/bin/env lua5.4
-- Shows: a canary that fails its health check and is rolled back: the
-- canary pool is deleted, the pool in service is left exactly as it was,
-- and the report says which step failed and what the rollback did.
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

local id = "render-cf"
assert(batch:create_pool { id = id, vmSize = "Standard_D2s_v3", targetDedicatedNodes = 2,
  virtualMachineConfiguration = { imageReference = { virtualMachineImageId = GALLERY .. "/versions/1.0.0" },
    nodeAgentSKUId = "batch.node.ubuntu 22.04" } })
assert(batch:wait_pool(id, { interval = POLL }))

local r = assert(rollout.new(batch, {
  strategy = "canary", canary = { nodes = 1, ["then"] = "blue-green" },
  pools = { id }, image = GALLERY .. "/versions/1.1.0", arm = arm, timeouts = { poll = POLL },
  hooks = {
    -- a smoke test that the new image fails (here: always)
    health = function(_, pool) return nil, "the render smoke test failed on " .. pool end,
  },
}))
local report, why, err = r:run()
if report then
  print("[rollout] unexpected: the canary passed")
  os.exit(1)
end
io.write(err.report.text)
local pool = assert(batch:get_pool(id))
local left = pool.virtualMachineConfiguration.imageReference.virtualMachineImageId:match("[^/]+$")
print(("[rollout] %s (%s)"):format(why, err.code))
print(("[rollout] rolled back: %s untouched (%s, %d nodes), canary pool gone: %s"):format(id, left,
  pool.targetDedicatedNodes, tostring(not batch:pool_exists(r.rec.new[id]))))
