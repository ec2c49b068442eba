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
end)
