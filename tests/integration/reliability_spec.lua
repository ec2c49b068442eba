-- Transport failures, timeouts, retries, concurrency, and a fault-injection
-- run checking that every operation happened exactly once.
local azbatch = require "azbatch"
local outcomes = require "outcomes"
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

  -- found by make soak: a delete of a pool that was never there, whose
  -- first answer was lost, met PoolNotFound on its retry and was reported
  -- a success (recovered) though nothing was deleted
  it("a delete whose lost attempt is followed by a pool gone without a trace says unknown, not success", function()
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = shared_key(),
      retry = { max_attempts = 3, base_delay = 0.3, max_delay = 0.3 } })
    -- the first attempt's answer is lost (dropped before or after the write), then the faults end
    local function first_answer_lost(fault, call)
      faults { [fault] = 1, methods = { "DELETE" } }
      local r = azbatch.parallel {
        function() return call() end,
        function()
          azbatch.sleep(0.1)
          faults { [fault] = 0, methods = azbatch.json.null }
        end,
      }
      return r[1][1], r[1][2], r[1][3]
    end
    local before = #helper.control(emu, "journal").value
    local ok, msg, err = first_answer_lost("drop", function() return batch:delete_pool("never-there") end)
    assert.is_nil(ok)
    assert.same({ "api", 404, "PoolNotFound", "unknown" }, { err.kind, err.status, err.code, err.outcome })
    assert.matches("^PoolNotFound: .*%(the pool is gone: an earlier attempt of this call deleted it, or it was not "
      .. "there%)$", msg)
    assert.equal(before, #helper.control(emu, "journal").value)          -- nothing was deleted
    -- deleted by the lost attempt and still deleting: that is a success, recovered
    assert(batch:create_pool(spec("del-lost")))
    helper.control(emu, "clock", { timeScale = 1e-9 })                   -- it stays 'deleting'
    local res = first_answer_lost("dropAfterCommit", function() return batch:delete_pool("del-lost") end)
    helper.control(emu, "clock", { timeScale = 500 })
    assert.is_table(res)
    assert.is_true(res.recovered)
    local journal = helper.control(emu, "journal").value
    assert.same({ "DELETE", "/pools/del-lost", false }, { journal[#journal].method, journal[#journal].path,
      journal[#journal].answered })
    assert.equal(res.client_request_id, journal[#journal].clientRequestId)
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
-- Every mutating operation kind, 50 times each, under dropped answers
-- (before and after the service applied the write), 429s and 503s. The
-- emulator's journal of applied writes (by client-request-id, all attempts
-- of a call sharing one) is the truth each reported outcome is checked
-- against; the pools' state afterwards is checked too.
describe("truthful outcomes under faults", function()
  local emu
  setup(function() emu = helper.emulator("--time-scale 1000 --seed 11") end)
  teardown(function() if emu then emu.stop() end end)

  local N = 50
  local FAULTS = { p429 = 0.1, p503 = 0.1, drop = 0.1, dropAfterCommit = 0.15, retryAfter = 0 }
  local NO_FAULTS = { p429 = 0, p500 = 0, p503 = 0, drop = 0, dropAfterCommit = 0 }
  local tally = outcomes.tally()     -- per kind: ops, successes, recovered, failures, unknown, ...

  it("reports every operation's true outcome: no false failure, no false success", function()
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = shared_key(),
      retry = { max_attempts = 8, base_delay = 0.005, max_delay = 0.05, max_elapsed = 60 } })
    local calls = {}            -- outcomes.call(...) each
    local function id(i) return ("to-%02d"):format(i) end

    -- one phase: the same operation on every pool at once, under faults
    local function phase(kind, op)
      helper.control(emu, "faults", FAULTS)
      local fns = {}
      for i = 1, N do
        fns[i] = function()
          local c = outcomes.call(kind, id(i), op(i))    -- op yields: index after it returns
          calls[#calls + 1] = c
        end
      end
      azbatch.parallel(fns)
      helper.control(emu, "faults", NO_FAULTS)
    end
    local function settle_all()
      local fns = {}
      for i = 1, N do fns[i] = function() assert(batch:wait_pool(id(i), { interval = 0.02, timeout = 60 })) end end
      azbatch.parallel(fns)
    end

    phase("create", function(i) return batch:create_pool(spec(id(i), 0)) end)
    -- A create can truly fail: every one of its 8 attempts refused or dropped before the
    -- write (about 0.3 % of runs). That call is judged like the others; its pool is made
    -- here without faults, so that every later phase has its N pools.
    for _, c in ipairs(calls) do
      if outcomes.reported(c) ~= "success" then
        local exists, why = batch:pool_exists(c.id)
        assert(exists ~= nil, why)
        if not exists then assert(batch:create_pool(spec(c.id, 0))) end
      end
    end
    settle_all()
    phase("patch", function(i)
      return batch:patch_pool(id(i), { metadata = { { name = "n", value = tostring(i) } } })
    end)
    phase("replace", function(i)
      return batch:replace_pool_properties(id(i), { applicationPackageReferences = azbatch.json.array {},
        metadata = { { name = "r", value = tostring(i) } } })
    end)
    phase("resize", function(i) return batch:resize_pool(id(i), { targetDedicatedNodes = 2 }) end)
    settle_all()
    local node_of = {}
    for i = 1, N do
      local nodes = assert(azbatch.collect(batch:list_nodes(id(i), { select = "id" })))
      node_of[i] = nodes[1].id
    end
    phase("remove_nodes", function(i) return batch:remove_nodes(id(i), { nodeList = { node_of[i] } }) end)
    settle_all()
    phase("resize_again", function(i) return batch:resize_pool(id(i), { targetDedicatedNodes = 3 }) end)
    phase("stop_resize", function(i) return batch:stop_resize_pool(id(i)) end)
    for i = 1, N do batch:wait_pool(id(i), { interval = 0.02, timeout = 60 }) end  -- ResizeStopped is expected
    phase("enable_autoscale", function(i)
      return batch:enable_autoscale(id(i), { autoScaleFormula = "$TargetDedicatedNodes = 1;",
        autoScaleEvaluationInterval = "PT5M" })
    end)
    settle_all()
    -- calls the service refuses: under the same faults they must be reported as failures
    phase("resize_refused", function(i) return batch:resize_pool(id(i), { targetDedicatedNodes = 5 }) end)
    phase("disable_autoscale", function(i) return batch:disable_autoscale(id(i)) end)
    phase("delete", function(i) return batch:delete_pool(id(i)) end)

    -- the truth: which calls' writes the service applied
    local applied = outcomes.applied(helper.control(emu, "journal").value)
    for _, c in ipairs(calls) do tally:judge(c, applied) end
    assert.same({}, tally.problems)
    assert.equal(N, tally.kinds.resize_refused.failures)
    for kind, t in pairs(tally.kinds) do
      assert.is_true(t.ops >= N, kind)
      assert.equal(0, t.false_success + t.false_failure, kind)
    end
    -- and the state says the same: every pool's last writes are there, and each is being deleted
    local pools = assert(azbatch.collect(batch:list_pools { filter = "startswith(id,'to-')" }))
    assert.is_true(#pools <= N)
    for _, p in ipairs(pools) do assert.equal("deleting", p.state, p.id) end
    -- the faults really were hit
    local stats = helper.control(emu, "stats")
    assert.is_true((stats.faults.dropAfterCommit or 0) > 20,
      "dropAfterCommit faults: " .. tostring(stats.faults.dropAfterCommit))
    assert.is_true((stats.faults.drop or 0) > 20)
    assert.is_true((stats.faults["429"] or 0) > 20)
    assert.is_true((stats.faults["503"] or 0) > 20)
  end)

  it("states its counts", function()
    local kinds = 0
    for _ in pairs(tally.kinds) do kinds = kinds + 1 end
    assert.is_true(kinds >= 10)
    local lines = tally:lines()
    local f = io.open(helper.ROOT .. "/build/outcomes.txt", "w")
    if f then f:write(table.concat(lines, "\n"), "\n"):close() end
  end)
end)
