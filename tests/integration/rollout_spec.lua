-- Rollouts against the emulator: each policy's end state (pools, images,
-- jobs, records), its failure paths and rollbacks, a runner killed at
-- several points and then resumed or aborted from the service's state
-- alone, every policy under injected faults, and the example scripts.
local azbatch = require "azbatch"
local rollout = require "azbatch.rollout"
local state = require "azbatch.rollout_state"
local json = require "azbatch.json"
local helper = test_helper

local SUB = "00000000-0000-0000-0000-000000000001"
local GALLERY = ("/subscriptions/%s/resourceGroups/azbatch-dev/providers/Microsoft.Compute/galleries/devgallery"
  .. "/images/ubuntu2204"):format(SUB)
local ACCOUNT = ("/subscriptions/%s/resourceGroups/azbatch-dev/providers/Microsoft.Batch/batchAccounts/devbatch")
  :format(SUB)
local V2 = GALLERY .. "/versions/1.1.0"
local FAST = { poll = 0.05, wait = 120, step = 180 }

local emu, batch, arm

local function credential(url)
  return assert(azbatch.credential.client_secret { tenant = helper.DEV_TENANT, client_id = helper.DEV_CLIENT,
    client_secret = helper.DEV_SECRET, authority = url })
end

local function control(path, body) return helper.control(emu, path, body) end

local function make_pool(id, version, nodes, extra)
  local spec = { id = id, vmSize = "Standard_D2s_v3", targetDedicatedNodes = nodes or 2,
    virtualMachineConfiguration = { imageReference = { virtualMachineImageId = GALLERY .. "/versions/" .. version },
      nodeAgentSKUId = "batch.node.ubuntu 22.04" }, metadata = { { name = "team", value = "render" } } }
  for k, v in pairs(extra or {}) do
    if v == false then spec[k] = nil else spec[k] = v end
  end
  assert(batch:create_pool(spec))
  assert(batch:wait_pool(id, { interval = 0.05, timeout = 60 }))
end

local function make_job(id, pool, tasks)
  assert(batch:request("POST", "/jobs", { body = { id = id, poolInfo = { poolId = pool } } }))
  if tasks then control("jobs/" .. id .. "/tasks", { count = tasks }) end
end

local function version_of(p)
  local ref = p.virtualMachineConfiguration and p.virtualMachineConfiguration.imageReference or {}
  return (ref.virtualMachineImageId or ""):match("/versions/([^/]+)$")
end

-- Every pool: id -> {version, td, tl, autoscale, user metadata, our record names}
local function pools()
  local out = {}
  for _, p in ipairs(assert(azbatch.collect(batch:list_pools()))) do
    if p.state ~= "deleting" then
      local user, ours = {}, {}
      for _, kv in ipairs(p.metadata or {}) do
        if state.OURS[kv.name] then ours[#ours + 1] = kv.name else user[kv.name] = kv.value end
      end
      table.sort(ours)
      out[p.id] = { version = version_of(p), td = p.targetDedicatedNodes, tl = p.targetLowPriorityNodes,
        autoscale = p.enableAutoScale, user = user, ours = ours }
    end
  end
  return out
end

-- Every job: id -> {pool, running_on, state, marked}
local function jobs()
  local out = {}
  for _, j in ipairs(assert(azbatch.collect(batch:list_jobs()))) do
    local marked = false
    for _, kv in ipairs(j.metadata or {}) do marked = marked or kv.name == rollout.JOB_MARK end
    out[j.id] = { pool = j.poolInfo.poolId, running_on = j.executionInfo and j.executionInfo.poolId, state = j.state,
      marked = marked }
  end
  return out
end

local function journal() return control("journal").value end

local function writes_by(path_pattern)
  local n = 0
  for _, e in ipairs(journal()) do
    if e.path:match(path_pattern) then n = n + 1 end
  end
  return n
end

local function new(o)
  o.timeouts = o.timeouts or FAST
  o.arm = o.arm == nil and arm or o.arm or nil
  o.account = ACCOUNT
  return assert(rollout.new(batch, o))
end

local function outcomes(list)
  local out = {}
  for _, e in ipairs(list) do out[#out + 1] = e.outcome end
  return out
end

-- A pool's id once gone from the account (deletes finish in simulated time).
local function gone(id)
  for _ = 1, 200 do
    if not batch:pool_exists(id) then return true end
    azbatch.sleep(0.05)
  end
  return false
end

describe("rollouts against the emulator", function()
  setup(function()
    emu = helper.emulator("--time-scale 100 --seed 5")
    local cred = credential(emu.url)
    batch = assert(azbatch.client { endpoint = emu.url, credential = cred })
    arm = assert(azbatch.arm { endpoint = emu.url, credential = cred })
  end)

  teardown(function()
    if batch then batch:close() end
    if emu then emu.stop() end
  end)

  before_each(function()
    control("reset", {})
    control("clock", { timeScale = 100 })
  end)

  it("dry run: prints the plan, runs preflight and sends no write", function()
    local r = new { strategy = "canary", canary = { nodes = 1, ["then"] = "blue-green" }, pools = { "workers-v1" },
      image = V2, id = "ro-dry" }
    local lines = {}
    assert(r:dry_run(function(l) lines[#lines + 1] = l end))
    local text = table.concat(lines, "\n")
    assert.matches("create_pool +POST /pools +workers%-v1%-rodry\n", text)
    assert.matches('"virtualMachineImageId":"' .. V2:gsub("%p", "%%%0") .. '"', text)
    assert.matches("handover +workers%-v1 %-> workers%-v1%-rodry", text)
    assert.matches("delete_pool +DELETE /pools/workers%-v1", text)
    assert.same({}, journal())
  end)

  it("blue-green with job handover: jobs run on the new pool, the old one is gone, the record stays", function()
    local r = new { strategy = "blue-green", pools = { "workers-v1" }, image = V2, id = "ro-bg" }
    local conflicts = control("stats").byStatus["412"] or 0
    local rep = assert(r:run())
    assert.equal("done", rep.state)
    assert.is_false(rep.rolled_back)
    -- its record writes go by the ETags of its own writes and resizes: none is refused
    assert.equal(conflicts, control("stats").byStatus["412"] or 0)
    for _, e in ipairs(rep.steps) do assert.equal("ok", e.outcome, e.name) end
    -- the report's picture of the old pool starts with the new pool's creation
    -- (the preflight before it has no pool to show; samples are a poll apart)
    local first
    for _, smp in ipairs(rep.samples) do
      if smp.pool == "workers-v1" then first = first or smp end
    end
    assert.is_true(first.t <= rep.steps[2]["end"] + 0.01, "first sample of workers-v1 at " .. first.t)
    assert.truthy(next(first.counts))
    assert.is_true(gone("workers-v1"))
    local after = pools()
    assert.is_nil(after["workers-v1"])
    local new_pool = after["workers-v1-robg"]
    assert.equal("1.1.0", new_pool.version)
    assert.equal(2, new_pool.td)
    assert.same({ state.KEY, state.POOL_KEY, state.STEP_KEY }, new_pool.ours)
    local j = jobs()
    for _, id in ipairs { "nightly-render", "ingest" } do
      assert.same({ pool = "workers-v1-robg", running_on = "workers-v1-robg", state = "active", marked = false },
        j[id])
    end
    -- disabled by its owner: moved, and still disabled
    assert.same({ pool = "workers-v1-robg", running_on = "workers-v1-robg", state = "disabled", marked = false },
      j.backfill)
    -- status reports it done, with its steps
    local st = assert(rollout.status(batch))
    assert.equal(1, #st.rollouts)
    assert.equal("ro-bg", st.rollouts[1].id)
    assert.equal("done", st.rollouts[1].state)
    assert.equal(#rep.steps, #st.rollouts[1].report.steps)
    assert.matches("hand jobs over from workers%-v1 to workers%-v1%-robg", st.rollouts[1].report.text)
    -- the timeline has both pools, and forget leaves the user's metadata only
    local svg = r:timeline_svg()
    assert.matches(">workers%-v1</text>", svg)
    assert.matches(">workers%-v1%-robg</text>", svg)
    assert(rollout.forget(batch, "ro-bg"))
    assert.same({}, pools()["workers-v1-robg"].ours)
    assert.same({ rollouts = {} }, rollout.status(batch))
  end)

  it("blue-green keep_old: jobs move, the old pool stays as it was, both carry the finished record", function()
    local r = new { strategy = "blue-green", pools = { "workers-v1" }, image = V2, id = "ro-keep", keep_old = true }
    assert.equal("done", assert(r:run()).state)
    assert.error_matches(function() r:run() end, "this rollout has already run")
    local p = pools()
    assert.same({ "1.0.0", 2 }, { p["workers-v1"].version, p["workers-v1"].td })
    assert.same({ "1.1.0", 2 }, { p["workers-v1-rokeep"].version, p["workers-v1-rokeep"].td })
    assert.equal("workers-v1-rokeep", jobs().ingest.running_on)
    assert.same({ ["workers-v1"] = "old", ["workers-v1-rokeep"] = "new" }, rollout.status(batch).rollouts[1].pools)
  end)

  it("node_agent 'auto' chooses the agent for the new image", function()
    make_pool("na", "1.0.0", 1)
    local r = new { strategy = "in-place", pools = { "na" }, image = V2, id = "ro-na", node_agent = "auto" }
    assert.equal("done", assert(r:run()).state)
    assert.equal("batch.node.ubuntu 22.04", r.rec.agent)
    assert.equal("batch.node.ubuntu 22.04", assert(batch:get_pool("na")).virtualMachineConfiguration.nodeAgentSKUId)
  end)

  it("rolling three pools, two at a time, within the extra-node budget", function()
    make_pool("ra", "1.0.0", 3)
    make_pool("rb", "1.0.0", 2)
    make_pool("rc", "1.0.0", 2)
    make_job("ra-job", "ra", 2)
    local r = new { strategy = "rolling", pools = { "ra", "rb", "rc" }, image = V2, id = "ro-roll", batch = 2,
      extra_nodes = 2 }
    local rep = assert(r:run())
    assert.equal("done", rep.state)
    local after = pools()
    for id, n in pairs { ra = 3, rb = 2, rc = 2 } do
      assert.is_nil(after[id])
      assert.equal("1.1.0", after[id .. "-roroll"].version)
      assert.equal(n, after[id .. "-roroll"].td)
    end
    assert.equal("ra-roroll", jobs()["ra-job"].running_on)
    -- at every sample, the pools of the rollout held at most 7 + 2 nodes
    local latest, most = {}, 0
    for _, s in ipairs(rep.samples) do
      local n = 0
      for _, v in pairs(s.counts) do n = n + v end
      latest[s.pool] = n
      local total = 0
      for _, v in pairs(latest) do total = total + v end
      most = math.max(most, total)
    end
    assert.is_true(most <= 9, "peak " .. most)
    assert.is_true(most >= 7)
  end)

  it("in place: the same pool id on the new image, emptied first, jobs untouched", function()
    make_pool("ip", "1.0.0", 2)
    make_job("ip-job", "ip", 1)
    local r = new { strategy = "in-place", pools = { "ip" }, image = V2, id = "ro-ip", deallocation = "requeue" }
    local rep = assert(r:run())
    assert.equal("done", rep.state)
    local p = pools().ip
    assert.equal("1.1.0", p.version)
    assert.equal(2, p.td)
    assert.same({ team = "render" }, p.user)
    assert.same({ pool = "ip", running_on = "ip", state = "active", marked = false }, jobs()["ip-job"])
    -- the writes in order: records, resize to 0, (records), patch while empty, resize back
    local order = {}
    for _, e in ipairs(journal()) do
      if e.path:match("^/pools/ip/resize") then order[#order + 1] = "resize" end
      if e.method == "PATCH" and e.path == "/pools/ip" then order[#order + 1] = "patch" end
    end
    local s = table.concat(order, ",")
    assert.matches("^patch,resize,.*patch.*,resize,", s)
    assert.equal(2, writes_by("^/pools/ip/resize"))
  end)

  it("in place with autoscale: the formula comes back on the new image", function()
    make_pool("ipa", "1.0.0", nil, { targetDedicatedNodes = false, enableAutoScale = true,
      autoScaleFormula = "$TargetDedicatedNodes=1;", autoScaleEvaluationInterval = "PT5M" })
    local rep = assert(new { strategy = "in-place", pools = { "ipa" }, image = V2, id = "ro-ipa" }:run())
    assert.equal("done", rep.state)
    local p = assert(batch:get_pool("ipa"))
    assert.is_true(p.enableAutoScale)
    assert.equal("$TargetDedicatedNodes=1;", p.autoScaleFormula)
    assert.equal("1.1.0", version_of(p))
  end)

  it("a canary that fails its health check is rolled back: its pool deleted, nothing else changed", function()
    make_pool("cf", "1.0.0", 2)
    local before = pools()
    local checked
    local r = new { strategy = "canary", canary = { nodes = 1, ["then"] = "blue-green" }, pools = { "cf" },
      image = V2, id = "ro-cf", hooks = { health = function(ctx, pool)
        checked = { ctx.id, pool }
        return nil, "smoke test failed"
      end } }
    local ok, msg, err = r:run()
    assert.is_nil(ok)
    assert.equal("health check of cf-rocf: smoke test failed", msg)
    assert.equal("HealthCheckFailed", err.code)
    assert.is_true(err.rolled_back)
    assert.same({ "ro-cf", "cf-rocf" }, checked)
    local rep = err.report
    assert.is_true(rep.rolled_back)
    assert.equal("rolled_back", rep.state)
    assert.same({ "ok", "ok", "ok", "failed" }, outcomes(rep.steps))
    -- the canary is the new pool: jobs on it go back, then it goes
    assert.same({ "handover", "delete_pool", "wait_deleted" }, { rep.undo[1].call, rep.undo[2].call,
      rep.undo[3].call })
    assert.is_true(gone("cf-rocf"))
    assert.same(before, pools())
    assert.same({ rollouts = {} }, rollout.status(batch))
  end)

  it("a canary whose nodes end unusable fails its wait and is rolled back", function()
    make_pool("cu", "1.0.0", 2)
    control("failures", { image = V2, unusable = 1 })
    local before = pools()
    local ok, msg, err = new { strategy = "canary", canary = { nodes = 1 }, pools = { "cu" }, image = V2,
      id = "ro-cu" }:run()
    assert.is_nil(ok)
    assert.equal("NodesUnusable", err.code)
    assert.matches("NodeAgentNotResponding", msg)
    assert.is_true(err.rolled_back)
    assert.is_true(gone("cu-canary-rocu"))
    assert.same(before, pools())
  end)

  it("an in-place rollout that fails after growing back is restored to the old image and targets", function()
    make_pool("ir", "1.0.0", 2)
    make_job("ir-job", "ir", 1)
    local before = pools()
    local ok, _, err = new { strategy = "in-place", pools = { "ir" }, image = V2, id = "ro-ir",
      hooks = { health = function() return nil, "renders are wrong" end } }:run()
    assert.is_nil(ok)
    assert.is_true(err.rolled_back)
    assert.same({ "resize_pool", "wait_empty", "wait_empty", "patch_pool", "resize_pool", "wait_pool" },
      (function()
        local c = {}
        for _, e in ipairs(err.report.undo) do c[#c + 1] = e.call end
        return c
      end)())
    assert.same(before, pools())
    assert.equal("1.0.0", version_of(assert(batch:get_pool("ir"))))
    assert.equal("ir", jobs()["ir-job"].pool)
  end)

  it("approval refused before the handover: the new pool goes, jobs stay on the old pool", function()
    local before, jbefore = pools(), jobs()
    local asked = {}
    local ok, msg, err = new { strategy = "blue-green", pools = { "workers-v1" }, image = V2, id = "ro-no",
      hooks = { approve = function(_, st)
        asked[#asked + 1] = st.what or st.name
        return st.what ~= "hand jobs over"
      end } }:run()
    assert.is_nil(ok)
    assert.equal("approval: hand jobs over: not approved", msg)
    assert.equal("NotApproved", err.code)
    assert.same({ "hand jobs over" }, asked)
    assert.is_true(gone("workers-v1-rono"))
    assert.same(before, pools())
    assert.same(jbefore, jobs())
  end)

  it("a job handover that fails is undone: every job back on the old pool, as it was", function()
    local jbefore = jobs()
    local calls = {}
    local ok, _, err = new { strategy = "blue-green", pools = { "workers-v1" }, image = V2, id = "ro-hf",
      handover = function(ctx, from, to)
        assert(ctx.id == "ro-hf")
        calls[#calls + 1] = from .. " -> " .. to
        if to == "workers-v1" then
          -- handing back: enable what was disabled
          for _, id in ipairs { "nightly-render", "ingest" } do
            while batch:get_job(id).state == "disabling" do azbatch.sleep(0.05) end
            if batch:get_job(id).state == "disabled" then assert(batch:enable_job(id)) end
          end
          return true
        end
        for _, id in ipairs { "nightly-render", "ingest" } do assert(batch:disable_job(id, "requeue")) end
        return nil, "downstream check failed"
      end }:run()
    assert.is_nil(ok)
    assert.equal("HandoverFailed", err.code)
    assert.is_true(err.rolled_back)
    -- the custom handover's undo is the function called the other way
    assert.same({ "workers-v1 -> workers-v1-rohf", "workers-v1-rohf -> workers-v1", "workers-v1-rohf -> workers-v1" },
      calls)
    assert.equal("handover", err.report.undo[1].call)
    assert.is_true(gone("workers-v1-rohf"))
    local j = jobs()
    for _, id in ipairs { "nightly-render", "ingest" } do
      assert.equal("workers-v1", j[id].pool)
      assert.truthy(j[id].state == "active" or j[id].state == "enabling", j[id].state)
    end
    assert.equal(jbefore.backfill.state, j.backfill.state)
  end)

  it("refuses a second rollout of a pool in a rollout, and a rollout of a pool that does not exist", function()
    make_pool("busy", "1.0.0", 1)
    -- a rollout that stops half-way (an unknown outcome would do the same)
    local r = new { strategy = "in-place", pools = { "busy" }, image = V2, id = "ro-first",
      hooks = { on_step = function(e) if e.n == 2 then error("runner died") end end } }
    assert.error_matches(function() r:run() end, "runner died")
    local ok, msg, err = new { strategy = "in-place", pools = { "busy" }, image = V2, id = "ro-second" }:plan()
    assert.is_nil(ok)
    assert.equal("RolloutInProgress", err.code)
    assert.matches("is in rollout ro%-first %(running%)", msg)
    ok, msg, err = new { strategy = "blue-green", pools = { "nope" }, image = V2 }:run()
    assert.is_nil(ok)
    assert.equal("rollout: pool nope does not exist", msg)
    assert.equal("PoolNotFound", err.code)
    -- a run that could not even plan still reports: no steps, nothing written
    assert.equal("failed", err.report.state)
    assert.same({}, err.report.steps)
    -- abort puts it back
    assert(rollout.abort(batch, "ro-first", { timeouts = FAST }))
    assert.equal(1, pools().busy.td)
  end)

  it("a runner that was taken over stops at its next step (RolloutBusy)", function()
    make_pool("tk", "1.0.0", 1)
    local took
    local r = new { strategy = "in-place", pools = { "tk" }, image = V2, id = "ro-tk",
      hooks = { on_step = function(e)
        if e.n == 3 and not took then
          took = true
          -- another runner resumes it meanwhile and finishes it
          assert(rollout.resume(batch, "ro-tk", { timeouts = FAST }))
        end
      end } }
    local ok, msg, err = r:run()
    assert.is_nil(ok)
    assert.equal("RolloutBusy", err.code)
    assert.matches("run by another runner", msg)
    assert.equal("1.1.0", pools().tk.version)
    assert.equal("done", rollout.status(batch).rollouts[1].state)
  end)

  it("rolling: extra_nodes is cut to the account's free dedicated cores", function()
    make_pool("qa", "1.0.0", 2)
    local before = #journal()
    local r = new { strategy = "rolling", pools = { "qa" }, image = V2, id = "ro-q", extra_nodes = 100000 }
    local steps = assert(r:plan())
    local cut
    for _, f in ipairs(r.findings) do if f.code == "ROLLOUT_BUDGET_CUT" then cut = f end end
    assert.is_table(cut)
    -- 500 cores, workers-v1 and qa hold 4 + 4; 2 cores per Standard_D2s_v3 node
    assert.equal(246, r.rec.o.extra)
    assert.equal("extra_nodes 100000 cut to 246 by the account's free dedicated cores", cut.message)
    assert.same({ used = 8, quota = 500, cores = 2 }, r.quota)
    assert.equal(2, steps[2].body.targetDedicatedNodes)
    assert.equal(before, #journal())
  end)

  it("blue-green that would pass the core quota fails before anything is made", function()
    make_pool("qb", "1.0.0", 40, { vmSize = "Standard_D8s_v5" })
    local ok, msg, err = new { strategy = "blue-green", pools = { "qb" }, image = V2, id = "ro-qb" }:run()
    assert.is_nil(ok)
    assert.equal("AccountCoreQuotaReached", err.code)
    assert.equal("rollout: the new pools need 320 dedicated cores beside the old ones, and 176 of the account's 500 "
      .. "are free (try strategy 'rolling', which needs only extra_nodes more)", msg)
    assert.equal(1, writes_by("^/pools$"))       -- qb itself, nothing else
    assert.same({}, pools().qb.ours)
  end)

  it("a failing preflight stops the rollout before it writes anything", function()
    make_pool("pf", "1.0.0", 1)
    local before = #journal()
    -- a version the gallery does not have
    local ok, msg, err = new { strategy = "blue-green", pools = { "pf" }, image = GALLERY .. "/versions/9.9.9",
      id = "ro-pf" }:run()
    assert.is_nil(ok)
    assert.equal("PreflightFailed", err.code)
    assert.equal("validation", err.kind)
    assert.matches("^preflight: IMAGE_VERSION_NOT_FOUND %(pf%-ropf%): ", msg)
    assert.equal("failed", err.report.steps[1].outcome)
    assert.equal(before, #journal())
  end)

  it("a new pool that meets the core quota fails its wait with the resize error and is rolled back", function()
    make_pool("qc", "1.0.0", 40, { vmSize = "Standard_D8s_v5" })
    local before = pools()
    -- preflight would refuse it: without it, the service's resize error stops the wait
    local ok, msg, err = new { strategy = "blue-green", pools = { "qc" }, image = V2, id = "ro-qc", handover = false,
      preflight = false }:run()
    assert.is_nil(ok)
    assert.equal("AccountCoreQuotaReached", err.code)
    assert.matches("^pool qc%-roqc: ", msg)
    assert.equal(3, err.step)
    assert.is_true(err.rolled_back)
    assert.is_true(gone("qc-roqc"))
    assert.same(before, pools())
  end)

  it("a failure after an old pool is deleted stops the rollout without undoing; resume finishes it", function()
    make_pool("ca", "1.0.0", 1)
    make_pool("cb", "1.0.0", 1)
    local refuse = true
    local o = { strategy = "blue-green", pools = { "ca", "cb" }, image = V2, id = "ro-cm", handover = false,
      hooks = { approve = function(_, st) return not (refuse and st.call == "delete_pool" and st.pool == "cb") end } }
    local ok, msg, err = new(o):run()
    assert.is_nil(ok)
    assert.equal("approval: delete cb: not approved", msg)
    assert.is_number(err.committed)
    assert.is_nil(err.rolled_back)
    assert.equal("failed", err.report.state)
    assert.same({}, err.report.undo)
    assert.is_true(gone("ca"))
    assert.equal("failed", rollout.status(batch).rollouts[1].state)
    ok, msg, err = rollout.abort(batch, "ro-cm")
    assert.is_nil(ok)
    assert.matches("is done and cannot be undone; resume it instead$", msg)
    assert.equal("RolloutCommitted", err.code)
    refuse = false
    assert.equal("done", assert(rollout.resume(batch, "ro-cm", { timeouts = FAST, hooks = o.hooks })).state)
    assert.is_true(gone("cb"))
    local p = pools()
    assert.same({ "1.1.0", "1.1.0" }, { p["ca-rocm"].version, p["cb-rocm"].version })
  end)

  it("a step whose outcome cannot be settled stops the rollout without rolling back", function()
    make_pool("uk", "1.0.0", 1)
    -- a client whose configuration patch takes effect and loses its answer,
    -- and which can read nothing after that, until the service is back
    local Client = require("azbatch.client").Client
    local lossy = assert(azbatch.client { endpoint = emu.url, credential = credential(emu.url) })
    local blind = false
    function lossy.patch_pool(self, id, props, o)
      if props.virtualMachineConfiguration then
        assert(Client.patch_pool(self, id, props, o))
        blind = true
        return nil, "transport: the connection was reset", { kind = "transport", outcome = "unknown" }
      end
      return Client.patch_pool(self, id, props, o)
    end
    function lossy.get_pool(self, ...)
      if blind then return nil, "transport: unreachable", { kind = "transport" } end
      return Client.get_pool(self, ...)
    end
    local r = assert(rollout.new(lossy, { strategy = "in-place", pools = { "uk" }, image = V2, id = "ro-uk",
      timeouts = FAST, arm = arm, account = ACCOUNT }))
    local ok, msg, err = r:run()
    lossy:close()
    assert.is_nil(ok)
    assert.equal("transport: the connection was reset", msg)
    assert.equal("unknown", err.outcome)
    assert.equal(4, err.step)
    assert.is_nil(err.rolled_back)
    assert.same({}, err.report.undo)
    assert.equal("unknown", err.report.steps[4].outcome)
    assert.equal("running", rollout.status(batch).rollouts[1].state)   -- as the service last heard
    -- once the service answers again, resume finds the change made and finishes
    local rep = assert(rollout.resume(batch, "ro-uk", { timeouts = FAST }))
    assert.equal("done", rep.state)
    assert.equal("skipped", rep.steps[#rep.steps - 4].outcome)
    assert.equal("1.1.0", pools().uk.version)
  end)

  it("a step done whose progress cannot be written stops the rollout; resume runs the step again", function()
    make_pool("us", "1.0.0", 1)
    local brief = assert(azbatch.client { endpoint = emu.url, credential = credential(emu.url),
      retry = { max_attempts = 2, base_delay = 0.01 } })
    local r = assert(rollout.new(brief, { strategy = "in-place", pools = { "us" }, image = V2, id = "ro-us",
      timeouts = FAST, arm = arm, account = ACCOUNT, hooks = { on_step = function(e)
        if e.n == 4 then control("faults", { p503 = 1, methods = { "PATCH" } }) end  -- no write is taken
      end } }))
    local ok, msg, err = r:run()
    control("faults", { p503 = 0, methods = azbatch.json.null })
    brief:close()
    assert.is_nil(ok)
    assert.matches("^rollout ro%-us: step 4 is done, and recording it failed: ", msg)
    assert.is_true(err.unsaved)
    assert.is_nil(err.rolled_back)
    assert.same({}, err.report.undo)
    -- step 3 (a wait) is recorded with step 4's progress: the service holds 2
    assert.equal(2, rollout.status(batch).rollouts[1].done)
    assert.equal("done", assert(rollout.resume(batch, "ro-us", { timeouts = FAST })).state)
    assert.equal("1.1.0", pools().us.version)
  end)

  it("a step done whose progress write lost its answer says so; status and resume go by the service", function()
    make_pool("ut", "1.0.0", 1)
    local slow = assert(azbatch.client { endpoint = emu.url, credential = credential(emu.url), timeout = 0.3,
      retry = { max_attempts = 2, base_delay = 0.01 } })
    local r = assert(rollout.new(slow, { strategy = "in-place", pools = { "ut" }, image = V2, id = "ro-ut",
      timeouts = FAST, arm = arm, account = ACCOUNT, hooks = { on_step = function(e)
        if e.n == 4 then control("faults", { latencyMs = 600 }) end        -- the service stops answering in time
      end } }))
    local ok, msg, err = r:run()
    control("faults", { latencyMs = 0 })
    slow:close()
    assert.is_nil(ok)
    assert.matches("^rollout ro%-ut: step 4 is done, and recording it may have failed %(the service's answer " ..
      "was lost%): ", msg)
    assert.same({ true, "unknown" }, { err.unsaved, err.outcome })
    -- the late writes were refused (step 4 changed the pool's ETag since this
    -- runner's last write): the service holds 2, which the runner could not know
    helper.sleep(1.5)
    assert.equal(2, rollout.status(batch).rollouts[1].done)
    assert.equal("done", assert(rollout.resume(batch, "ro-ut", { timeouts = FAST })).state)
    assert.equal("1.1.0", pools().ut.version)
  end)

  it("a resize that meets another writer's change since its read resizes all the same", function()
    make_pool("cw", "1.0.0", 1)
    local Client = require("azbatch.client").Client
    local racing = assert(azbatch.client { endpoint = emu.url, credential = credential(emu.url) })
    local conditional
    function racing.resize_pool(self, id, body, o)
      if o and o.if_match and not conditional then
        conditional = o.if_match
        -- another writer, between the step's read and its resize
        assert(batch:patch_pool(id, { startTask = { commandLine = "echo changed" } }))
      end
      return Client.resize_pool(self, id, body, o)
    end
    local rep, why = assert(rollout.new(racing, { strategy = "blue-green", pools = { "cw" }, image = V2,
      id = "ro-cw", handover = false, timeouts = FAST, arm = arm, account = ACCOUNT })):run()
    racing:close()
    assert.is_table(rep, why)
    assert.is_string(conditional)
    assert.equal("done", rep.state)
    for _, e in ipairs(rep.steps) do assert.equal("ok", e.outcome, e.name) end
    assert.is_true(gone("cw"))
    assert.equal("1.1.0", pools()["cw-rocw"].version)
  end)

  -- a delete whose lost answer leaves the pool gone without a trace is
  -- "unknown" to the client (PoolNotFound); the step, which found the pool
  -- there before, settles it as done
  it("a delete step whose delete says PoolNotFound, outcome unknown, is done (recovered)", function()
    make_pool("dg", "1.0.0", 1)
    local Client = require("azbatch.client").Client
    local lost = assert(azbatch.client { endpoint = emu.url, credential = credential(emu.url) })
    function lost.delete_pool(self, id, o)
      assert(Client.delete_pool(self, id, o))
      return nil, "PoolNotFound: The specified pool does not exist. (the pool is gone: ...)",
        { kind = "api", status = 404, code = "PoolNotFound", outcome = "unknown" }
    end
    local rep = assert(rollout.new(lost, { strategy = "blue-green", pools = { "dg" }, image = V2, id = "ro-dg",
      handover = false, timeouts = FAST, arm = arm, account = ACCOUNT })):run()
    lost:close()
    assert.is_table(rep)
    assert.equal("done", rep.state)
    local entry
    for _, e in ipairs(rep.steps) do if e.call == "delete_pool" and e.pool == "dg" then entry = e end end
    assert.same({ "ok", true }, { entry.outcome, entry.recovered })
    assert.is_true(gone("dg"))
    assert.equal("1.1.0", pools()["dg-rodg"].version)
  end)

  -- found by make soak: the last step done, "done" not taken by the
  -- service, "failed" (with every step counted) taken; resume then ran no
  -- step, and said "running" for ever instead of finishing
  it("a rollout whose every step is done but whose 'done' was never written: resume finishes it", function()
    make_pool("ud", "1.0.0", 1)
    local Client = require("azbatch.client").Client
    local flaky = assert(azbatch.client { endpoint = emu.url, credential = credential(emu.url) })
    local refused = 0
    function flaky.patch_pool(self, id, props, o)
      for _, kv in ipairs(props.metadata or {}) do
        if kv.name == state.STEP_KEY and kv.value:find('"st":"done"', 1, true) and refused == 0 then
          refused = refused + 1
          return nil, "TooManyRequests: the request rate is too high", { kind = "api", status = 429,
            code = "TooManyRequests" }
        end
      end
      return Client.patch_pool(self, id, props, o)
    end
    local r = assert(rollout.new(flaky, { strategy = "in-place", pools = { "ud" }, image = V2, id = "ro-ud",
      timeouts = FAST, arm = arm, account = ACCOUNT }))
    local ok, msg, err = r:run()
    flaky:close()
    assert.is_nil(ok)
    assert.equal(1, refused)
    local steps = #err.report.steps
    assert.matches(("^rollout ro%%-ud: step %d is done, and recording it failed: TooManyRequests"):format(steps), msg)
    assert.is_true(err.unsaved)
    local st = rollout.status(batch).rollouts[1]
    assert.same({ "failed", steps }, { st.state, st.done })
    local rep = assert(rollout.resume(batch, "ro-ud", { timeouts = FAST }))
    assert.equal("done", rep.state)
    assert.same({ "done", steps }, { rollout.status(batch).rollouts[1].state, rollout.status(batch).rollouts[1].done })
    assert.equal("1.1.0", pools().ud.version)
    ok, msg, err = rollout.abort(batch, "ro-ud")
    assert.is_nil(ok)
    assert.equal("RolloutFinished", err.code, msg)
  end)

  it("resume and abort fail clearly on what they cannot do", function()
    local ok, msg, err = rollout.resume(batch, "ro-none")
    assert.is_nil(ok)
    assert.equal("rollout ro-none: no pool holds it", msg)
    assert.equal("RolloutNotFound", err.code)
    assert(new { strategy = "canary", pools = { "workers-v1" }, image = V2, id = "ro-c1" }:run())
    ok, msg, err = rollout.abort(batch, "ro-c1")
    assert.equal("rollout ro-c1: finished; there is nothing to abort", msg)
    assert.is_nil(ok)
    assert.equal("RolloutFinished", err.code)
    assert.equal("done", assert(rollout.resume(batch, "ro-c1")).state)
    assert.error_matches(function() rollout.resume(batch, "ro-c1", { hook = {} }) end, "unknown option 'hook'")
    assert.error_matches(function() rollout.status({}) end, "azbatch.Client expected")
  end)
end)

-- {===================================================================
-- The job methods a handover is made of
-- ====================================================================

describe("job methods against the emulator", function()
  setup(function()
    emu = helper.emulator("--time-scale 100 --seed 3")
    batch = assert(azbatch.client { endpoint = emu.url, credential = credential(emu.url) })
  end)

  teardown(function()
    if batch then batch:close() end
    if emu then emu.stop() end
  end)

  before_each(function()
    control("faults", { p429 = 0, p503 = 0, drop = 0, dropAfterCommit = 0 })
    control("reset", {})
    control("clock", { timeScale = 100 })
  end)

  local function wait_state(id, want)
    for _ = 1, 200 do
      if batch:get_job(id).state == want then return true end
      azbatch.sleep(0.02)
    end
    error("job " .. id .. " never became " .. want)
  end

  it("lists, gets, patches, disables and enables jobs", function()
    local list = assert(azbatch.collect(batch:list_jobs { filter = "poolInfo/poolId eq 'workers-v1'", select = "id" }))
    assert.equal(3, #list)
    local job = assert(batch:get_job("ingest", { select = "id,state,priority" }))
    assert.same({ "ingest", "active" }, { job.id, job.state })
    assert.is_string(assert(batch:patch_job("ingest", { priority = 5 })).etag)
    assert.equal(5, batch:get_job("ingest").priority)
    assert(batch:disable_job("ingest", "requeue"))
    wait_state("ingest", "disabled")
    assert(batch:patch_job("ingest", { poolInfo = { poolId = "elsewhere" } }))
    assert(batch:enable_job("ingest"))
    wait_state("ingest", "active")
    assert.equal("elsewhere", batch:get_job("ingest", { select = "id,executionInfo" }).executionInfo.poolId)
  end)

  it("returns the service's errors and refuses bad bodies before sending", function()
    local ok, msg, err = batch:get_job("nope")
    assert.is_nil(ok)
    assert.equal("JobNotFound", err.code)
    assert.equal(404, err.status)
    assert.matches("^JobNotFound: ", msg)
    ok, msg, err = batch:patch_job("ingest", { pool = "x" })
    assert.same({ nil, "job.pool: unknown field", { kind = "validation", field = "job.pool" } }, { ok, msg, err })
    ok, msg, err = batch:patch_job("ingest", { poolInfo = { poolId = "" } })
    assert.is_nil(ok)
    assert.equal("job.poolInfo.poolId", err.field)
    assert.equal("job.poolInfo.poolId: expected a pool id", msg)
    ok, msg, err = batch:disable_job("ingest", "later")
    assert.same({ nil, "job.disableTasks: must be one of 'requeue', 'terminate', 'wait'",
      { kind = "validation", field = "job.disableTasks" } }, { ok, msg, err })
    -- the pool of an active job cannot change: the service's answer, as it is
    ok, msg, err = batch:patch_job("ingest", { poolInfo = { poolId = "elsewhere" } })
    assert.is_nil(ok)
    assert.matches("^OperationInvalidForCurrentState: ", msg)
    assert.equal("OperationInvalidForCurrentState", err.code)
    ok, msg, err = batch:enable_job("ingest")
    assert.is_nil(ok)
    assert.matches("^OperationInvalidForCurrentState: ", msg)
    assert.equal("OperationInvalidForCurrentState", err.code)
    assert.equal(0, #journal())
    assert.error_matches(function() batch:patch_job("ingest", "x") end, "bad argument #2 to 'patch_job'")
    assert.error_matches(function() batch:get_job("") end, "the id is empty")
    assert.error_matches(function() batch:hand_over_jobs("a", "b", { disable_tasks = "x" }) end,
      "option 'disable_tasks' must be")
  end)

  it("reports a disable and an enable whose answers were lost as done (recovered)", function()
    control("faults", { dropAfterCommit = 1, methods = { "POST" } })
    local r = assert(batch:disable_job("ingest", "requeue"))
    assert.is_true(r.recovered)
    control("faults", { dropAfterCommit = 0 })
    wait_state("ingest", "disabled")
    control("faults", { dropAfterCommit = 1, methods = { "POST" } })
    r = assert(batch:enable_job("ingest"))
    assert.is_true(r.recovered)
    control("faults", { dropAfterCommit = 0, methods = json.null })
    -- every attempt was applied (repeats change nothing); two calls in all
    local calls = {}
    for _, e in ipairs(journal()) do calls[e.clientRequestId] = true end
    local n = 0
    for _ in pairs(calls) do n = n + 1 end
    assert.equal(2, n)
  end)

  it("hands every job over and waits until it runs there; a disabled job stays disabled", function()
    local r = assert(batch:hand_over_jobs("workers-v1", "green", { tag = "t1", interval = 0.02 }))
    table.sort(r.jobs)
    assert.same({ "backfill", "ingest", "nightly-render" }, r.jobs)
    assert.equal(2, r.moved)
    assert.equal(1, r.disabled)
    local j = jobs()
    assert.same({ pool = "green", running_on = "green", state = "active", marked = false }, j.ingest)
    assert.same({ pool = "green", running_on = "green", state = "disabled", marked = false }, j.backfill)
  end)

  it("carries on a move cut short, and undoes one, by its tag", function()
    -- cut short: marked and disabled, still on the old pool
    assert(batch:patch_job("ingest", { metadata = { { name = rollout.JOB_MARK, value = "t2|workers-v1|green" } } }))
    assert(batch:disable_job("ingest", "requeue"))
    wait_state("ingest", "disabled")
    local r = assert(batch:hand_over_jobs("workers-v1", "green", { tag = "t2", interval = 0.02 }))
    assert.equal(2, r.moved)
    assert.same({ pool = "green", running_on = "green", state = "active", marked = false }, jobs().ingest)
    -- undone half-way: on the new pool, marked for the way there, disabled
    assert(batch:patch_job("ingest", { metadata = { { name = rollout.JOB_MARK, value = "t2|workers-v1|green" } } }))
    assert(batch:disable_job("ingest", "requeue"))
    wait_state("ingest", "disabled")
    r = assert(batch:hand_over_jobs("green", "workers-v1", { tag = "t2", interval = 0.02 }))
    assert.equal(3, #r.jobs)                     -- the two moved there, and the one half-way back
    assert.equal("workers-v1", jobs().ingest.pool)
    assert.equal("active", jobs().ingest.state)
    assert.is_false(jobs().ingest.marked)
    -- another tag's marked job is left alone
    assert(batch:patch_job("ingest", { metadata = { { name = rollout.JOB_MARK, value = "t9|x|workers-v1" } } }))
    r = assert(batch:hand_over_jobs("x", "workers-v1", { tag = "t2" }))
    assert.same({}, r.jobs)
  end)

  it("fails with kind timeout when a job does not get there in time", function()
    control("clock", { timeScale = 1e-9 })
    local ok, msg, err = batch:hand_over_jobs("workers-v1", "green", { tag = "t3", timeout = 0.3, interval = 0.05 })
    control("clock", { timeScale = 100 })
    assert.is_nil(ok)
    assert.equal("timeout", err.kind)
    assert.matches("^job %S+: not moved to green after 0%.3s$", msg)
  end)
end)

-- {===================================================================
-- A runner killed at a point, then resume or abort
-- ====================================================================

local RUNNER = [[
local root, url, opts_json = arg[1], arg[2], arg[3]
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
dofile(root .. "/tests/helper.lua")
local helper = test_helper
local azbatch = require "azbatch"
local rollout = require "azbatch.rollout"
local json = require "azbatch.json"
local o = json.decode(opts_json)
local freeze_at, kill_after = o.freeze_at, o.kill_after
o.freeze_at, o.kill_after = nil, nil
local cred = assert(azbatch.credential.client_secret { tenant = helper.DEV_TENANT, client_id = helper.DEV_CLIENT,
  client_secret = helper.DEV_SECRET, authority = url })
local batch = assert(azbatch.client { endpoint = url, credential = cred })
o.arm = assert(azbatch.arm { endpoint = url, credential = cred })   -- preflight reads stay on loopback
local function say(s) io.stdout:write(s, "\n") io.stdout:flush() end
local function die()
  local pid = io.open("/proc/self/stat"):read("a"):match("^(%d+)")
  say("KILLED")
  os.execute("kill -KILL " .. pid)
end
o.hooks = {
  notify = function(e)
    if e.type == "step" then
      say("START " .. e.step)
      if e.step == freeze_at then
        helper.control({ url = url }, "clock", { timeScale = 1e-9 })   -- hold it here until killed
        say("FROZEN")
      end
    end
  end,
  on_step = function(e)
    say("END " .. e.n .. " " .. e.outcome)
    if e.n == kill_after then die() end
  end,
}
local r = assert(rollout.new(batch, o))
local rep, msg = r:run()
say("RESULT " .. tostring(rep and rep.state or msg))
]]

describe("a rollout runner killed with SIGKILL", function()
  local runner_path

  setup(function()
    emu = helper.emulator("--time-scale 100 --seed 9")
    local cred = credential(emu.url)
    batch = assert(azbatch.client { endpoint = emu.url, credential = cred })
    runner_path = helper.tempfile(RUNNER)
  end)

  teardown(function()
    if batch then batch:close() end
    if emu then emu.stop() end
    if runner_path then os.remove(runner_path) end
  end)

  before_each(function()
    control("reset", {})
    control("clock", { timeScale = 100 })
  end)

  -- Start the runner; kill it when it prints 'word' (after it froze the
  -- clock, or when it killed itself) and, when given, once ready() is true
  -- (the step's write went through, however slow the runner: valgrind).
  -- Returns its output.
  local function run_and_kill(o, word, ready)
    o.timeouts = FAST
    local out = os.tmpname()
    local p = io.popen(("lua5.4 %s %s %s %s >%s 2>&1 & echo $!"):format(helper.shq(runner_path),
      helper.shq(helper.ROOT), helper.shq(emu.url), helper.shq(assert(json.encode(o))), out))
    local pid = assert(tonumber(p:read("l")))
    p:close()
    local text = ""
    for _ = 1, 3000 do                         -- up to 150 s: a runner under valgrind is slow
      local f = io.open(out)
      text = f and f:read("a") or ""
      if f then f:close() end
      if text:find(word, 1, true) or text:find("RESULT", 1, true) then break end
      helper.sleep(0.05)
    end
    if word == "FROZEN" then
      helper.sleep(0.3)                        -- well inside the step now
      for _ = 1, 600 do
        if not ready or ready() then break end
        helper.sleep(0.05)
      end
      os.execute("kill -KILL " .. pid .. " 2>/dev/null")
    end
    -- gone before the test goes on
    for _ = 1, 100 do
      if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
      helper.sleep(0.05)
    end
    os.remove(out)
    control("clock", { timeScale = 100 })
    assert.is_nil(text:find("RESULT", 1, true), text)
    assert.truthy(text:find(word, 1, true), text)
    return text
  end

  local BG = { strategy = "blue-green", pools = { "workers-v1" }, image = V2, id = "ro-k" }
  local INPLACE = { strategy = "in-place", pools = { "kp" }, image = V2, id = "ro-k" }

  local function copy(t, extra)
    local o = {}
    for k, v in pairs(t) do o[k] = v end
    for k, v in pairs(extra) do o[k] = v end
    return o
  end

  local function check_bg_done()
    assert.is_true(gone("workers-v1"))
    local p = pools()
    assert.equal("1.1.0", p["workers-v1-rok"].version)
    assert.equal(2, p["workers-v1-rok"].td)
    for id, j in pairs(jobs()) do
      assert.equal("workers-v1-rok", j.pool, id)
      assert.is_false(j.marked, id)
    end
    assert.equal("active", jobs().ingest.state)
    assert.equal("disabled", jobs().backfill.state)
  end

  local function check_bg_aborted(before, jbefore)
    assert.is_true(gone("workers-v1-rok"))
    assert.same(before, pools())
    local j = jobs()
    for id, was in pairs(jbefore) do
      assert.same({ pool = was.pool, state = was.state, marked = false }, { pool = j[id].pool, state = j[id].state,
        marked = j[id].marked }, id)
    end
    assert.same({ rollouts = {} }, rollout.status(batch))
  end

  local cases = {
    { "after creating the new pool", BG, { kill_after = 2 }, "KILLED" },
    { "during the wait for the new pool", BG, { freeze_at = 3 }, "FROZEN" },
    { "during the job handover", BG, { freeze_at = 6 }, "FROZEN" },
  }
  for _, case in ipairs(cases) do
    it("blue-green, killed " .. case[1] .. ", then resumed to the end", function()
      run_and_kill(copy(case[2], case[3]), case[4])
      local st = rollout.status(batch).rollouts[1]
      assert.equal("ro-k", st.id)
      assert.equal("running", st.state)
      local rep = assert(rollout.resume(batch, "ro-k", { timeouts = FAST }))
      assert.equal("done", rep.state)
      check_bg_done()
    end)

    it("blue-green, killed " .. case[1] .. ", then aborted: back as before", function()
      local before, jbefore = pools(), jobs()
      run_and_kill(copy(case[2], case[3]), case[4])
      local rep = assert(rollout.abort(batch, "ro-k", { timeouts = FAST }))
      assert.equal("aborted", rep.state)
      assert.is_true(rep.rolled_back)
      check_bg_aborted(before, jbefore)
    end)
  end

  it("in place, killed while the pool empties, then resumed to the end", function()
    make_pool("kp", "1.0.0", 3)
    local said = run_and_kill(copy(INPLACE, { freeze_at = 2 }), "FROZEN", function() return pools().kp.td == 0 end)
    assert.equal(0, pools().kp.td, said)
    local rep = assert(rollout.resume(batch, "ro-k", { timeouts = FAST }))
    assert.equal("done", rep.state)
    local p = pools().kp
    assert.same({ "1.1.0", 3 }, { p.version, p.td })
  end)

  it("in place, killed while the pool empties, then aborted: the old image and size", function()
    make_pool("kp", "1.0.0", 3)
    local before = pools()
    run_and_kill(copy(INPLACE, { freeze_at = 2 }), "FROZEN", function() return pools().kp.td == 0 end)
    assert(rollout.abort(batch, "ro-k", { timeouts = FAST }))
    assert.same(before, pools())
    assert(batch:wait_pool("kp", { interval = 0.05, timeout = 60 }))
  end)

  it("in place, killed after the configuration changed, then aborted: the old configuration back", function()
    make_pool("kp", "1.0.0", 2)
    local before = pools()
    run_and_kill(copy(INPLACE, { kill_after = 4 }), "KILLED")
    assert.equal("1.1.0", pools().kp.version)
    assert(rollout.abort(batch, "ro-k", { timeouts = FAST }))
    assert.same(before, pools())
  end)

  it("cannot be aborted once an old pool was deleted; resume finishes it", function()
    run_and_kill(copy(BG, { kill_after = 9 }), "KILLED")
    local ok, msg, err = rollout.abort(batch, "ro-k", { timeouts = FAST })
    assert.is_nil(ok)
    assert.equal("RolloutCommitted", err.code)
    assert.matches("step 9 %(delete workers%-v1%) is done and cannot be undone", msg)
    assert(rollout.resume(batch, "ro-k", { timeouts = FAST }))
    check_bg_done()
  end)

  it("resumed twice in a row: the second finds it done", function()
    run_and_kill(copy(BG, { kill_after = 6 }), "KILLED")
    assert.equal("done", assert(rollout.resume(batch, "ro-k", { timeouts = FAST })).state)
    assert.equal("done", assert(rollout.resume(batch, "ro-k", { timeouts = FAST })).state)
    check_bg_done()
  end)
end)

-- {===================================================================
-- Faults
-- ====================================================================

describe("every policy under injected faults", function()
  setup(function()
    emu = helper.emulator("--time-scale 100 --seed 13")
    local cred = credential(emu.url)
    batch = assert(azbatch.client { endpoint = emu.url, credential = cred,
      retry = { max_attempts = 8, base_delay = 0.02, max_delay = 0.2 } })
    arm = assert(azbatch.arm { endpoint = emu.url, credential = cred })
  end)

  teardown(function()
    if batch then batch:close() end
    if emu then emu.stop() end
  end)

  before_each(function()
    control("faults", { p429 = 0, p503 = 0, drop = 0, dropAfterCommit = 0 })
    control("reset", {})
  end)

  local function faulty() control("faults", { p429 = 0.05, p503 = 0.05, drop = 0.05, dropAfterCommit = 0.1,
    retryAfter = 0, seed = 21 }) end

  local policies = {
    { "blue-green", { strategy = "blue-green", pools = { "fa" } } },
    { "rolling", { strategy = "rolling", pools = { "fa", "fb" }, batch = 1, extra_nodes = 1 } },
    { "in-place", { strategy = "in-place", pools = { "fa" } } },
    { "canary then blue-green", { strategy = "canary", canary = { nodes = 1, ["then"] = "blue-green" },
      pools = { "fa" } } },
  }
  for _, row in ipairs(policies) do
    it(row[1] .. " ends with the right pools, images and jobs", function()
      make_pool("fa", "1.0.0", 2)
      make_pool("fb", "1.0.0", 2)
      make_job("fa-job", "fa", 1)
      local o = row[2]
      o.image, o.id, o.timeouts, o.arm, o.account = V2, "ro-f", FAST, arm, ACCOUNT
      local writes_before = #journal()
      faulty()
      local r = assert(rollout.new(batch, o))
      local rep, msg = r:run()
      control("faults", { p429 = 0, p503 = 0, drop = 0, dropAfterCommit = 0 })
      assert.is_table(rep, msg)
      assert.equal("done", rep.state)
      local p = pools()
      local recovered = 0
      for _, e in ipairs(rep.steps) do if e.recovered then recovered = recovered + 1 end end
      for _, id in ipairs(o.pools) do
        local now_id = o.strategy == "in-place" and id or (id .. "-rof")
        assert.equal("1.1.0", p[now_id].version, now_id)
        assert.equal(2, p[now_id].td)
        if o.strategy ~= "in-place" then assert.is_true(gone(id)) end
      end
      local j = jobs()
      assert.equal(o.strategy == "in-place" and "fa" or "fa-rof", j["fa-job"].pool)
      assert.is_false(j["fa-job"].marked)
      -- one create per new pool applied, however many were sent
      local creates = 0
      for i, e in ipairs(journal()) do
        if i > writes_before and e.method == "POST" and e.path == "/pools" then creates = creates + 1 end
      end
      assert.equal(o.strategy == "in-place" and 0 or #o.pools, creates)
      local stats = control("stats")
      assert.is_true((stats.faults["429"] or 0) + (stats.faults["503"] or 0) + (stats.faults.drop or 0)
        + (stats.faults.dropAfterCommit or 0) > 0)
    end)
  end
end)

-- {===================================================================
-- The examples
-- ====================================================================

describe("the example scripts", function()
  setup(function() emu = helper.emulator("--time-scale 200") end)
  teardown(function() if emu then emu.stop() end end)
  before_each(function() control("reset", {}) end)

  local function run(name)
    local env = ("AZURE_BATCH_ENDPOINT=%s AZURE_TENANT_ID=%s AZURE_CLIENT_ID=%s AZURE_CLIENT_SECRET=%s "
      .. "AZURE_AUTHORITY_HOST=%s AZURE_RESOURCE_MANAGER_ENDPOINT=%s AZURE_BATCH_ACCOUNT_RESOURCE_ID=%s "
      .. "ROLLOUT_POLL=0.05"):format(emu.url, helper.DEV_TENANT, helper.DEV_CLIENT, helper.DEV_SECRET, emu.url,
      emu.url, ACCOUNT)
    return helper.run(("env %s lua5.4 %s"):format(env, helper.shq(helper.ROOT .. "/scripts/examples/" .. name)))
  end

  local examples = {
    { "rollout.lua", 0, "rollout .*: done" },
    { "rollout_canary_blue_green.lua", 0, "jobs now on workers%-v1%-" },
    { "rollout_rolling.lua", 0, "3 pools on 1%.1%.0" },
    { "rollout_in_place.lua", 0, "in%-place upgrade done: render%-ip on 1%.1%.0" },
    { "rollout_canary_fails.lua", 0, "rolled back: render%-cf untouched" },
  }
  for _, ex in ipairs(examples) do
    it(ex[1] .. " runs against the emulator", function()
      local status, out, err = run(ex[1])
      assert.equal(ex[2], status, out .. err)
      assert.matches(ex[3], out)
      assert.is_nil(out:find(helper.DEV_SECRET, 1, true))
      assert.is_nil(err:find(helper.DEV_SECRET, 1, true))
    end)
  end
end)
