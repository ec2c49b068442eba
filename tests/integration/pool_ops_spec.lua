-- Every pool operation against the local emulator, over Shared Key.
local azbatch = require "azbatch"
local helper = test_helper

local MARKETPLACE = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts:latest"

local function spec(id, extra)
  local t = { id = id, vmSize = "Standard_D2s_v3", targetDedicatedNodes = 2,
    virtualMachineConfiguration = { imageReference = MARKETPLACE, nodeAgentSKUId = "batch.node.ubuntu 22.04" } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

describe("pool operations against the emulator", function()
  local emu, batch

  setup(function()
    emu = helper.emulator("--time-scale 500")
    batch = assert(azbatch.client { endpoint = emu.url,
      credential = assert(azbatch.credential.shared_key(helper.DEV_ACCOUNT, helper.DEV_KEY)) })
  end)

  teardown(function()
    if batch then batch:close() end
    if emu then emu.stop() end
  end)

  it("creates a pool and reports its ETag and request id", function()
    local res, why = batch:create_pool(spec("ops-create"))
    assert.is_table(res, why)
    assert.equal("ops-create", res.id)
    assert.is_string(res.etag)
    assert.is_string(res.request_id)
  end)

  it("answers a second create with PoolExists as a structured api error", function()
    local res, msg, err = batch:create_pool(spec("ops-create"))
    assert.is_nil(res)
    assert.matches("^PoolExists: ", msg)
    assert.equal("api", err.kind)
    assert.equal(409, err.status)
    assert.equal("PoolExists", err.code)
    assert.is_string(err.request_id)
    assert.is_string(err.client_request_id)
    assert.is_table(err.values)
  end)

  it("gets a pool, with $select", function()
    local pool, resp = batch:get_pool("ops-create")
    assert.is_table(pool, resp)
    assert.equal("ops-create", pool.id)
    assert.equal("Standard_D2s_v3", pool.vmSize)
    assert.equal(2, pool.targetDedicatedNodes)
    assert.equal("integer", math.type(pool.targetDedicatedNodes))
    assert.equal(200, resp.status)
    local slim = assert(batch:get_pool("ops-create", { select = { "id", "state" } }))
    assert.equal("ops-create", slim.id)
    assert.is_nil(slim.vmSize)
  end)

  it("says PoolNotFound for a missing pool", function()
    local pool, msg, err = batch:get_pool("no-such-pool")
    assert.is_nil(pool)
    assert.matches("^PoolNotFound: ", msg)
    assert.same({ "api", 404, "PoolNotFound" }, { err.kind, err.status, err.code })
  end)

  it("tells whether a pool exists (HEAD)", function()
    assert.is_true(batch:pool_exists("ops-create"))
    assert.is_false(batch:pool_exists("no-such-pool"))
  end)

  it("lists pools across pages, with $filter and $select", function()
    for i = 1, 3 do assert(batch:create_pool(spec("ops-list-" .. i))) end
    local seen = {}
    for pool, why in batch:list_pools { filter = "startswith(id,'ops-list-')", select = "id,state", maxresults = 1 } do
      assert.is_table(pool, why)
      seen[#seen + 1] = pool.id
      assert.is_nil(pool.vmSize)
    end
    table.sort(seen)
    assert.same({ "ops-list-1", "ops-list-2", "ops-list-3" }, seen)
    local all = assert(azbatch.collect(batch:list_pools()))
    assert.is_true(#all >= 4)
  end)

  it("patches with the ETag as If-Match, and refuses a stale one", function()
    local pool = assert(batch:get_pool("ops-create"))
    assert.truthy(batch:patch_pool("ops-create", { metadata = { { name = "k", value = "v1" } } },
      { if_match = pool.eTag }))
    local ok, msg, err = batch:patch_pool("ops-create", { metadata = { { name = "k", value = "v2" } } },
      { if_match = pool.eTag })
    assert.is_nil(ok)
    assert.matches("^ConditionNotMet: ", msg)
    assert.same({ "api", 412, "ConditionNotMet" }, { err.kind, err.status, err.code })
    local now = assert(batch:get_pool("ops-create"))
    assert.same({ { name = "k", value = "v1" } }, now.metadata)
  end)

  it("replaces pool properties, validating the body before sending", function()
    assert.truthy(batch:replace_pool_properties("ops-create",
      { applicationPackageReferences = azbatch.json.array {}, metadata = { { name = "owner", value = "render" } } }))
    local ok, msg, err = batch:replace_pool_properties("ops-create", { metadata = {} })
    assert.is_nil(ok)
    assert.equal("validation", err.kind)
    assert.equal("pool.applicationPackageReferences", err.field)
    assert.matches("required field missing", msg)
  end)

  it("waits for steady, resizes, refuses a resize while resizing, and stops a resize", function()
    local pool = assert(batch:wait_pool("ops-create", { interval = 0.05, timeout = 30 }))
    assert.equal("steady", pool.allocationState)
    assert.equal(2, pool.currentDedicatedNodes)
    -- The clock stands still until the stop, so the resize cannot end first
    -- (at 500x it takes 16 ms, less than three requests under ASan).
    helper.control(emu, "clock", { timeScale = 1e-9 })
    finally(function() helper.control(emu, "clock", { timeScale = 500 }) end)
    assert.truthy(batch:resize_pool("ops-create", { targetDedicatedNodes = 4 }))
    local ok, msg, err = batch:resize_pool("ops-create", { targetDedicatedNodes = 5 })
    assert.is_nil(ok)
    assert.equal("api", err.kind)
    assert.equal(409, err.status)
    assert.is_string(msg)
    local before = assert(batch:get_pool("ops-create", { select = "allocationStateTransitionTime" }))
    helper.control(emu, "clock", { advance = 1 })
    assert.truthy(batch:stop_resize_pool("ops-create"))
    helper.control(emu, "clock", { timeScale = 500 })
    -- A stopped resize leaves a ResizeStopped error: wait_pool reports it, being
    -- newer than the transition before the stop (the pool may be steady again
    -- before the first poll: 'since' says where this wait began)
    local steady, wmsg, werr = batch:wait_pool("ops-create", { interval = 0.05, timeout = 30,
      since = before.allocationStateTransitionTime })
    assert.is_nil(steady)
    assert.equal("api", werr.kind)
    assert.equal("ResizeStopped", werr.code)
    assert.matches("resize error ResizeStopped", wmsg)
    assert.equal("steady", werr.pool.allocationState)
    -- Waiting again treats the same error as stale: the pool is steady.
    pool = assert(batch:wait_pool("ops-create", { interval = 0.05, timeout = 30 }))
    assert.equal("steady", pool.allocationState)
  end)

  it("reports a quota resize error with its details as {key=, value=}", function()
    assert(batch:create_pool { id = "ops-quota", vmSize = "Standard_D8s_v5", targetDedicatedNodes = 100,
      virtualMachineConfiguration = { imageReference = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts:latest",
        nodeAgentSKUId = "batch.node.ubuntu 22.04" } })
    local pool, msg, err = batch:wait_pool("ops-quota", { interval = 0.05, timeout = 60 })
    assert.is_nil(pool)
    assert.equal("AccountCoreQuotaReached", err.code)
    assert.equal("CoreQuota", err.values[1].key)
    assert.equal("500", err.values[1].value)
    assert.is_nil(err.values[1].name)
    assert.matches("%[CoreQuota=500, CoresInUse=%d+, CoresRequested=%d+%]$", msg)
    assert(batch:delete_pool("ops-quota"))
  end)

  it("validates a resize body before sending it", function()
    local ok, msg, err = batch:resize_pool("ops-create", { targetDedicatedNodes = -1 })
    assert.is_nil(ok)
    assert.equal("validation", err.kind)
    assert.equal("resize.targetDedicatedNodes", err.field)
    assert.is_string(msg)
  end)

  it("enables, evaluates and disables autoscale; refuses a resize of an autoscale pool", function()
    assert.truthy(batch:enable_autoscale("ops-list-1",
      { autoScaleFormula = "$TargetDedicatedNodes = 3;", autoScaleEvaluationInterval = "PT5M" }))
    local run = assert(batch:evaluate_autoscale("ops-list-1", "$TargetDedicatedNodes = 1;"))
    assert.matches("%$TargetDedicatedNodes=1", run.results)
    local ok, _, err = batch:resize_pool("ops-list-1", { targetDedicatedNodes = 1 })
    assert.is_nil(ok)
    assert.equal(409, err.status)
    assert.truthy(batch:disable_autoscale("ops-list-1"))
    local ok2, _, err2 = batch:evaluate_autoscale("ops-list-1", "$TargetDedicatedNodes = 1;")
    assert.is_nil(ok2)
    assert.equal("api", err2.kind)
  end)

  it("lists nodes and removes some", function()
    assert(batch:wait_pool("ops-list-2", { interval = 0.05, timeout = 30 }))
    local nodes = assert(azbatch.collect(batch:list_nodes("ops-list-2")))
    assert.equal(2, #nodes)
    assert.equal("idle", nodes[1].state)
    local node = assert(batch:get_node("ops-list-2", nodes[1].id))
    assert.equal(nodes[1].id, node.id)
    assert.truthy(batch:remove_nodes("ops-list-2", { nodeList = { nodes[1].id } }))
    local pool = assert(batch:wait_pool("ops-list-2", { interval = 0.05, timeout = 30 }))
    assert.equal(1, pool.currentDedicatedNodes)
  end)

  it("lists supported images and pool node counts", function()
    local images = assert(azbatch.collect(batch:list_supported_images()))
    assert.is_true(#images >= 2)
    assert.is_string(images[1].nodeAgentSKUId)
    local counts = assert(azbatch.collect(batch:list_pool_node_counts()))
    local found
    for _, c in ipairs(counts) do if c.poolId == "ops-list-3" then found = c end end
    assert.is_table(found)
    assert.is_number(found.dedicated.total)
  end)

  it("deletes a pool; a second delete meets PoolBeingDeleted or PoolNotFound", function()
    assert.truthy(batch:delete_pool("ops-list-3"))
    local ok, _, err = batch:delete_pool("ops-list-3")
    assert.is_nil(ok)
    assert.equal("api", err.kind)
    assert.truthy(err.code == "PoolBeingDeleted" or err.code == "PoolNotFound")
  end)

  it("offers the low-level request for anything else", function()
    local body, resp = batch:request("GET", "/pools/ops-create", { query = { ["$select"] = "id" } })
    assert.is_table(body, resp)
    assert.equal("ops-create", body.id)
    assert.equal(200, resp.status)
    assert.is_string(resp.request_id)
  end)

  it("never sends an invalid spec", function()
    local res, msg, err = batch:create_pool { id = "bad id!", vmSize = "Standard_D2s_v3" }
    assert.is_nil(res)
    assert.equal("validation", err.kind)
    -- missing fields are reported first; the bad id follows them
    assert.equal("pool.virtualMachineConfiguration", err.field)
    assert.equal("pool.id", err.errors[3].field)
    assert.is_string(msg)
    assert.is_false(batch:pool_exists("bad id!") == true)
  end)

  -- A spec checked once and changed after: every way of changing it is
  -- caught where it is encoded, and the service sees no request at all.
  local mutations = {
    { "a negative target", function(s) s.targetDedicatedNodes = -3 end, "pool.targetDedicatedNodes" },
    { "rawset of a wrong type", function(s) rawset(s, "vmSize", 42) end, "pool.vmSize" },
    { "an unknown field", function(s) s.vmsize = "x" end, "pool.vmsize" },
    { "a removed required field", function(s) s.vmSize = nil end, "pool.vmSize" },
    { "a bad id", function(s) s.id = "bad id!" end, "pool.id" },
    { "a nested image edit", function(s)
        s.virtualMachineConfiguration.imageReference.publisher = 7 end,
      "pool.virtualMachineConfiguration.imageReference.publisher" },
    { "a replaced nested table", function(s) s.virtualMachineConfiguration = { nodeAgentSKUId = "x" } end,
      "pool.virtualMachineConfiguration.imageReference" },
    { "a cycle", function(s) s.startTask = s end, "pool.startTask" },
    { "invalid UTF-8", function(s) s.displayName = "\xff\xfe" end, "pool.displayName" },
    { "a function", function(s) s.metadata = print end, "pool.metadata" },
  }
  for _, m in ipairs(mutations) do
    it("sends nothing for a checked spec changed after: " .. m[1], function()
      local checked = assert(azbatch.pool_spec { id = "mut-" .. m[1]:gsub("%W", ""), vmSize = "Standard_A1_v2",
        targetDedicatedNodes = 0, virtualMachineConfiguration = {
          imageReference = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts:latest",
          nodeAgentSKUId = "batch.node.ubuntu 22.04" } })
      m[2](checked)
      local before = helper.control(emu, "stats").requests
      local res, msg, err = batch:create_pool(checked)
      assert.is_nil(res)
      assert.equal("validation", err.kind, msg)
      assert.equal(m[3], err.field, msg)
      local text, jmsg = checked:json()
      assert.is_nil(text)
      assert.is_string(jmsg)
      assert.equal(before, helper.control(emu, "stats").requests)
    end)
  end
end)
