-- Run by tests/c/embed_test.c inside a host's own lua_State.
-- Prints TAP lines and returns the number of failures.
local azbatch = require "azbatch"
local n, failed = 0, 0
local function ok(cond, what)
  n = n + 1
  if not cond then failed = failed + 1 end
  print(("%sok %d - script: %s"):format(cond and "" or "not ", 100 + n, what))
end

ok(package.loaded["azbatch.core"].pool_spec == azbatch.pool_spec,
  "the facade uses the host-registered core")

local gallery = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg"
  .. "/providers/Microsoft.Compute/galleries/gal/images/ubuntu/versions/1.4.0"
local spec, warnings = azbatch.pool_spec {
  id = "render-v14", vmSize = "Standard_D4s_v5", targetDedicatedNodes = 2000,
  virtualMachineConfiguration = azbatch.vm_configuration {
    imageReference = azbatch.image_reference(gallery),
    nodeAgentSKUId = "batch.node.ubuntu 22.04",
  },
}
ok(spec ~= nil, "a gallery pool spec validates")
ok(type(warnings) == "table" and #warnings >= 1, "a 2000-VM pool on the default timeout gets a warning")
local body = spec and spec:json()
ok(body and body:find('"virtualMachineImageId":"' .. gallery .. '"', 1, true) ~= nil,
  "the JSON body carries the image id with '/' unescaped")
ok(body and body:find('"targetDedicatedNodes":2000', 1, true) ~= nil, "integers stay integers")

local bad, msg, err = azbatch.pool_spec { id = "x", vmsize = "Standard_D4s_v5" }
ok(bad == nil and err and err.kind == "validation", "a typo is a validation failure")
ok(type(msg) == "string" and msg:find("vmSize", 1, true) ~= nil, "the message names the right field")

local plan = azbatch.plan { nodes = 3000 }
ok(plan and plan.replicas == 5, "3000 VMs need 5 replicas")

-- Handles created and dropped inside the host are collected before lua_close.
for _ = 1, 100 do azbatch.image_reference("Canonical:ubuntu-24_04-lts:server:latest") end
collectgarbage(); collectgarbage()
ok(true, "garbage collected")
return failed
