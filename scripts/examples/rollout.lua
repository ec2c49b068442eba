#!/usr/bin/env lua5.4
-- Shows: a blue-green rollout of a new gallery image version with the
-- rollout library: a pool on 1.0.0 (made here, so the demo stands alone) is
-- replaced by a pool on 1.1.0, its jobs handed over, the old pool deleted;
-- then the report, step by step, and the timeline picture (SVG).
--
-- Runs against whatever the environment names (AZURE_BATCH_ENDPOINT plus
-- Entra ID variables); `make demo` points it at the local emulator.
local here = arg[0]:match("^(.*)/scripts/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath
local azbatch = require "azbatch"
local rollout = require "azbatch.rollout"

local SUB = os.getenv("DEMO_SUBSCRIPTION") or "00000000-0000-0000-0000-000000000001"
local GALLERY = ("/subscriptions/%s/resourceGroups/azbatch-dev/providers/Microsoft.Compute"
  .. "/galleries/devgallery/images/ubuntu2204"):format(SUB)
local NODES = tonumber(os.getenv("DEMO_NODES") or "") or 4
local POLL = tonumber(os.getenv("ROLLOUT_POLL") or "") or 1

local batch <close> = assert(azbatch.client {})    -- endpoint and credential from the environment
-- the emulator serves ARM on the same address; Azure has its own
local endpoint = batch.endpoint
local local_emulator = endpoint:match("^http://127%.") or endpoint:match("^http://localhost")
local arm = assert(azbatch.arm { endpoint = os.getenv("AZURE_RESOURCE_MANAGER_ENDPOINT")
  or (local_emulator and endpoint) or nil })

local blue = "render-v100"
if not batch:pool_exists(blue) then
  assert(batch:create_pool {
    id = blue, vmSize = "Standard_D4s_v5", targetDedicatedNodes = NODES, resizeTimeout = "PT15M",
    virtualMachineConfiguration = { imageReference = { virtualMachineImageId = GALLERY .. "/versions/1.0.0" },
      nodeAgentSKUId = "batch.node.ubuntu 22.04" },
  })
  assert(batch:wait_pool(blue, { interval = POLL, timeout = 600 }))
end
print(("[rollout] %s is steady on 1.0.0 with %d nodes"):format(blue, NODES))

local r = assert(rollout.new(batch, {
  strategy = "blue-green", pools = { blue }, image = GALLERY .. "/versions/1.1.0", arm = arm,
  timeouts = { poll = POLL, wait = 900 },
  hooks = { on_step = function(s) print(("[rollout] %3d %-8s %s"):format(s.n, s.outcome, s.name)) end },
}))
r:dry_run()
local report, why, err = r:run()
report = report or err.report
io.write(report.text)
local svg = os.getenv("ROLLOUT_SVG")
if svg then
  local f = assert(io.open(svg, "w"))
  f:write(r:timeline_svg())
  f:close()
  print("[rollout] timeline: " .. svg)
end
if not report or report.state ~= "done" then
  print("[rollout] failed: " .. tostring(why))
  os.exit(1)
end
print(("[rollout] rollout %s: done"):format(r.id))
