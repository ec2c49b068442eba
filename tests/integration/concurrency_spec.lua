-- Several clients in one azbatch.parallel: one shared transport by default,
-- token fetches that yield like any request, and closing one client while
-- the others go on.
local azbatch = require "azbatch"
local helper = test_helper

describe("clients side by side in azbatch.parallel", function()
  local slow, fast
  setup(function()
    slow = helper.emulator("--time-scale 100")
    fast = helper.emulator("--time-scale 100")
  end)
  teardown(function()
    if slow then slow.stop() end
    if fast then fast.stop() end
  end)
  after_each(function() helper.control(slow, "faults", { latencyMs = 0 }) end)

  local function shared_key(emu)
    return assert(azbatch.client { endpoint = emu.url,
      credential = assert(azbatch.credential.shared_key(helper.DEV_ACCOUNT, helper.DEV_KEY)) })
  end
  local function entra(emu)
    return assert(azbatch.client { endpoint = emu.url, credential = assert(azbatch.credential.client_secret {
      tenant = helper.DEV_TENANT, client_id = helper.DEV_CLIENT, client_secret = helper.DEV_SECRET,
      authority = emu.url }) })
  end

  it("share one transport unless given their own", function()
    local a <close> = shared_key(slow)
    local b <close> = entra(fast)
    assert.are.equal(a.http, b.http)
    local own <close> = assert(azbatch.client { endpoint = fast.url, credential = a.credential,
      max_connections = 2 })
    assert.are_not.equal(a.http, own.http)
  end)

  it("a token fetch from a slow endpoint holds up nobody else", function()
    helper.control(slow, "faults", { latencyMs = 1000 })
    local a <close> = entra(slow)            -- needs a token first, from the slow emulator
    local b <close> = shared_key(fast)
    local order = {}
    local r = azbatch.parallel {
      function()
        local ok, why = a:pool_exists("nothing")
        order[#order + 1] = "slow"
        return ok, why
      end,
      function()
        for _ = 1, 20 do assert.is_false(b:pool_exists("nothing")) end
        order[#order + 1] = "fast"
      end,
    }
    assert.are.same({ "fast", "slow" }, order)
    assert.is_false(r[1][1])
  end)

  it("clients with their own transports are waited on together", function()
    helper.control(slow, "faults", { latencyMs = 1000 })
    local a <close> = assert(azbatch.client { endpoint = slow.url, max_connections = 4,
      credential = assert(azbatch.credential.shared_key(helper.DEV_ACCOUNT, helper.DEV_KEY)) })
    local b <close> = assert(azbatch.client { endpoint = fast.url, max_connections = 4,
      credential = assert(azbatch.credential.shared_key(helper.DEV_ACCOUNT, helper.DEV_KEY)) })
    assert.are_not.equal(a.http, b.http)
    local order = {}
    azbatch.parallel {
      function() assert.is_false(a:pool_exists("x")); order[#order + 1] = "slow" end,
      function()
        for _ = 1, 20 do assert.is_false(b:pool_exists("x")) end
        order[#order + 1] = "fast"
      end,
    }
    assert.are.same({ "fast", "slow" }, order)
  end)

  it("closing one client ends its own requests with a fail; the others go on", function()
    helper.control(slow, "faults", { latencyMs = 1500 })
    local a = shared_key(slow)
    local b <close> = shared_key(fast)
    local r = azbatch.parallel {
      function() return a:get_pool("nothing") end,
      function() return a:wait_pool("nothing", { interval = 0.1 }) end,
      function()
        azbatch.sleep(0.2)
        a:close()
        return true
      end,
      function()
        azbatch.sleep(0.3)
        local n = 0
        for _ = 1, 5 do if b:pool_exists("x") == false then n = n + 1 end end
        return n
      end,
    }
    for i = 1, 2 do
      assert.is_nil(r[i][1])
      assert.matches("the azbatch.Client was closed", r[i][2])
      assert.are.equal("transport", r[i][3].kind)
      assert.is_true(r[i][3].cancelled)
    end
    assert.are.equal(5, r[4][1])
    -- the shared transport is still open for everyone else
    assert.is_false(b.http:closed())
  end)
end)
