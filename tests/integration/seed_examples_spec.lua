-- The seed documents' examples end to end against the emulator, run as a
-- user would run them (scripts/examples/*.lua, Entra ID from the environment).
local helper = test_helper

local function run_example(emu, name, extra)
  return helper.run(helper.entra_env(emu) .. (extra or "") .. " lua5.4 "
    .. helper.shq(helper.ROOT .. "/scripts/examples/" .. name))
end

describe("the seed documents' examples", function()
  local emu
  setup(function()
    local world = helper.world(function(w) w.accounts[1].dedicatedCoreQuota = 20000 end)
    emu = helper.emulator("--time-scale 500 --world " .. helper.shq(world))
  end)
  teardown(function() if emu then emu.stop() end end)

  it("a gallery pool az-style, with and without the node agent, and the C# sample's Windows pool", function()
    local status, out, err = run_example(emu, "seed_gallery_pool.lua")
    assert.equal(0, status, err .. out)
    assert.matches("az%-style pool from a gallery image version\n.-seed%-az: steady, 2 dedicated node%(s%)", out)
    assert.matches("node agent chosen: batch%.node%.ubuntu 22%.04 %(", out)
    assert.matches("seed%-csharp: steady, 2 dedicated node%(s%)", out)
    assert.matches("done\n$", out)
  end)

  it("a 3000-node pool: planned, found short of replicas, replicated, then created", function()
    local status, out, err = run_example(emu, "large_pool.lua")
    assert.equal(0, status, err .. out)
    assert.matches("plan: 3000 nodes need 5 replica%(s%) in the account's region and a resize timeout of PT45M", out)
    assert.matches("IMAGE_REPLICAS_TOO_FEW: version '1%.0%.0' has 2 replicas", out)
    assert.matches("replicating .-for 3000 nodes", out)
    assert.matches("westeurope: Completed", out)
    assert.matches("created render%-3000", out)
  end)

  it("an audit of which pools still run an old version: exits 1 naming them and the rollout that fixes them", function()
    local azbatch = require "azbatch"
    local cred = assert(azbatch.credential.client_secret { tenant = helper.DEV_TENANT, client_id = helper.DEV_CLIENT,
      client_secret = helper.DEV_SECRET, authority = emu.url })
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = cred, account = "devbatch" })
    assert(batch:create_pool { id = "on-newest", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 1,
      virtualMachineConfiguration = { nodeAgentSKUId = "batch.node.ubuntu 22.04", imageReference = {
        virtualMachineImageId = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev"
          .. "/providers/Microsoft.Compute/galleries/devgallery/images/ubuntu2204/versions/1.1.0" } } })
    assert(batch:wait_pool("on-newest", { interval = 0.05, timeout = 60 }))
    local status, out, err = run_example(emu, "audit_old_versions.lua")
    assert.equal(1, status, err .. out)
    assert.matches("\non%-newest +true +devgallery/images/ubuntu2204 1%.1%.0 x1\nworkers%-v1 ", out)
    assert.matches("\nworkers%-v1 +true +devgallery/images/ubuntu2204 1%.0%.0 x2\n", out)
    assert.matches("OLD: 2 node%(s%) on 1%.0%.0, newest is 1%.1%.0: azbatch rollout start %-%-strategy in%-place "
      .. "%-%-pool workers%-v1 %-%-image /subscriptions/.-/versions/1%.1%.0\n", out)
    assert.matches("\n2 pool%(s%) audited; 1 pool version%(s%) behind the newest\n$", out)
    assert(batch:delete_pool("on-newest"))
  end)
end)
