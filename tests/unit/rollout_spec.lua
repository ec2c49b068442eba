-- The rollout library offline: its options, the plans of every strategy
-- (and the budget a rolling plan keeps), undo lists, the persisted records,
-- the report and its SVG, and a dry run that calls nothing that writes.
local azbatch = require "azbatch"
local rollout = require "azbatch.rollout"
local planner = require "azbatch.rollout_plan"
local state = require "azbatch.rollout_state"
local report = require "azbatch.rollout_report"
local json = require "azbatch.json"

local GALLERY = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers/"
  .. "Microsoft.Compute/galleries/devgallery/images/ubuntu2204/versions/"

local function client()
  return assert(azbatch.client { endpoint = "http://127.0.0.1:9",
    credential = assert(azbatch.credential.shared_key("devbatch", "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")),
    retry = false })
end

local function opts(extra)
  local t = { strategy = "blue-green", pools = { "render-a" }, image = GALLERY .. "1.1.0" }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

describe("rollout.new", function()
  local c
  setup(function() c = client() end)
  teardown(function() c:close() end)

  local misuse = {
    { "no strategy", { strategy = false }, "option 'strategy' must be one of" },
    { "an unknown strategy", { strategy = "big-bang" }, "option 'strategy' must be one of" },
    { "no pools", { pools = {} }, "option 'pools' must be a non%-empty array" },
    { "a pool that is not a string", { pools = { "a", 2 } }, "pools%[2%] must be a non%-empty string" },
    { "a pool named twice", { pools = { "a", "A" } }, "pools%[2%]: \"A\" is named twice" },
    { "no image", { image = false }, "option 'image' is required" },
    { "a misspelt option", { extra_node = 3 }, "unknown option 'extra_node' %(did you mean 'extra_nodes'%?%)" },
    { "a batch of 0", { batch = 0 }, "option 'batch' must be an integer >= 1" },
    { "a fractional extra_nodes", { extra_nodes = 1.5 }, "option 'extra_nodes' must be an integer >= 1" },
    { "an unknown deallocation", { deallocation = "now" }, "option 'deallocation' must be one of 'requeue'" },
    { "an unknown disable_tasks", { disable_tasks = "kill" }, "option 'disable_tasks' must be one of 'requeue'" },
    { "a handover that is a number", { handover = 1 }, "option 'handover' must be 'jobs', false or a function" },
    { "a hook that is not a function", { hooks = { health = true } }, "hook 'health' must be a function" },
    { "an unknown hook", { hooks = { helth = print } }, "unknown option 'helth'" },
    { "an unknown timeout", { timeouts = { steps = 1 } }, "unknown option 'steps'" },
    { "a negative timeout", { timeouts = { wait = -1 } }, "option 'wait' must be a finite number of seconds" },
    { "canary options without the canary strategy", { canary = { nodes = 1 } }, "option 'canary' goes with" },
    { "an arm that is not an Arm", { arm = {} }, "option 'arm' must be an azbatch.Arm" },
    { "names that are a string", { names = "x" }, "option 'names' must be a table or a function" },
  }
  for _, row in ipairs(misuse) do
    it("raises on " .. row[1], function()
      local o = opts(row[2])
      for k, v in pairs(row[2]) do if v == false then o[k] = nil end end
      assert.error_matches(function() rollout.new(c, o) end, row[3])
    end)
  end

  it("raises on a canary 'then' it does not know", function()
    assert.error_matches(function()
      rollout.new(c, opts { strategy = "canary", canary = { nodes = 1, ["then"] = "canary" } })
    end, "option 'canary.then' must be one of")
  end)

  it("raises when the first argument is not a client", function()
    assert.error_matches(function() rollout.new({}, opts()) end, "bad argument #1 to 'new' %(azbatch.Client expected")
  end)

  it("returns a validation fail for an image it cannot read", function()
    local r, msg, err = rollout.new(c, opts { image = "/subscriptions/x/images" })
    assert.is_nil(r)
    assert.matches("^rollout.image: ", msg)
    assert.equal("validation", err.kind)
    assert.equal("rollout.image", err.field)
  end)

  it("returns a validation fail for an id with a space", function()
    local r, msg, err = rollout.new(c, opts { id = "my rollout" })
    assert.is_nil(r)
    assert.matches("rollout.id", msg)
    assert.equal("rollout.id", err.field)
  end)

  it("refuses spec overrides other than virtualMachineConfiguration in place", function()
    local r, msg, err = rollout.new(c, opts { strategy = "in-place", spec = { vmSize = "Standard_D8s_v5" } })
    assert.is_nil(r)
    assert.matches("in%-place rollout changes only virtualMachineConfiguration", msg)
    assert.equal("rollout.spec.vmSize", err.field)
  end)

  it("refuses a new id that is an old pool's or too long", function()
    local _, _, err = rollout.new(c, opts { pools = { "a", "b" }, names = { a = "b" } })
    assert.equal("rollout.names", err.field)
    local _, msg = rollout.new(c, opts { names = function() return ("x"):rep(65) end })
    assert.matches("at most 64", msg)
  end)

  it("names new pools after the old with the rollout id, dropping an earlier rollout's suffix", function()
    local r = assert(rollout.new(c, opts { id = "ro-0a1b2c3d", pools = { "render-a", "render-b-ro99887766" } }))
    assert.same({ ["render-a"] = "render-a-ro0a1b2c3d", ["render-b-ro99887766"] = "render-b-ro0a1b2c3d" }, r.rec.new)
    local cr = assert(rollout.new(c, opts { id = "ro-0a1b2c3d", strategy = "canary" }))
    assert.equal("render-a-canary-ro0a1b2c3d", cr.rec.canary)
    assert.equal("azbatch.Rollout(ro-0a1b2c3d, canary)", tostring(cr))
  end)

  it("generates an id when none is given, and keeps the image as REST fields", function()
    local r = assert(rollout.new(c, opts()))
    assert.matches("^ro%-%x%x%x%x%x%x%x%x$", r.id)
    assert.same({ virtualMachineImageId = GALLERY .. "1.1.0" }, r.rec.image)
    local m = assert(rollout.new(c, opts { image = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts" }))
    assert.equal("Canonical", m.rec.image.publisher)
    assert.equal("latest", m.rec.image.version)
  end)
end)

-- A record as rollout.new and plan make it.
local function record(strategy, pools, o, orig)
  local rec = { v = 1, id = "ro-1", strategy = strategy, image = { virtualMachineImageId = GALLERY .. "1.1.0" },
    pools = pools, new = {}, o = { extra = 2, dealloc = "taskcompletion", handover = "jobs", disable = "requeue" },
    orig = {}, text = "{}" }
  for k, v in pairs(o or {}) do rec.o[k] = v end
  for _, id in ipairs(pools) do
    rec.new[id] = id .. "-ro1"
    rec.orig[id] = (orig and orig[id]) or { td = 4, tl = 0, vmc = { imageReference = { virtualMachineImageId =
      GALLERY .. "1.0.0" }, nodeAgentSKUId = "batch.node.ubuntu 22.04" } }
  end
  if strategy == "in-place" then rec.new = {} end
  return rec
end

local function live(pools)
  local out = {}
  for _, id in ipairs(pools) do
    out[id] = { id = id, vmSize = "Standard_D2s_v3", targetDedicatedNodes = 4, resizeTimeout = "PT15M",
      startTask = { commandLine = "echo hi" }, metadata = { { name = "team", value = "render" },
        { name = state.STEP_KEY, value = "{}" } }, virtualMachineConfiguration = {
        imageReference = { virtualMachineImageId = GALLERY .. "1.0.0" }, nodeAgentSKUId = "batch.node.ubuntu 22.04" } }
  end
  return out
end

local function calls(steps)
  local out = {}
  for _, st in ipairs(steps) do out[#out + 1] = st.call .. (st.pool and (" " .. st.pool) or "") end
  return out
end

-- Replay a plan's resizes and creates; the largest node total seen.
local function peak(steps, rec)
  local size, top = {}, 0
  for _, id in ipairs(rec.pools) do size[id] = rec.orig[id].td + rec.orig[id].tl end
  local function total()
    local t = 0
    for _, n in pairs(size) do t = t + n end
    return t
  end
  for _, st in ipairs(steps) do
    if st.call == "create_pool" then
      size[st.pool] = (st.body.targetDedicatedNodes or 0) + (st.body.targetLowPriorityNodes or 0)
    elseif st.call == "resize_pool" then
      size[st.pool] = st.body.targetDedicatedNodes + st.body.targetLowPriorityNodes
    elseif st.call == "delete_pool" then
      size[st.pool] = nil
    end
    top = math.max(top, total())
  end
  return top, size
end

describe("plans", function()
  it("blue-green: create at full size, wait, check, hand over, drain, delete, record", function()
    local rec = record("blue-green", { "a" })
    local steps = planner.build(rec, live { "a" })
    assert.same({ "preflight", "create_pool a-ro1", "wait_pool", "health a-ro1", "approve", "handover",
      "resize_pool a", "wait_pool", "delete_pool a", "wait_deleted a", "finish" }, calls(steps))
    local create = steps[2]
    assert.equal(4, create.body.targetDedicatedNodes)
    assert.equal("echo hi", create.body.startTask.commandLine)
    assert.equal(GALLERY .. "1.1.0", create.body.virtualMachineConfiguration.imageReference.virtualMachineImageId)
    -- the user's metadata kept, the old pool's progress not copied, the records added
    local names = {}
    for _, kv in ipairs(create.body.metadata) do names[#names + 1] = kv.name end
    assert.same({ "team", state.KEY, state.POOL_KEY }, names)
    assert.same({ role = "new", of = "a" }, json.decode(create.body.metadata[3].value))
    assert.equal("taskcompletion", steps[7].body.nodeDeallocationOption)
    assert.is_true(steps[9].commit)
    assert.same({ "a-ro1" }, steps[11].pools)
    for i, st in ipairs(steps) do assert.equal(i, st.n) end
  end)

  it("blue-green keep_old: no drain and no delete; both pools recorded", function()
    local steps = planner.build(record("blue-green", { "a" }, { keep_old = true }), live { "a" })
    assert.same({ "preflight", "create_pool a-ro1", "wait_pool", "health a-ro1", "approve", "handover", "finish" },
      calls(steps))
    assert.same({ "a-ro1", "a" }, steps[#steps].pools)
  end)

  it("blue-green without handover has no handover step, and creates with autoscale when the old had it", function()
    local rec = record("blue-green", { "a" }, { handover = false },
      { a = { td = 3, tl = 1, as = { f = "$TargetDedicatedNodes=3;", i = "PT5M" } } })
    local steps = planner.build(rec, live { "a" })
    assert.same({ "preflight", "create_pool a-ro1", "wait_pool", "health a-ro1", "disable_autoscale a",
      "resize_pool a", "wait_pool", "delete_pool a", "wait_deleted a", "finish" }, calls(steps))
    assert.is_true(steps[2].body.enableAutoScale)
    assert.equal("$TargetDedicatedNodes=3;", steps[2].body.autoScaleFormula)
    assert.is_nil(steps[2].body.targetDedicatedNodes)
    -- the create's undo deletes what it made; the autoscale's undo turns it back on
    assert.same({ "delete_pool", "wait_deleted" }, { steps[2].undo[1].call, steps[2].undo[2].call })
    assert.equal("enable_autoscale", steps[5].undo[1].call)
    assert.same({ autoScaleFormula = "$TargetDedicatedNodes=3;", autoScaleEvaluationInterval = "PT5M" },
      steps[5].undo[1].body)
  end)

  it("canary then blue-green grows the canary into the new pool", function()
    local rec = record("canary", { "a", "b" }, { canary = { nodes = 1, ["then"] = "blue-green" } })
    local steps = planner.build(rec, live { "a", "b" })
    assert.same({ "preflight", "create_pool a-ro1", "wait_pool", "health a-ro1", "approve", "resize_pool a-ro1",
      "create_pool b-ro1", "wait_pool", "health b-ro1", "approve", "handover", "handover", "resize_pool a",
      "resize_pool b", "wait_pool", "delete_pool a", "wait_deleted a", "delete_pool b", "wait_deleted b", "finish" },
      calls(steps))
    assert.equal(1, steps[2].body.targetDedicatedNodes)
    assert.is_nil(steps[6].undo)               -- the new pool goes whole on rollback
    -- the create's undo hands jobs back before deleting
    assert.same({ "handover", "delete_pool", "wait_deleted" }, { steps[2].undo[1].call, steps[2].undo[2].call,
      steps[2].undo[3].call })
    assert.same({ "a-ro1", "a" }, { steps[2].undo[1].from, steps[2].undo[1].to })
  end)

  it("canary alone makes a separate pool and deletes it, unless kept", function()
    local rec = record("canary", { "a" }, { canary = { nodes = 2 } })
    rec.canary = "a-canary-ro1"
    assert.same({ "preflight", "create_pool a-canary-ro1", "wait_pool", "health a-canary-ro1", "approve",
      "delete_pool a-canary-ro1", "wait_deleted a-canary-ro1", "finish" }, calls(planner.build(rec, live { "a" })))
    rec.o.canary.keep = true
    local steps = planner.build(rec, live { "a" })
    assert.same({ "preflight", "create_pool a-canary-ro1", "wait_pool", "health a-canary-ro1", "approve", "finish" },
      calls(steps))
    assert.same({ "a-canary-ro1" }, steps[#steps].pools)
    assert.same({ role = "canary", of = "a" }, json.decode(steps[2].body.metadata[3].value))
  end)

  it("in-place: empty, change the configuration, grow back, K pools at a time", function()
    local rec = record("in-place", { "a", "b", "c" }, { batch = 2, handover = false })
    local steps = planner.build(rec, {})
    assert.same({ "preflight", "resize_pool a", "resize_pool b", "wait_empty", "patch_pool a", "patch_pool b",
      "resize_pool a", "resize_pool b", "wait_pool", "health a", "health b", "resize_pool c", "wait_empty",
      "patch_pool c", "resize_pool c", "wait_pool", "health c", "finish" }, calls(steps))
    assert.same({ "a", "b" }, steps[4].pools)
    assert.same({ nodeDeallocationOption = "taskcompletion", targetDedicatedNodes = 0, targetLowPriorityNodes = 0 },
      steps[2].body)
    assert.equal(GALLERY .. "1.1.0", steps[5].body.virtualMachineConfiguration.imageReference.virtualMachineImageId)
    assert.equal("batch.node.ubuntu 22.04", steps[5].body.virtualMachineConfiguration.nodeAgentSKUId)
    -- undoing the patch waits for an empty pool and puts the old configuration back
    assert.same({ "wait_empty", "patch_pool" }, { steps[5].undo[1].call, steps[5].undo[2].call })
    assert.equal(GALLERY .. "1.0.0", steps[5].undo[2].body.virtualMachineConfiguration.imageReference
      .virtualMachineImageId)
    -- undoing the grow empties the pool again; undoing the shrink grows it back
    assert.same({ "resize_pool", "wait_empty" }, { steps[7].undo[1].call, steps[7].undo[2].call })
    assert.equal(4, steps[2].undo[1].body.targetDedicatedNodes)
  end)

  it("in-place with autoscale re-enables the old formula", function()
    local rec = record("in-place", { "a" }, { handover = false },
      { a = { td = 2, tl = 0, as = { f = "$TargetDedicatedNodes=2;", i = "PT5M" }, vmc = {} } })
    assert.same({ "preflight", "disable_autoscale a", "resize_pool a", "wait_empty", "patch_pool a",
      "enable_autoscale a", "wait_pool", "health a", "finish" }, calls(planner.build(rec, {})))
  end)

  it("a new node agent and the spec's vmc fields go into the new configuration", function()
    local rec = record("in-place", { "a" })
    rec.agent = "batch.node.ubuntu 24.04"
    rec.o.spec = { virtualMachineConfiguration = { licenseType = "Windows_Server" } }
    local vmc = planner.new_vmc(rec.orig.a.vmc, rec)
    assert.equal("batch.node.ubuntu 24.04", vmc.nodeAgentSKUId)
    assert.equal("Windows_Server", vmc.licenseType)
    assert.equal(GALLERY .. "1.0.0", rec.orig.a.vmc.imageReference.virtualMachineImageId)   -- not changed
  end)

  local budgets = {
    -- pools (sizes), batch, extra
    { { 4 }, 1, 1 }, { { 4 }, 1, 2 }, { { 5 }, 1, 3 }, { { 4, 3, 2 }, 1, 2 }, { { 4, 3, 2 }, 2, 2 },
    { { 4, 3, 2 }, 3, 6 }, { { 1, 1 }, 2, 1 }, { { 10, 7 }, 2, 4 },
  }
  for _, row in ipairs(budgets) do
    local sizes, k, extra = row[1], row[2], row[3]
    it(("rolling %s, %d at a time, %d extra: never more than the budget, and every new pool full"):format(
      table.concat(sizes, "+"), k, extra), function()
      local pools, orig, before = {}, {}, 0
      for i, n in ipairs(sizes) do
        pools[i] = "p" .. i
        orig[pools[i]] = { td = n, tl = 0 }
        before = before + n
      end
      local rec = record("rolling", pools, { batch = k, extra = extra }, orig)
      local steps = planner.build(rec, live(pools))
      local top, final = peak(steps, rec)
      assert.is_true(top <= before + math.max(extra, math.min(k, #pools)), ("peak %d"):format(top))
      if extra >= math.min(k, #pools) then assert.is_true(top <= before + extra, ("peak %d"):format(top)) end
      for i, id in ipairs(pools) do
        assert.is_nil(final[id])
        assert.equal(sizes[i], final[id .. "-ro1"])
      end
      -- no more than k new pools are being built at once
      local open, most = 0, 0
      for _, st in ipairs(steps) do
        if st.call == "create_pool" then open = open + 1 end
        if st.call == "delete_pool" then open = open - 1 end
        most = math.max(most, open)
      end
      assert.is_true(most <= k)
    end)
  end

  it("rolling with a canary starts the first new pool at the canary's size, and checks it", function()
    local rec = record("canary", { "a" }, { canary = { nodes = 1, ["then"] = "rolling" }, extra = 2 })
    local steps = planner.build(rec, live { "a" })
    assert.equal(1, steps[2].body.targetDedicatedNodes)
    assert.equal("health", steps[4].call)
    assert.equal(4, (select(2, peak(steps, rec)))["a-ro1"])
  end)

  it("rolling low-priority nodes along with dedicated ones", function()
    local rec = record("rolling", { "a" }, { extra = 2 }, { a = { td = 2, tl = 2 } })
    local steps = planner.build(rec, live { "a" })
    local last
    for _, st in ipairs(steps) do
      if st.call == "resize_pool" and st.pool == "a-ro1" then last = st.body end
    end
    assert.same({ 2, 2 }, { last.targetDedicatedNodes, last.targetLowPriorityNodes })
  end)

  it("marks no step after a commit as undoable past it", function()
    local steps = planner.build(record("rolling", { "a", "b" }, { batch = 1 }), live { "a", "b" })
    local first_commit
    for _, st in ipairs(steps) do
      if st.commit and not first_commit then first_commit = st.n end
    end
    assert.equal("delete_pool", steps[first_commit].call)
    assert.equal("a", steps[first_commit].pool)
  end)

  it("leaves bodies out when the old pool cannot be read (status, abort)", function()
    local steps = planner.build(record("blue-green", { "a" }), {})
    assert.is_nil(steps[2].body)
    assert.equal(11, #steps)
  end)
end)

describe("records on the pools", function()
  it("merge keeps the user's items in order and sets, keeps or removes ours", function()
    local pool = { metadata = { { name = "x", value = "1" }, { name = state.KEY, value = "R" },
      { name = "y", value = "2" }, { name = state.STEP_KEY, value = "S" } } }
    assert.same({ { name = "x", value = "1" }, { name = "y", value = "2" }, { name = state.KEY, value = "R" },
      { name = state.STEP_KEY, value = "T" } }, state.merge(pool, { [state.STEP_KEY] = "T" }))
    assert.same({ { name = "x", value = "1" }, { name = "y", value = "2" } },
      state.merge(pool, { [state.KEY] = false, [state.STEP_KEY] = false }))
    assert.equal("[]", json.encode(state.merge({}, {})))
  end)

  it("reads the three records and ignores what is not JSON", function()
    local rec, part, step = state.read { metadata = { { name = state.KEY, value = '{"id":"r"}' },
      { name = state.POOL_KEY, value = "not json" }, { name = state.STEP_KEY, value = '{"n":3}' } } }
    assert.same({ id = "r" }, rec)
    assert.is_nil(part)
    assert.equal(3, step.n)
    assert.is_nil((state.read {}))
  end)

  it("refuses a record over the cap, naming it", function()
    local ok, msg, err = state.encode({ x = ("a"):rep(state.MAX_VALUE) }, "rollout")
    assert.is_nil(ok)
    assert.matches("the rollout record is %d+ bytes, over the 4096", msg)
    assert.same({ kind = "validation", field = "rollout.rollout" }, err)
    assert.equal('{"a":1}', state.encode({ a = 1 }, "x"))
  end)

  it("records every step but read-only ones; those only when last or before a point of no return", function()
    local steps_mod = require "azbatch.rollout_steps"
    local steps = planner.build(record("blue-green", { "a" }), live { "a" })
    -- preflight, create, wait, health, approve, handover, resize, wait, delete (commit), wait_deleted, finish
    local recorded = {}
    for i = 1, #steps do recorded[i] = steps_mod.recorded(steps, i) end
    assert.same({ true, true, false, false, true, true, true, true, true, false, true }, recorded)
    -- a runner that recorded 2 may have been at 5 (the wait and the check went unrecorded)
    assert.equal(5, steps_mod.in_flight(steps, 2))
    assert.equal(8, steps_mod.in_flight(steps, 7))
    assert.equal(11, steps_mod.in_flight(steps, 9))
    assert.equal(11, steps_mod.in_flight(steps, 10))
  end)

  it("writes a pool it wrote last without reading it, and reads it again on a 412", function()
    local sent, etag, held = {}, "e1", { id = "p", state = "active", metadata = { { name = "team", value = "x" } } }
    local fake = {
      get_pool = function(_, id)
        sent[#sent + 1] = "GET " .. id
        return { id = held.id, state = held.state, metadata = held.metadata }, { etag = etag }
      end,
      patch_pool = function(_, id, props, o)
        sent[#sent + 1] = "PATCH " .. id .. " " .. o.if_match
        if o.if_match ~= etag then
          return nil, "ConditionNotMet: stale", { kind = "api", status = 412, code = "ConditionNotMet" }
        end
        held.metadata = props.metadata
        etag = etag .. "+"
        return { etag = etag }
      end,
    }
    local known = {}
    assert.is_true(state.write(fake, "p", { [state.STEP_KEY] = '{"id":"r","n":1,"o":"me"}' }, "me",
      { id = "r", known = known }))
    assert.is_true(state.write(fake, "p", { [state.STEP_KEY] = '{"id":"r","n":2,"o":"me"}' }, "me",
      { id = "r", known = known }))
    assert.same({ "GET p", "PATCH p e1", "PATCH p e1+" }, sent)
    -- someone else writes: the next write's If-Match fails, it reads, checks and writes again
    held.metadata = { { name = "team", value = "y" }, held.metadata[2] }
    etag = "other"
    assert.is_true(state.write(fake, "p", { [state.STEP_KEY] = '{"id":"r","n":3,"o":"me"}' }, "me",
      { id = "r", known = known }))
    assert.same({ "GET p", "PATCH p e1", "PATCH p e1+", "PATCH p e1++", "GET p", "PATCH p other" }, sent)
    assert.same({ { name = "team", value = "y" }, { name = state.STEP_KEY, value = '{"id":"r","n":3,"o":"me"}' } },
      held.metadata)
    -- another runner took it over: the re-read finds its token and stops
    held.metadata = { { name = state.STEP_KEY, value = '{"id":"r","n":3,"o":"them"}' } }
    etag = "theirs"
    local ok, msg, err = state.write(fake, "p", { [state.STEP_KEY] = '{"id":"r","n":4,"o":"me"}' }, "me",
      { id = "r", known = known })
    assert.is_nil(ok)
    assert.equal("RolloutBusy", err.code)
    assert.matches("run by another runner %(them%)", msg)
  end)

  it("orders progress: rolling back after running, then by steps done", function()
    assert.is_true(state.later({ st = "running", n = 5 }, { st = "running", n = 4 }))
    assert.is_true(state.later({ st = "rolling_back", b = 0 }, { st = "running", n = 9 }))
    assert.is_true(state.later({ st = "rolling_back", b = 2 }, { st = "rolling_back", b = 1 }))
    assert.is_true(state.later({ st = "done", n = 1 }, { st = "rolling_back", b = 7 }))
    assert.is_false(state.later({ st = "running", n = 4 }, { st = "running", n = 4, t = 1 }))
  end)
end)

describe("the report", function()
  local rep = { id = "ro-1", strategy = "rolling", state = "done", started = 100,
    pools = { "a", "a-ro1" },
    samples = { { t = 100, pool = "a", counts = { idle = 3 } }, { t = 110, pool = "a", counts = { idle = 2,
      leavingpool = 1 } }, { t = 110, pool = "a-ro1", counts = { creating = 1 } },
      { t = 120, pool = "a-ro1", counts = { idle = 1, unusable = 1 } } },
    steps = { { n = 1, name = "create <a-ro1> & co", start = 100, ["end"] = 101, outcome = "ok" },
      { n = 2, name = "wait", start = 101, ["end"] = 120, outcome = "failed", message = "NodesUnusable" } },
    undo = { { n = -1, name = "delete a-ro1", start = 120, ["end"] = 125, outcome = "ok" } } }

  it("draws every pool, the legend, the steps and the time axis in SVG", function()
    local svg = rollout.svg(rep)
    assert.matches("^<svg xmlns=\"http://www.w3.org/2000/svg\"", svg)
    assert.matches("</svg>\n$", svg)
    assert.matches(">a</text>", svg)
    assert.matches(">a%-ro1</text>", svg)
    for _, g in ipairs { "ready", "starting", "leaving", "failed" } do assert.matches(">" .. g .. "</text>", svg) end
    assert.matches("create &lt;a%-ro1&gt; &amp; co", svg)     -- escaped
    assert.matches(">u1</text>", svg)                          -- the undo step's mark
    assert.matches(">0s</text>", svg)
    local _, polygons = svg:gsub("<polygon", "")
    assert.equal(8, polygons)                                  -- 4 groups x 2 pools
    assert.is_nil(svg:find("nan", 1, true))
  end)

  it("labels steps that end together once: a run as a range, others as a list", function()
    local steps = {}
    for n = 3, 6 do steps[#steps + 1] = { n = n, name = "s" .. n, start = 100, ["end"] = 102, outcome = "ok" } end
    steps[#steps + 1] = { n = 9, name = "s9", start = 102, ["end"] = 150, outcome = "ok" }
    steps[#steps + 1] = { n = 11, name = "s11", start = 150, ["end"] = 150, outcome = "failed" }
    local svg = rollout.svg { id = "r", strategy = "rolling", started = 100, pools = { "a" }, steps = steps,
      samples = { { t = 100, pool = "a", counts = { idle = 1 } } } }
    assert.matches(">3%-6</text>", svg)
    assert.matches('fill="#d0342c">9,11</text>', svg)          -- a failed step colours its label
    for n = 3, 6 do assert.is_nil(svg:find(">" .. n .. "</text>", 1, true), n) end
  end)

  it("draws a pool with no samples with a note, not a failure", function()
    local svg = rollout.svg { id = "r", strategy = "canary", pools = { "x" }, steps = {}, samples = {} }
    assert.matches("no node counts recorded", svg)
  end)

  it("reads the stacked areas' heights from the samples", function()
    -- a's ready area at t=100 is 3 nodes tall: the panel's top
    local svg = rollout.svg(rep)
    assert.matches('points="70,98 [%d.]+,98 ', svg)
  end)

  it("prints one line per step, the rollback after", function()
    local text = rollout.text(rep)
    assert.matches("^rollout ro%-1 %(rolling%): done\n", text)
    assert.matches("\n   2  failed%s+1%.0s%s+20%.0s  wait  %(NodesUnusable%)\n", text)
    assert.matches("  rollback:\n  %-1  ok", text)
    -- rolled back once in the header, whether its state says it or not
    local rb = setmetatable({ state = "rolled_back", rolled_back = true }, { __index = rep })
    assert.matches("^rollout ro%-1 %(rolling%): rolled_back\n", rollout.text(rb))
    rb.state = "aborted"
    assert.matches("^rollout ro%-1 %(rolling%): aborted, rolled back\n", rollout.text(rb))
  end)

  it("counts nodes from a node-counts row, dedicated and low-priority together", function()
    assert.same({ idle = 3, starttaskfailed = 1, leavingpool = 2, waitingforstarttask = 1 },
      report.counts_of { dedicated = { idle = 2, startTaskFailed = 1, leavingPool = 2, running = 0, total = 5 },
        lowPriority = { idle = 1, waitingForStartTask = 1, total = 2 } })
  end)
end)

describe("a dry run", function()
  -- a client whose reads are canned and whose writes raise
  local function fake()
    local c = client()
    local pool = live({ "render-a" })["render-a"]
    pool.state = "active"
    function c.get_pool(_, id)
      if id == "render-a" then return pool end
      return nil, "PoolNotFound", { kind = "api", code = "PoolNotFound" }
    end
    function c.pool_exists() return false end
    for _, m in ipairs { "create_pool", "delete_pool", "resize_pool", "patch_pool", "enable_autoscale",
      "disable_autoscale", "stop_resize_pool", "disable_job", "enable_job", "patch_job" } do
      c[m] = function() error("dry run called " .. m) end
    end
    -- preflight's reads find nothing (offline); a write raises
    function c.request(_, method, path)
      if method == "GET" or method == "HEAD" then
        return nil, "offline", { kind = "transport", sent = false }
      end
      error("dry run sent " .. method .. " " .. tostring(path))
    end
    return c
  end

  it("prints each call in order with its body and sends nothing", function()
    local c = fake()
    local r = assert(rollout.new(c, opts { id = "ro-dry", preflight = false }))
    local lines = {}
    local steps = assert(r:dry_run(function(l) lines[#lines + 1] = l end))
    assert.matches("^rollout ro%-dry: blue%-green of render%-a to /subscriptions/.+ %(11 steps, dry run", lines[1])
    assert.matches("^  2%. create_pool +POST /pools +render%-a%-rodry$", lines[3])
    local body = assert(json.decode(lines[4]:match("^%s+(.*)$")))
    assert.equal("render-a-rodry", body.id)
    assert.same(steps[2].body.virtualMachineConfiguration, body.virtualMachineConfiguration)
    local text = table.concat(lines, "\n")
    assert.matches("resize_pool +POST /pools/render%-a/resize", text)
    assert.matches('{"nodeDeallocationOption":"taskcompletion","targetDedicatedNodes":0', text)
    assert.matches("delete_pool +DELETE /pools/render%-a", text)
    assert.matches("wait_pool .* %(up to 1800s%)", text)
    c:close()
  end)

  it("writes to a file handle too, and says when the rules cannot run", function()
    local c = fake()
    local r = assert(rollout.new(c, opts { id = "ro-dry", strategy = "in-place" }))
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    assert(r:dry_run(f))
    f:close()
    local text = assert(io.open(path)):read("a")
    os.remove(path)
    assert.matches("patch_pool +PATCH /pools/render%-a", text)
    -- preflight ran on the pool as it will be, and says what it could not read
    assert.matches("\n  warning CHECK_SKIPPED %(render%-a%): ", text)
    c:close()
  end)

  it("fails, sending nothing, when an old pool is missing or in another rollout", function()
    local c = fake()
    local r = assert(rollout.new(c, opts { pools = { "nope" } }))
    local ok, msg, err = r:plan()
    assert.is_nil(ok)
    assert.equal("rollout: pool nope does not exist", msg)
    assert.equal("PoolNotFound", err.code)
    local pool = c:get_pool("render-a")
    pool.metadata = { { name = state.STEP_KEY, value = '{"id":"ro-other","st":"running","n":2}' } }
    ok, msg, err = assert(rollout.new(c, opts())):plan()
    assert.is_nil(ok)
    assert.matches("is in rollout ro%-other %(running%)", msg)
    assert.equal("RolloutInProgress", err.code)
    c:close()
  end)
end)
