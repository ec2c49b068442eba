#!/usr/bin/env lua5.4
-- Blue-green rollout of a new gallery image version, as a platform team
-- would script it: create the green pool from version N+1 at canary size,
-- wait for it, grow it to full size, then drain and delete the blue pool.
--
-- Runs against whatever the environment names (AZURE_BATCH_ENDPOINT plus
-- Entra ID variables); `make demo` points it at the local emulator.
local here = arg[0]:match("^(.*)/scripts/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath
local azbatch = require "azbatch"

local SUB = os.getenv("DEMO_SUBSCRIPTION") or "00000000-0000-0000-0000-000000000001"
local GALLERY = ("/subscriptions/%s/resourceGroups/azbatch-dev/providers/Microsoft.Compute"
  .. "/galleries/devgallery/images/ubuntu2204"):format(SUB)
local FULL_SIZE = tonumber(os.getenv("DEMO_NODES") or "") or 8

local function log(fmt, ...) io.write(("[rollout] " .. fmt .. "\n"):format(...)) end

local function pool_spec(id, version, nodes)
  return assert(azbatch.pool_spec {
    id = id, vmSize = "Standard_D4s_v5", targetDedicatedNodes = nodes, resizeTimeout = "PT15M",
    virtualMachineConfiguration = {
      imageReference = azbatch.image_reference(GALLERY .. "/versions/" .. version),
      nodeAgentSKUId = "batch.node.ubuntu 22.04",
    },
    metadata = { { name = "image-version", value = version } },
  })
end

local batch <close> = assert(azbatch.client {})    -- endpoint and credential from the environment
log("client: %s", tostring(batch))

-- Offline first: what does a pool of this size need?
local plan = assert(azbatch.plan { nodes = FULL_SIZE })
log("plan for %d VMs: %d gallery replica(s), resize timeout %s", FULL_SIZE, plan.replicas, plan.resizeTimeout)

local function progress(p)
  log("  %-12s %-9s dedicated %d/%d", p.id, p.allocationState, p.currentDedicatedNodes or 0,
    p.targetDedicatedNodes or 0)
end

-- Blue: the pool in service today (created here so the demo is self-contained).
local blue, green = "render-v100", "render-v110"
for _, id in ipairs { blue, green } do
  if batch:pool_exists(id) then
    assert(batch:delete_pool(id))
    while batch:pool_exists(id) do azbatch.sleep(1) end
  end
end
assert(batch:create_pool(pool_spec(blue, "1.0.0", FULL_SIZE)))
assert(batch:wait_pool(blue, { interval = 1, timeout = 600, on_progress = progress }))
log("blue pool %s is steady on image 1.0.0", blue)

-- Green: canary size first.
log("canary: creating %s on image 1.1.0 with 2 nodes", green)
assert(batch:create_pool(pool_spec(green, "1.1.0", 2)))
assert(batch:wait_pool(green, { interval = 1, timeout = 600, on_progress = progress }))
local unhealthy = 0
for node in batch:list_nodes(green) do
  assert(node, "listing nodes failed")
  if node.state ~= "idle" and node.state ~= "running" then unhealthy = unhealthy + 1 end
end
if unhealthy > 0 then
  log("canary has %d unhealthy node(s): rolling back", unhealthy)
  assert(batch:delete_pool(green))
  os.exit(1)
end
log("canary healthy: growing %s to %d nodes while %s drains", green, FULL_SIZE, blue)

-- Grow green and shrink blue at the same time, watching both.
azbatch.parallel {
  function()
    assert(batch:resize_pool(green, { targetDedicatedNodes = FULL_SIZE }))
    assert(batch:wait_pool(green, { interval = 1, timeout = 600, on_progress = progress }))
  end,
  function()
    assert(batch:resize_pool(blue, { targetDedicatedNodes = 0, nodeDeallocationOption = "taskcompletion" }))
    assert(batch:wait_pool(blue, { interval = 1, timeout = 600, on_progress = progress }))
  end,
}
assert(batch:delete_pool(blue))
log("deleted %s", blue)

for row in batch:list_pool_node_counts() do
  assert(row, "node counts failed")
  log("node counts %-12s idle %d, total %d", row.poolId, row.dedicated.idle, row.dedicated.total)
end
log("rollout complete: %s serves image 1.1.0", green)
