--- Image rollouts: canary, blue-green, rolling and in-place, as plans of
-- the client's primitives with hooks at every step. Each rollout runs
-- preflight on what it will create, can print its plan without acting,
-- bounds each step in time, rolls back what it created and restores what
-- it changed when a step fails, and keeps its plan and progress in the
-- pools' metadata, so that a killed rollout can be resumed or aborted from
-- the service's state alone (rollout_state.lua). This file makes and
-- plans a rollout and carries one on from the service's records. Plans:
-- rollout_plan.lua; running them, with rollback: rollout_run.lua; each
-- step's call: rollout_steps.lua; the report and its SVG timeline:
-- rollout_report.lua.
local core = require "azbatch.core"
local json = require "azbatch.json"
local client = require "azbatch.client"
local check = require "azbatch.check"
local parallel = require "azbatch.parallel"
local state = require "azbatch.rollout_state"
local planner = require "azbatch.rollout_plan"
local report_mod = require "azbatch.rollout_report"
local steps_mod = require "azbatch.rollout_steps"
local runner = require "azbatch.rollout_run"
require "azbatch.pool"
require "azbatch.wait"
require "azbatch.preflight"
require "azbatch.jobs"

local set = check.set
-- The fail triple of rollout_steps.lua, as a local function: the code map
-- (tests/unit/troubleshooting_spec.lua) reads each call's code in this file.
local function fail(msg, code, extra) return steps_mod.fail(msg, code, extra) end

local M = {}

local Rollout = {}
Rollout.__index = Rollout
Rollout.__name = "azbatch.Rollout"
M.Rollout = Rollout

M.STRATEGIES = set { "canary", "blue-green", "rolling", "in-place" }
local THEN = set { "blue-green", "rolling", "in-place" }
local DEALLOCATION = set { "requeue", "terminate", "taskcompletion", "retaineddata" }
local DISABLE = set { "requeue", "terminate", "wait" }
local OPTIONS = set { "strategy", "pools", "image", "node_agent", "spec", "canary", "batch", "extra_nodes",
  "keep_old", "deallocation", "handover", "disable_tasks", "timeouts", "hooks", "id", "preflight", "arm", "names",
  "account" }
local CANARY_OPTS = set { "nodes", "then", "keep" }
local TIMEOUT_OPTS = set { "step", "wait", "poll" }
local HOOK_OPTS = set { "health", "approve", "on_step", "notify", "on_progress" }
local RESUME_OPTS = set { "hooks", "handover", "timeouts", "arm", "account" }
-- the metadata item on a job in motion (client:hand_over_jobs)
M.JOB_MARK = require("azbatch.jobs").MARK

local function bad(fname, msg) error(("bad argument #2 to '%s' (%s)"):format(fname, msg), 4) end

local function check_int(v, name, min, fname)
  if v ~= nil and (math.type(v) ~= "integer" or v < min) then
    bad(fname, ("option '%s' must be an integer >= %d"):format(name, min))
  end
  return v
end

local function check_enum(v, name, allowed, fname)
  if v ~= nil and not allowed[v] then
    local names = {}
    for k in pairs(allowed) do names[#names + 1] = "'" .. k .. "'" end
    table.sort(names)
    bad(fname, ("option '%s' must be one of %s"):format(name, table.concat(names, ", ")))
  end
  return v
end

local function check_hooks(hooks, fname)
  hooks = check.options(hooks, 2, fname, HOOK_OPTS)
  for k, v in pairs(hooks) do
    if type(v) ~= "function" then bad(fname, ("hook '%s' must be a function"):format(k)) end
  end
  return hooks
end

local function check_timeouts(t, fname)
  t = check.options(t, 2, fname, TIMEOUT_OPTS)
  for _, k in ipairs { "step", "wait", "poll" } do check.seconds(t[k], k, fname) end
  return { step = t.step or 3600, wait = t.wait or 1800, poll = t.poll or 2 }
end

local function check_client(c, fname)
  if getmetatable(c) ~= client.Client then
    error(("bad argument #1 to '%s' (azbatch.Client expected, got %s)"):format(fname, type(c)), 3)
  end
  client.check_open(c, 2)
end


-- The pool id with a rollout's suffix (a previous rollout's suffix dropped).
local function new_id(old, rid, names, suffix)
  if type(names) == "table" and names[old] then return names[old] end
  if type(names) == "function" then return names(old, rid) end
  local base = old:gsub("%-ro%x%x%x%x%x%x%x%x$", ""):gsub("%-canary$", "")
  return base .. (suffix or "") .. "-" .. rid:gsub("[^%w]", "")
end

--- rollout.new(client, opts) -> Rollout | fail. Misuse (a wrong type, an
-- unknown option) raises; an image or ids the service would refuse fail.
function M.new(c, opts)
  check_client(c, "new")
  opts = check.options(opts, 2, "new", OPTIONS)
  local F = "new"
  if not M.STRATEGIES[opts.strategy] then
    bad(F, "option 'strategy' must be one of 'canary', 'blue-green', 'rolling', 'in-place'")
  end
  if type(opts.pools) ~= "table" or #opts.pools == 0 then bad(F, "option 'pools' must be a non-empty array of ids") end
  local seen = {}
  for i, id in ipairs(opts.pools) do
    if type(id) ~= "string" or id == "" then bad(F, ("pools[%d] must be a non-empty string"):format(i)) end
    if seen[id:lower()] then bad(F, ("pools[%d]: %q is named twice"):format(i, id)) end
    seen[id:lower()] = true
  end
  if opts.image == nil then bad(F, "option 'image' is required") end
  check.type(opts.node_agent, "string", "node_agent", F)
  check.type(opts.spec, "table", "spec", F)
  check.type(opts.keep_old, "boolean", "keep_old", F)
  check.type(opts.preflight, "boolean", "preflight", F)
  check.type(opts.id, "string", "id", F)
  check.type(opts.account, "string", "account", F)
  check_int(opts.batch, "batch", 1, F)
  check_int(opts.extra_nodes, "extra_nodes", 1, F)
  check_enum(opts.deallocation, "deallocation", DEALLOCATION, F)
  check_enum(opts.disable_tasks, "disable_tasks", DISABLE, F)
  local h = opts.handover
  if not (h == nil or h == false or h == "jobs" or type(h) == "function") then
    bad(F, "option 'handover' must be 'jobs', false or a function")
  end
  if opts.names ~= nil and type(opts.names) ~= "table" and type(opts.names) ~= "function" then
    bad(F, "option 'names' must be a table or a function")
  end
  if opts.arm ~= nil and getmetatable(opts.arm) ~= client.Arm then bad(F, "option 'arm' must be an azbatch.Arm") end
  local canary
  if opts.strategy == "canary" then
    canary = check.options(opts.canary, 2, F, CANARY_OPTS)
    check_int(canary.nodes, "canary.nodes", 1, F)
    check_enum(canary["then"], "canary.then", THEN, F)
    check.type(canary.keep, "boolean", "canary.keep", F)
    canary = { nodes = canary.nodes or 1, ["then"] = canary["then"], keep = canary.keep }
  elseif opts.canary ~= nil then
    bad(F, "option 'canary' goes with strategy 'canary' (canary = {nodes=, then='" .. opts.strategy .. "'})")
  end
  local hooks = check_hooks(opts.hooks, F)
  local timeouts = check_timeouts(opts.timeouts, F)
  local rid = opts.id or ("ro-" .. core.uuid():gsub("-", ""):sub(1, 8))
  if not rid:match("^[%w_-]+$") or #rid > 40 then
    return nil, "rollout.id: letters, digits, '-' and '_' only, at most 40", { kind = "validation",
      field = "rollout.id" }
  end
  -- data: what the service would refuse is a fail, before anything is read
  local ref, why, err = core.image_reference(opts.image)
  if not ref then
    err.field = "rollout.image"
    return nil, "rollout.image: " .. tostring(why), err
  end
  local image = json.decode(assert(json.encode(ref)))
  local inplace = opts.strategy == "in-place" or (canary and canary["then"] == "in-place")
  if inplace then
    for k in pairs(opts.spec or {}) do
      if k ~= "virtualMachineConfiguration" then
        return nil, ("rollout.spec.%s: an in-place rollout changes only virtualMachineConfiguration"):format(k),
          { kind = "validation", field = "rollout.spec." .. k }
      end
    end
  end
  local new, canary_id = {}, nil
  if opts.strategy ~= "in-place" and not (canary and (canary["then"] == nil or canary["then"] == "in-place")) then
    for _, id in ipairs(opts.pools) do new[id] = new_id(id, rid, opts.names) end
  end
  if canary and (canary["then"] == nil or canary["then"] == "in-place") then
    canary_id = new_id(opts.pools[1], rid, nil, "-canary")
  end
  for old, nid in pairs(new) do
    if type(nid) ~= "string" or not nid:match("^[%w_-]+$") or #nid > 64 or seen[nid:lower()] then
      return nil, ("rollout.names: the new id of %s (%s) must be a new pool id of at most 64 letters, digits, '-' "
        .. "or '_'"):format(old, tostring(nid)), { kind = "validation", field = "rollout.names" }
    end
  end
  if canary_id and #canary_id > 64 then
    return nil, "rollout.id: the canary pool's id would be over 64 characters", { kind = "validation",
      field = "rollout.id" }
  end
  local self = setmetatable({
    client = c, id = rid, strategy = opts.strategy, pools = { table.unpack(opts.pools) }, hooks = hooks,
    timeouts = timeouts, arm = opts.arm, account = opts.account, run_preflight = opts.preflight ~= false,
    handover_fn = type(h) == "function" and h or nil,
    rec = { v = state.VERSION, id = rid, strategy = opts.strategy, image = image, agent = opts.node_agent,
      pools = { table.unpack(opts.pools) }, new = new, canary = canary_id,
      o = { canary = canary, batch = opts.batch, extra = opts.extra_nodes or 2, keep_old = opts.keep_old or nil,
        dealloc = opts.deallocation or "taskcompletion",
        handover = (h == nil or h == "jobs") and "jobs" or (h and "custom") or false,
        disable = opts.disable_tasks or "requeue", spec = opts.spec } },
    samples = {}, log = {}, undo_log = {}, live = {}, findings = {}, since = {}, known = {},
  }, Rollout)
  if inplace then self.rec.o.handover = false end
  return self
end

function Rollout:__tostring()
  return ("azbatch.Rollout(%s, %s)"):format(self.id, self.strategy)
end

-- {===================================================================
-- Reading the pools and planning
-- ====================================================================

-- Autoscale settings of a pool as stored, or nil.
local function autoscale_of(p)
  if not p.enableAutoScale then return nil end
  return { f = p.autoScaleFormula, i = p.autoScaleEvaluationInterval }
end

-- The old pools as they are now, or fail.
local function read_pools(self, ids)
  local fns = {}
  for i, id in ipairs(ids) do fns[i] = function() return self.client:get_pool(id) end end
  local results = parallel.run(fns)
  local live = {}
  for i, id in ipairs(ids) do
    local p, why, err = results[i][1], results[i][2], results[i][3]
    if not p then
      if err and err.code ~= "PoolNotFound" then return nil, why, err end
    else
      live[id] = p
      -- what the first record write needs to know (If-Match says if it changed since)
      state.remember(self.known, id, type(why) == "table" and why.etag or nil, p.state, p.metadata)
    end
  end
  return live
end

-- Quota facts for the budget: from preflight facts when the rules ran.
local function quota_of(facts)
  local acct = type(facts) == "table" and facts.account
  local props = type(acct) == "table" and acct.properties
  local quota = type(props) == "table" and math.tointeger(props.dedicatedCoreQuota)
  local used = facts and facts.usage and math.tointeger(facts.usage.dedicatedCores)
  local cores
  for _, cap in ipairs(facts and facts.vm_size and facts.vm_size.capabilities or {}) do
    if cap.name == "vCPUs" then cores = math.tointeger(tonumber(cap.value)) end
  end
  if quota and used and cores and cores > 0 then return { quota = quota, used = used, cores = cores } end
end

-- Preflight of one body: the result, or a warning finding when the rules
-- cannot run here.
local function preflight_one(self, body)
  if not core.preflight then
    return nil, { severity = "warning", code = "PREFLIGHT_UNAVAILABLE", field = body.id,
      message = "the preflight rules are not in this build of azbatch; only the spec was validated" }
  end
  -- one cache for the rollout: ARM is asked once per image, not once per pool
  self.preflight_cache = self.preflight_cache or {}
  local r, why = self.client:preflight(body, { arm = self.arm, account = self.account, cache = self.preflight_cache })
  if not r then
    return nil, { severity = "warning", code = "CHECK_SKIPPED", field = body.id, message = tostring(why) }
  end
  return r
end


--- r:plan() -> steps | fail. Reads the old pools, chooses the node agent
-- when asked ("auto"), runs preflight on every pool the rollout creates or
-- changes, bounds a rolling budget by the core quota, and returns the steps
-- (each {n, name, call, pool|pools, method, path, body, undo}). Sends no write.
function Rollout:plan()
  if self.steps then return self.steps end
  local c, rec = self.client, self.rec
  local live, why, err = read_pools(self, rec.pools)
  if not live then return nil, why, err end
  rec.orig, self.vmc = {}, {}
  for _, id in ipairs(rec.pools) do
    local p = live[id]
    if not p then return fail(("rollout: pool %s does not exist"):format(id), "PoolNotFound", { pool = id }) end
    local other, _, prog = state.read(p)
    if prog and state.ACTIVE[prog.st] and prog.id ~= rec.id then
      return fail(("rollout: pool %s is in rollout %s (%s); resume or abort it first"):format(id,
        tostring(prog.id), tostring(prog.st)), "RolloutInProgress", { pool = id, rollout = prog.id })
    end
    if other and prog and prog.id == rec.id then
      return fail(("rollout: %s already holds rollout %s; use rollout.resume"):format(id, rec.id), "RolloutExists")
    end
    if p.state ~= "active" then
      return fail(("rollout: pool %s is %s"):format(id, tostring(p.state)), "PoolNotActive", { pool = id })
    end
    rec.orig[id] = { td = math.tointeger(p.targetDedicatedNodes) or 0, tl = math.tointeger(p.targetLowPriorityNodes)
      or 0, as = autoscale_of(p) }
    self.vmc[id] = p.virtualMachineConfiguration
  end
  for _, nid in pairs(rec.new) do
    local exists = c:pool_exists(nid)
    if exists then
      return fail(("rollout: the new pool's id %s is taken"):format(nid), "PoolExists", { pool = nid })
    end
  end
  if rec.agent == "auto" then
    if not core.choose_node_agent then
      return fail("rollout.node_agent: 'auto' needs the node agent chooser, which is not in this build; name the "
        .. "node agent SKU", "NodeAgentUnknown", { kind = "validation", field = "rollout.node_agent" })
    end
    local sku, swhy, serr = c:choose_node_agent(rec.image, { arm = self.arm })
    if not sku then return nil, "rollout.node_agent: " .. tostring(swhy), serr end
    rec.agent = sku
  end
  local text, twhy, terr = state.record_text(rec)
  if not text then return nil, twhy, terr end
  rec.text = text
  for _, id in ipairs(rec.pools) do rec.orig[id].vmc = self.vmc[id] end
  local steps = planner.build(rec, live)
  -- every body valid, and preflight on each
  local list = planner.bodies(rec, steps, live)
  for _, b in ipairs(list) do
    local ok, vwhy, verr = core.validate("pool", b)
    if not ok then return nil, ("rollout: the body of %s: %s"):format(b.id, vwhy), verr end
  end
  local budget, cores_of = nil, {}
  if self.run_preflight then
    for _, b in ipairs(list) do
      local r, warn = preflight_one(self, b)
      if r then
        for _, f in ipairs(r.findings) do
          f.pool = b.id
          self.findings[#self.findings + 1] = f
        end
        local q = quota_of(r.facts)
        budget = budget or q
        cores_of[b.id] = q and q.cores
      else
        self.findings[#self.findings + 1] = warn
      end
    end
  end
  local rolling = self.strategy == "rolling" or (rec.o.canary and rec.o.canary["then"] == "rolling")
  local side_by_side = self.strategy == "blue-green" or (rec.o.canary and rec.o.canary["then"] == "blue-green")
  if budget then
    self.quota = budget
    if rolling then
      local cores = 0
      for _, n in pairs(cores_of) do cores = math.max(cores, n) end
      local free = (budget.quota - budget.used) // cores
      if free < 1 then
        return fail(("rollout: no dedicated core quota left for a rolling upgrade (%d of %d cores used, %d per "
          .. "node)"):format(budget.used, budget.quota, cores), "AccountCoreQuotaReached", { quota = budget })
      end
      if free < rec.o.extra then
        self.findings[#self.findings + 1] = { severity = "warning", code = "ROLLOUT_BUDGET_CUT",
          message = ("extra_nodes %d cut to %d by the account's free dedicated cores"):format(rec.o.extra, free) }
        rec.o.extra = free
        text, twhy, terr = state.record_text(rec)
        if not text then return nil, twhy, terr end
        rec.text = text
        steps = planner.build(rec, live)
      end
    elseif side_by_side then
      -- every new pool at full size beside the old ones
      local need = 0
      for _, id in ipairs(rec.pools) do need = need + rec.orig[id].td * (cores_of[rec.new[id]] or 0) end
      if budget.used + need > budget.quota then
        return fail(("rollout: the new pools need %d dedicated cores beside the old ones, and %d of the account's "
          .. "%d are free (try strategy 'rolling', which needs only extra_nodes more)"):format(need,
          budget.quota - budget.used, budget.quota), "AccountCoreQuotaReached", { quota = budget, need = need })
      end
    end
  elseif self.run_preflight and rolling then
    self.findings[#self.findings + 1] = { severity = "warning", code = "ROLLOUT_QUOTA_UNKNOWN",
      message = "the account's core quota could not be read: only extra_nodes bounds the rollout" }
  end
  self.steps, self.live_pools = steps, live
  return steps
end

--- r:dry_run([out]) -> steps | fail. Prints the plan (each call in order,
-- with its JSON body) to 'out' (a file, or a function taking a line;
-- default io.stdout) and the preflight findings. Sends no write.
function Rollout:dry_run(out)
  local steps, why, err = self:plan()
  if not steps then return nil, why, err end
  local emit
  if type(out) == "function" then
    emit = out
  else
    local f = out or io.stdout
    emit = function(line) f:write(line, "\n") end
  end
  emit(("rollout %s: %s of %s to %s (%d steps, dry run: nothing is sent)"):format(self.id, self.strategy,
    table.concat(self.pools, ", "), self.rec.image.virtualMachineImageId or self.rec.image.sharedGalleryImageId
    or self.rec.image.communityGalleryImageId or table.concat({ self.rec.image.publisher or "", self.rec.image.offer
    or "", self.rec.image.sku or "", self.rec.image.version or "" }, ":"), #steps))
  for _, f in ipairs(self.findings) do
    emit(("  %s %s%s: %s"):format(f.severity, f.code, f.pool and (" (" .. f.pool .. ")") or "", f.message))
  end
  for _, st in ipairs(steps) do
    emit(report_mod.plan_line(st, self.timeouts))
    if st.body then emit("       " .. assert(json.encode(st.body))) end
  end
  return steps
end

-- {===================================================================
-- The report
-- ====================================================================

--- r:report() -> {id, strategy, state, rolled_back, started, ended, steps =
-- {{n, name, call, pool, start, ["end"], outcome, message}...}, undo = {...},
-- pools, samples, findings, text}
function Rollout:report()
  local pools = {}
  for _, id in ipairs(self.rec.pools) do pools[#pools + 1] = id end
  for _, id in ipairs(self.rec.pools) do
    if self.rec.new[id] then pools[#pools + 1] = self.rec.new[id] end
  end
  if self.rec.canary then pools[#pools + 1] = self.rec.canary end
  local last = self.rec.t0 or 0
  for _, list in ipairs { self.log, self.undo_log } do
    for _, e in ipairs(list) do last = math.max(last, e["end"] or e.start) end
  end
  local r = { id = self.id, strategy = self.strategy, state = self.state, rolled_back = self.rolled_back or false,
    started = self.rec.t0, ended = last, steps = self.log, undo = self.undo_log, pools = pools,
    samples = self.samples, findings = self.findings, planned = self.steps and #self.steps or nil }
  r.text = report_mod.text(r)
  return r
end

--- r:timeline_svg() -> string: the SVG timeline of the run so far.
function Rollout:timeline_svg()
  return report_mod.svg(self:report())
end

M.svg = report_mod.svg
M.text = report_mod.text

-- Running: progress, steps, rollback (rollout_run.lua)
for name, fn in pairs(runner) do Rollout[name] = fn end

-- {===================================================================
-- Resume, abort, status
-- ====================================================================

-- A Rollout rebuilt from the service's records of rollout 'id', or fail.
local function load(c, id, opts, fname)
  local all_r, why, err = state.scan(c)
  if not all_r then return nil, why, err end
  local found = all_r[id]
  if not found or not found.record then
    return fail(("rollout %s: no pool holds it"):format(id), "RolloutNotFound")
  end
  local rec = found.record
  if rec.v ~= state.VERSION then
    return fail(("rollout %s: record version %s is not %d"):format(id, tostring(rec.v), state.VERSION),
      "RolloutVersion")
  end
  local self = setmetatable({ client = c, id = id, strategy = rec.strategy, pools = rec.pools, rec = rec,
    hooks = check_hooks(opts.hooks, fname), timeouts = check_timeouts(opts.timeouts, fname), arm = opts.arm,
    account = opts.account, handover_fn = opts.handover, samples = {}, log = {}, undo_log = {}, live = {},
    findings = {}, vmc = {}, since = {}, known = {} },
    Rollout)
  rec.orig = rec.orig or {}
  for pid, info in pairs(found.pools) do
    if info.state ~= "deleting" then self.live[pid] = true end
    if info.part and info.part.role == "old" and info.part.vmc then self.vmc[pid] = info.part.vmc end
  end
  for _, pid in ipairs(rec.pools) do
    rec.orig[pid] = rec.orig[pid] or {}
    rec.orig[pid].vmc = self.vmc[pid]
  end
  local live
  live, why, err = read_pools(self, rec.pools)
  if not live then return nil, why, err end
  rec.text = assert(state.record_text(rec))
  self.steps = planner.build(rec, live)
  local p = found.step or { st = "running", n = 0 }
  self.done, self.undone, self.failed_at, self.state = p.n or 0, p.b, p.f, p.st
  self.prior = p
  -- earlier runners' step log, back in absolute time
  self.log, self.undo_log = state.read_log(p.log, rec.t0, self.steps)
  if rec.o.handover == "custom" and type(opts.handover) ~= "function" then
    return fail(("rollout %s: its handover is a function; pass it again (handover = ...)"):format(id),
      "HandoverMissing", { kind = "validation" })
  end
  self.owner = state.token()
  self.taking = true
  self.started = true
  return self
end

--- rollout.resume(client, id [, {hooks=, handover=, timeouts=, arm=}]) ->
-- report | fail: carries a rollout on from where the service says it is
-- (forward, or on with its rollback).
function M.resume(c, id, opts)
  check_client(c, "resume")
  check.id(id, 2, "resume")
  opts = check.options(opts, 3, "resume", RESUME_OPTS)
  local self, why, err = load(c, id, opts, "resume")
  if not self then return nil, why, err end
  if self.state == "done" then return self:report() end
  local ok
  if self.state == "rolling_back" then
    ok, why, err = self:rollback(self.failed_at or steps_mod.in_flight(self.steps, self.done), "resumed rollback")
    if self.rolled_back then return self:report() end
  else
    self.state = "running"
    ok, why, err = self:save("running")
    if ok then ok, why, err = self:forward(self.done) end
  end
  if not ok then
    err = err or {}
    err.report = self:report()
    return nil, why, err
  end
  return self:report()
end

--- rollout.abort(client, id [, {hooks=, handover=, timeouts=}]) -> report |
-- fail: returns the pools to their state before the rollout (pools it made
-- deleted, jobs handed back, changed pools restored, records cleared).
-- Fails with code "RolloutCommitted" once an old pool has been deleted.
function M.abort(c, id, opts)
  check_client(c, "abort")
  check.id(id, 2, "abort")
  opts = check.options(opts, 3, "abort", RESUME_OPTS)
  local self, why, err = load(c, id, opts, "abort")
  if not self then return nil, why, err end
  if self.state == "done" then
    return fail(("rollout %s: finished; there is nothing to abort"):format(id), "RolloutFinished")
  end
  local cm = planner.committed(self.steps, self.done)
  local f = self.state == "rolling_back" and self.failed_at or steps_mod.in_flight(self.steps, self.done)
  local nxt = self.state ~= "rolling_back" and self.steps[f]
  if not cm and nxt and nxt.commit then
    -- the runner may have died between that step and writing it down (read-only
    -- steps before it are not written down)
    local p, _, perr = c:get_pool(nxt.pool, { select = "id,state" })
    if (p and p.state == "deleting") or (perr and perr.code == "PoolNotFound") then cm = nxt end
  end
  if cm then
    return fail(("rollout %s: step %d (%s) is done and cannot be undone; resume it instead"):format(id, cm.n,
      cm.name), "RolloutCommitted", { step = cm.n })
  end
  local ok
  ok, why, err = self:rollback(f, "aborted")
  if self.rolled_back then
    self.state = "aborted"
    return self:report()
  end
  err = err or {}
  err.report = self:report()
  return ok, why, err
end

--- rollout.status(client) -> {rollouts = {{id, strategy, state, done,
-- steps, pools = {id -> role}, owner, updated, report}...}} | fail
function M.status(c)
  check_client(c, "status")
  local all_r, why, err = state.scan(c)
  if not all_r then return nil, why, err end
  local out = {}
  for id, r in pairs(all_r) do
    local rec, p = r.record or {}, r.step or {}
    local pools = {}
    for pid, info in pairs(r.pools) do pools[pid] = info.part and info.part.role or "?" end
    local item = { id = id, strategy = rec.strategy, state = p.st, done = p.n, undone = p.b, owner = p.o,
      updated = p.t, pools = pools, image = rec.image }
    if rec.v == state.VERSION and rec.o then
      local ok, steps = pcall(planner.build, setmetatable({ orig = rec.orig or {} }, { __index = rec }), {})
      if ok then
        item.steps = #steps
        local steps_log, undo = state.read_log(p.log, rec.t0, steps)
        item.report = { id = id, strategy = rec.strategy, state = p.st, started = rec.t0, steps = steps_log,
          undo = undo, pools = rec.pools, samples = {} }
        item.report.text = report_mod.text(item.report)
      end
    end
    out[#out + 1] = item
  end
  table.sort(out, function(a, b) return a.id < b.id end)
  return { rollouts = out }
end

--- rollout.forget(client, id) -> true | fail: removes a finished rollout's
-- records from its pools (a running one must be resumed or aborted).
function M.forget(c, id)
  check_client(c, "forget")
  check.id(id, 2, "forget")
  local all_r, why, err = state.scan(c)
  if not all_r then return nil, why, err end
  local r = all_r[id]
  if not r then return fail(("rollout %s: no pool holds it"):format(id), "RolloutNotFound") end
  if r.step and state.ACTIVE[r.step.st] then
    return fail(("rollout %s: is %s; resume or abort it"):format(id, r.step.st), "RolloutInProgress")
  end
  for pid in pairs(r.pools) do
    local ok, wwhy, werr = state.remove(c, pid)
    if not ok then return nil, wwhy, werr end
  end
  return true
end

return M