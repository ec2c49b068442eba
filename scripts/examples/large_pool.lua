#!/usr/bin/env lua5.4
-- A 3000-node pool from a gallery image, as the seed documents describe it:
-- planned offline (5 replicas, a 45-minute resize timeout), preflighted
-- against the real gallery and account (too few replicas found), fixed
-- with `image replicate` (the version raised to 5 replicas in the account's
-- region, waited for), preflighted again, then created.
--
-- Environment: as scripts/examples/seed_gallery_pool.lua. EXAMPLE_NODES
-- changes the size (the account's core quota must allow it).
local here = arg[0]:match("^(.*)/scripts/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath
local azbatch = require "azbatch"

local NODES = math.tointeger(tonumber(os.getenv("EXAMPLE_NODES") or "")) or 3000
local VERSION = (os.getenv("EXAMPLE_GALLERY") or ("/subscriptions/00000000-0000-0000-0000-000000000001"
  .. "/resourceGroups/azbatch-dev/providers/Microsoft.Compute/galleries/devgallery"))
  .. "/images/ubuntu2204/versions/1.0.0"

local function say(fmt, ...) io.write((fmt .. "\n"):format(...)) end
local batch <close> = assert(azbatch.client { account = os.getenv("AZURE_BATCH_ACCOUNT") })

local plan = assert(azbatch.plan { nodes = NODES })
say("plan: %d nodes need %d replica(s) in the account's region and a resize timeout of %s",
  NODES, plan.replicas, plan.resizeTimeout)

local spec = { id = "render-" .. NODES, vmSize = "Standard_D2s_v3", targetDedicatedNodes = NODES,
  resizeTimeout = plan.resizeTimeout, virtualMachineConfiguration = {
    imageReference = { virtualMachineImageId = VERSION }, nodeAgentSKUId = "batch.node.ubuntu 22.04" } }

local function preflight()
  local pre = assert(batch:preflight(spec))
  for _, f in ipairs(pre.findings) do say("  %-7s %s: %s", f.severity, f.code, f.message) end
  return pre
end

say("preflight")
local pre = preflight()
local short = false
for _, f in ipairs(pre.findings) do short = short or f.code == "IMAGE_REPLICAS_TOO_FEW" end
if short then
  say("replicating %s for %d nodes", VERSION, NODES)
  assert(batch:replicate_image { image = VERSION, nodes = NODES, interval = 1,
    on_progress = function(p) say("  %s: %s %s%%", p.region, tostring(p.state), tostring(p.progress or "?")) end })
  say("preflight again")
  pre = preflight()
end
assert(pre.ok, "preflight still finds errors")
for _, f in ipairs(pre.findings) do assert(f.code ~= "IMAGE_REPLICAS_TOO_FEW", "still too few replicas") end
local res = assert(batch:create_pool(spec))
say("created %s (request %s)", res.id, tostring(res.request_id))
assert(batch:delete_pool(spec.id))
say("done")
