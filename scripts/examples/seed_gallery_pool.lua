#!/usr/bin/env lua5.4
-- The seed documents' two examples, as Lua: a pool from a Compute Gallery
-- image version, first as `az batch pool create --image <version id>
-- --node-agent-sku-id "batch.node.ubuntu 22.04"` would send it, then as the
-- C# sample builds it (a Windows image and `batch.node.windows amd64`),
-- each preflighted first. The node agent of the first is also left to
-- azbatch, which says what it chose.
--
-- Environment: AZURE_BATCH_ENDPOINT, AZURE_BATCH_ACCOUNT and an Entra ID
-- credential (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
-- AZURE_AUTHORITY_HOST); AZURE_RESOURCE_MANAGER_ENDPOINT for ARM. Against
-- the emulator, `make demo` sets them all. EXAMPLE_GALLERY names the gallery
-- (resource group path up to .../galleries/{name}).
local here = arg[0]:match("^(.*)/scripts/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath
local azbatch = require "azbatch"

local GALLERY = os.getenv("EXAMPLE_GALLERY") or ("/subscriptions/00000000-0000-0000-0000-000000000001"
  .. "/resourceGroups/azbatch-dev/providers/Microsoft.Compute/galleries/devgallery")

local batch <close> = assert(azbatch.client { account = os.getenv("AZURE_BATCH_ACCOUNT") })

local function say(fmt, ...) io.write((fmt .. "\n"):format(...)) end

-- preflight, then create, then wait: what every pool of a custom image deserves
local function create(spec)
  local pre = assert(batch:preflight(spec))
  for _, f in ipairs(pre.findings) do say("  %-7s %s: %s", f.severity, f.code, f.message) end
  if not pre.ok then error("preflight found errors; not creating " .. spec.id, 0) end
  local res = assert(batch:create_pool(spec))
  if res.node_agent then say("  node agent chosen: %s (%s)", res.node_agent, res.node_agent_reason) end
  local pool = assert(batch:wait_pool(spec.id, { timeout = 600, interval = 1 }))
  say("  %s: %s, %d dedicated node(s)", pool.id, pool.allocationState, pool.currentDedicatedNodes)
  assert(batch:delete_pool(spec.id))
end

-- 1. az batch pool create --id mypool --vm-size Standard_D2s_v3 --target-dedicated-nodes 2
--      --image <gallery version id> --node-agent-sku-id "batch.node.ubuntu 22.04"
say("az-style pool from a gallery image version")
create { id = "seed-az", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 2,
  virtualMachineConfiguration = {
    imageReference = { virtualMachineImageId = GALLERY .. "/images/ubuntu2204/versions/1.1.0" },
    nodeAgentSKUId = "batch.node.ubuntu 22.04" } }

-- the same without --node-agent-sku-id: azbatch picks it for the image
say("the same, the node agent left to azbatch")
create { id = "seed-az-auto", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 2,
  virtualMachineConfiguration = {
    imageReference = { virtualMachineImageId = GALLERY .. "/images/ubuntu2204/versions/1.1.0" } } }

-- 2. The C# sample: ImageReference(virtualMachineImageId), a Windows node agent.
say("the C# sample's Windows pool")
local image = assert(azbatch.image_reference(GALLERY .. "/images/windows2022/versions/1.0.0"))
local vm = assert(azbatch.vm_configuration { imageReference = image, nodeAgentSKUId = "batch.node.windows amd64" })
create(assert(azbatch.pool_spec { id = "seed-csharp", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 2,
  virtualMachineConfiguration = vm }))
say("done")
