-- Every way a wait ends, against the emulator: success with progress by
-- node state, a resize error of this resize, a stale one ignored, nodes
-- unusable or failing their start task (beyond a tolerance, and within it),
-- the pool deleted or never there, a timeout; the wait for deletion; many
-- pools at once, polling with $select and backing off.
local azbatch = require "azbatch"
local parallel = require "azbatch.parallel"
local helper = test_helper

local UBUNTU = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts"
local FAILING = "Canonical:ubuntu-24_04-lts:server"   -- the failing-node rules below name this one

describe("waiting for a pool", function()
  local emu, batch
  setup(function()
    emu = helper.emulator("--time-scale 20")
    batch = assert(azbatch.client { endpoint = emu.url,
      credential = assert(azbatch.credential.shared_key(helper.DEV_ACCOUNT, helper.DEV_KEY)) })
  end)
  teardown(function()
    if batch then batch:close() end
    if emu then emu.stop() end
  end)
  after_each(function()
    helper.control(emu, "failures", { rules = azbatch.json.array {} })
  end)

  local function create(id, nodes, image, extra)
    local spec = { id = id, vmSize = "Standard_D2s_v3", targetDedicatedNodes = nodes,
      virtualMachineConfiguration = { imageReference = image or UBUNTU,
        nodeAgentSKUId = image == FAILING and "batch.node.ubuntu 24.04" or "batch.node.ubuntu 22.04" } }
    for k, v in pairs(extra or {}) do spec[k] = v end
    assert(batch:create_pool(spec))
  end

  local function gone(id)
    assert(batch:delete_pool(id))
    assert(batch:wait_pool_deleted(id, { interval = 0.05, timeout = 30 }))
  end

  it("returns the pool once its targets are reached and its nodes ready, reporting counts by state", function()
    create("w-ok", 3)
    local seen, last = {}, nil
    local pool = assert(batch:wait_pool("w-ok", { interval = 0.05, timeout = 60, on_progress = function(p)
      for state, n in pairs(p.counts) do if state ~= "total" and n > 0 then seen[state] = true end end
      last = p
    end }))
    assert.equal("steady", pool.allocationState)
    assert.equal(3, pool.currentDedicatedNodes)
    assert.truthy(seen.creating or seen.starting, "progress saw nodes on their way")
    assert.equal(3, last.counts.idle)
    assert.equal(3, last.target)
    assert.equal(3, last.current)
    assert.equal("w-ok", last.id)
    assert.is_number(last.elapsed)
    gone("w-ok")
  end)

  it("fails on a resize error of this resize, with its details", function()
    create("w-quota", 1)
    assert(batch:wait_pool("w-quota", { interval = 0.05, timeout = 60 }))
    assert(batch:resize_pool("w-quota", { targetDedicatedNodes = 400 }))
    local pool, msg, err = batch:wait_pool("w-quota", { interval = 0.05, timeout = 120 })
    assert.is_nil(pool)
    assert.same({ "api", "AccountCoreQuotaReached" }, { err.kind, err.code })
    assert.equal("CoreQuota", err.values[1].key)
    assert.matches("^pool w%-quota: resize error AccountCoreQuotaReached: .*%[CoreQuota=500", msg)
    assert.equal("steady", err.pool.allocationState)
    -- Waiting again cannot help: the pool stays short of its targets with the
    -- error that left it there, and the wait says so rather than hang.
    local again, amsg, aerr = batch:wait_pool("w-quota", { interval = 0.05, timeout = 30 })
    assert.is_nil(again)
    assert.equal("AccountCoreQuotaReached", aerr.code)
    assert.matches("^pool w%-quota: steady at %d+ of 400 nodes: resize error", amsg)
    gone("w-quota")
  end)

  it("ignores a stale resize error: a pool steady at its targets since before the wait", function()
    create("w-stale", 1)
    assert(batch:wait_pool("w-stale", { interval = 0.05, timeout = 60 }))
    local before = assert(batch:get_pool("w-stale", { select = "allocationStateTransitionTime" }))
    -- the new node is allocated at once; stopping before the resize's end
    -- leaves a ResizeStopped error on a pool that has all its nodes
    -- (the clock stands still in between, so a slow run cannot reach the end first)
    helper.control(emu, "clock", { timeScale = 1e-9 })
    finally(function() helper.control(emu, "clock", { timeScale = 20 }) end)
    assert(batch:resize_pool("w-stale", { targetDedicatedNodes = 2 }))
    assert(batch:stop_resize_pool("w-stale"))
    helper.control(emu, "clock", { timeScale = 20 })
    local _, _, err = batch:wait_pool("w-stale", { interval = 0.05, timeout = 60,
      since = before.allocationStateTransitionTime })
    assert.equal("ResizeStopped", err.code)
    local pool = assert(batch:wait_pool("w-stale", { interval = 0.05, timeout = 60 }))
    assert.equal(2, pool.currentDedicatedNodes)
    assert.equal("ResizeStopped", pool.resizeErrors[1].code)
    gone("w-stale")
  end)

  it("fails when nodes end unusable, with their errors, and tolerates as many as the caller allows", function()
    helper.control(emu, "failures", { image = FAILING, unusable = 1 })
    create("w-unusable", 2, FAILING)
    local pool, msg, err = batch:wait_pool("w-unusable", { interval = 0.05, timeout = 60 })
    assert.is_nil(pool)
    assert.same({ "api", "NodesUnusable" }, { err.kind, err.code })
    assert.is_true(err.count >= 1)
    assert.equal("NodeAgentNotResponding", err.nodes[1].code)
    assert.matches("^tvmps_", err.nodes[1].node)
    assert.matches("^pool w%-unusable: %d node%(s%) unusable %(more than the 0 tolerated%): tvmps_%S+: "
      .. "NodeAgentNotResponding: ", msg)
    -- within the tolerance, the wait ends when the others are all there is
    pool = assert(batch:wait_pool("w-unusable", { interval = 0.05, timeout = 60, max_unusable = 2 }))
    assert.equal(2, pool.currentDedicatedNodes)
    gone("w-unusable")
  end)

  it("fails when start tasks fail, naming the exit code", function()
    helper.control(emu, "failures", { image = FAILING, startTaskFailed = 1, exitCode = 7 })
    create("w-starttask", 2, FAILING, { startTask = { commandLine = "/bin/sh -c 'exit 7'",
      waitForSuccess = true } })
    local pool, msg, err = batch:wait_pool("w-starttask", { interval = 0.05, timeout = 60 })
    assert.is_nil(pool)
    assert.same({ "api", "StartTaskFailed" }, { err.kind, err.code })
    assert.equal("FailureExitCode", err.nodes[1].code)
    assert.equal(7, err.nodes[1].exit_code)
    assert.matches("starttaskfailed %(more than the 0 tolerated%)", msg)
    assert.is_table(err.progress.counts)
    gone("w-starttask")
  end)

  it("fails when the pool is deleted while waiting, and when it never existed", function()
    create("w-deleted", 20)
    local r = parallel.run {
      function() return batch:wait_pool("w-deleted", { interval = 0.05, timeout = 60 }) end,
      function() parallel.sleep(0.2); return batch:delete_pool("w-deleted") end,
    }
    assert.is_nil(r[1][1])
    assert.truthy(r[2][1])
    assert.equal("PoolBeingDeleted", r[1][3].code)
    assert.equal("pool w-deleted: is being deleted", r[1][2])
    assert(batch:wait_pool_deleted("w-deleted", { interval = 0.05, timeout = 30 }))
    local pool, msg, err = batch:wait_pool("w-never", { interval = 0.05, timeout = 5 })
    assert.is_nil(pool)
    assert.equal("PoolNotFound", err.code)
    assert.not_matches("while waiting", msg)
  end)

  it("times out with the last pool and progress it saw", function()
    create("w-slow", 60)
    local pool, msg, err = batch:wait_pool("w-slow", { interval = 0.05, timeout = 0.3 })
    assert.is_nil(pool)
    assert.equal("timeout", err.kind)
    assert.equal("w-slow", err.pool.id)
    assert.equal(60, err.progress.target)
    assert.matches("^pool w%-slow: still resizing %(%d+ of 60 nodes%) after 0%.3s$", msg)
    local ok, dmsg, derr = batch:wait_pool_deleted("w-slow", { interval = 0.05, timeout = 0.2 })
    assert.is_nil(ok)
    assert.equal("timeout", derr.kind)
    assert.matches("^pool w%-slow: still active after 0%.2s$", dmsg)
    gone("w-slow")
  end)

  it("waits for many pools at once, polling with $select and one node-count request", function()
    local ids = {}
    for i = 1, 8 do ids[i] = "w-many-" .. i; create(ids[i], 1) end
    local selects, counts, real_get, real_counts = {}, 0, batch.get_pool, batch.list_pool_node_counts
    batch.get_pool = function(self, id, o) selects[#selects + 1] = o and o.select; return real_get(self, id, o) end
    batch.list_pool_node_counts = function(self, o) counts = counts + 1; return real_counts(self, o) end
    local fns = {}
    for i, id in ipairs(ids) do
      fns[i] = function() return batch:wait_pool(id, { interval = 0.05, timeout = 60 }) end
    end
    local ok, results = pcall(parallel.run, fns)
    batch.get_pool, batch.list_pool_node_counts = nil, nil
    assert(ok, results)
    for i = 1, #ids do assert.equal(ids[i], results[i][1].id) end
    assert.equal(#selects, counts)
    for _, s in ipairs(selects) do
      assert.matches("^id,state,allocationState,", s)
      assert.not_matches("virtualMachineConfiguration", s)
    end
    for _, id in ipairs(ids) do assert(batch:delete_pool(id)) end
  end)

  it("backs off while nothing changes, and looks again soon after a change", function()
    create("w-backoff", 1)
    local asked, real_sleep = {}, parallel.sleep
    parallel.sleep = function(s) asked[#asked + 1] = s; return real_sleep(0.02) end
    local ok, pool = pcall(batch.wait_pool, batch, "w-backoff", { interval = 0.1, max_interval = 0.4, timeout = 60 })
    parallel.sleep = real_sleep
    assert(ok, pool)
    assert.truthy(pool)
    local grew, reset = false, false
    for i = 2, #asked do
      assert.is_true(asked[i] <= 0.4 + 1e-9)
      if asked[i] > asked[i - 1] then grew = true end
      if asked[i] < asked[i - 1] then reset = true; assert.equal(0.1, asked[i]) end
    end
    assert.equal(0.1, asked[1])
    assert.is_true(grew, "the interval grew while nothing changed")
    assert.is_true(reset, "the interval went back to the base after a change")
    gone("w-backoff")
  end)
end)
