-- Transport failures, timeouts, retries, concurrency, and a fault-injection
-- run checking that every operation happened exactly once.
local azbatch = require "azbatch"
local helper = test_helper

local function shared_key()
  return assert(azbatch.credential.shared_key(helper.DEV_ACCOUNT, helper.DEV_KEY))
end

local function spec(id, nodes)
  return { id = id, vmSize = "Standard_A1_v2", targetDedicatedNodes = nodes or 0,
    virtualMachineConfiguration = { imageReference = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts:latest",
      nodeAgentSKUId = "batch.node.ubuntu 22.04" } }
end

describe("transport failures", function()
  it("reports a refused connection as kind transport, after bounded retries", function()
    local batch <close> = assert(azbatch.client { endpoint = "http://127.0.0.1:9", credential = shared_key(),
      retry = { max_attempts = 2, base_delay = 0.01 } })
    local ok, msg, err = batch:get_pool("p")
    assert.is_nil(ok)
    assert.equal("transport", err.kind)
    assert.equal(2, err.attempts)
    assert.matches("^transport: ", msg)
  end)

  it("refuses http:// to a non-loopback host before any network", function()
    local batch, msg, err = azbatch.client { endpoint = "http://acct.westeurope.batch.azure.com",
      credential = shared_key() }
    assert.is_nil(batch)
    assert.equal("validation", err.kind)
    assert.matches("only allowed to loopback", msg)
  end)
end)

describe("against a slow or faulty emulator", function()
  local emu
  setup(function() emu = helper.emulator("--time-scale 500 --seed 7") end)
  teardown(function() if emu then emu.stop() end end)

  local function faults(t) helper.control(emu, "faults", t) end

  after_each(function() faults { p429 = 0, p500 = 0, p503 = 0, drop = 0, dropAfterCommit = 0, latencyMs = 0 } end)

  it("times out as kind timeout", function()
    faults { latencyMs = 1500 }
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = shared_key(), timeout = 0.3,
      retry = false })
    local ok, msg, err = batch:get_pool("p")
    assert.is_nil(ok)
    assert.equal("timeout", err.kind)
    assert.is_string(msg)
  end)

  it("retries 429 and 503 honouring Retry-After, re-signing each attempt", function()
    faults { p429 = 1.0, retryAfter = 0 }
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = shared_key(),
      retry = { max_attempts = 3, base_delay = 0.01 } })
    local ok, _, err = batch:get_pool("p")
    assert.is_nil(ok)
    assert.equal("api", err.kind)
    assert.equal(429, err.status)
    assert.equal(3, err.attempts)
    faults { p429 = 0.3, p503 = 0.1, retryAfter = 0 }
    local patient <close> = assert(azbatch.client { endpoint = emu.url, credential = shared_key(),
      retry = { max_attempts = 10, base_delay = 0.01, max_delay = 0.05 } })
    for i = 1, 10 do assert(patient:create_pool(spec("retry-" .. i))) end
    for i = 1, 10 do assert.is_true(patient:pool_exists("retry-" .. i)) end
  end)

  it("creates 50 pools concurrently, then watches them all at once over a few connections", function()
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = shared_key() })
    local creates, watches = {}, {}
    for i = 1, 50 do
      local id = ("par-%02d"):format(i)
      creates[i] = function() return assert(batch:create_pool(spec(id, 1))).id end
      watches[i] = function() return assert(batch:wait_pool(id, { interval = 0.05, timeout = 60 })).id end
    end
    local made = azbatch.parallel(creates)
    for i = 1, 50 do assert.equal(("par-%02d"):format(i), made[i][1]) end
    local before = batch.http:stats().connections
    local results = azbatch.parallel(watches)
    for i = 1, 50 do assert.equal(("par-%02d"):format(i), results[i][1]) end
    local opened = batch.http:stats().connections - before
    assert.is_true(opened <= 8, "opened " .. opened .. " connections")
  end)
end)

-- Its own emulator, so the counts below see only this run's pools.
describe("a fault-injection run", function()
  local emu
  setup(function() emu = helper.emulator("--time-scale 1 --seed 11") end)
  teardown(function() if emu then emu.stop() end end)

  local function faults(t) helper.control(emu, "faults", t) end

  it("runs 350 mixed operations under faults with each taking effect exactly once", function()
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = shared_key(),
      retry = { max_attempts = 8, base_delay = 0.005, max_delay = 0.05, max_elapsed = 30 } })
    faults { p429 = 0.1, p500 = 0.05, p503 = 0.05, drop = 0.05, dropAfterCommit = 0.1, retryAfter = 0 }
    local N = 100
    local created, patched, deleted = 0, 0, 0
    for i = 1, N do
      local res, why = batch:create_pool(spec(("fi-%03d"):format(i)))
      assert.is_table(res, why)
      created = created + 1
    end
    for i = 1, N do
      local ok, why = batch:patch_pool(("fi-%03d"):format(i), { metadata = { { name = "n", value = tostring(i) } } })
      assert.truthy(ok, why)
      patched = patched + 1
    end
    local read = 0
    for i = 1, N do
      local pool, why = batch:get_pool(("fi-%03d"):format(i))
      assert.is_table(pool, why)
      assert.same({ { name = "n", value = tostring(i) } }, pool.metadata)
      read = read + 1
    end
    for i = 1, N, 2 do
      local ok, why, err = batch:delete_pool(("fi-%03d"):format(i))
      -- a retried delete may meet the deletion it already caused
      assert.truthy(ok or (err and err.code == "PoolBeingDeleted"), why)
      deleted = deleted + 1
    end
    faults { p429 = 0, p500 = 0, p503 = 0, drop = 0, dropAfterCommit = 0 }
    assert.equal(N + N + N + N // 2, created + patched + read + deleted)
    local pools = assert(azbatch.collect(batch:list_pools { filter = "startswith(id,'fi-')" }))
    local ids, live = {}, 0
    for _, p in ipairs(pools) do
      assert.is_nil(ids[p.id], "duplicate pool " .. p.id)
      ids[p.id] = p
      if p.state == "active" then
        live = live + 1
        local n = tonumber(p.id:match("%d+"))
        assert.equal(0, n % 2, "pool " .. p.id .. " should be deleting or gone")
        assert.same({ { name = "n", value = tostring(n) } }, p.metadata)
      end
    end
    assert.equal(N // 2, live)
  end)

end)
