--- Image rollouts: canary, blue-green, rolling and in-place, as plans of
-- the client's primitives with hooks at every step. Each rollout runs
-- preflight on what it will create, can print its plan without acting,
-- bounds each step in time, rolls back what it created and restores what
-- it changed when a step fails, and keeps its plan and progress in the
-- pools' metadata, so that a killed rollout can be resumed or aborted from
-- the service's state alone (rollout_state.lua). Plans: rollout_plan.lua;
-- the report and its SVG timeline: rollout_report.lua.
local core = require "azbatch.core"
local json = require "azbatch.json"
local client = require "azbatch.client"
local check = require "azbatch.check"
local parallel = require "azbatch.parallel"
local state = require "azbatch.rollout_state"
local planner = require "azbatch.rollout_plan"
local report_mod = require "azbatch.rollout_report"
local steps_mod = require "azbatch.rollout_steps"
require "azbatch.pool"
require "azbatch.wait"
require "azbatch.preflight"
require "azbatch.jobs"

local set = check.set

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
local HOOK_OPTS = set { "health", "approve", "on_step", "notify" }
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

local function fail(msg, code, extra)
  local err = extra or {}
  err.kind = err.kind or "api"
  err.code = code
  return nil, msg, err
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
    samples = {}, log = {}, undo_log = {}, live = {}, findings = {}, since = {},
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

local function notify(self, event)
  event.rollout = self.id
  if self.hooks.notify then self.hooks.notify(event) end
end

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

-- The bodies a rollout creates or changes, for preflight and validation.
local function bodies(self, steps, live)
  local out = {}
  for _, st in ipairs(steps) do
    if st.call == "create_pool" and st.body then
      out[#out + 1] = st.body
    elseif st.call == "patch_pool" and st.body and live[st.pool] then
      local b = { id = st.pool }
      for _, k in ipairs(planner.COPY) do b[k] = live[st.pool][k] end
      local o = self.rec.orig[st.pool]
      b.targetDedicatedNodes, b.targetLowPriorityNodes = o.td, o.tl
      if o.as then
        b.enableAutoScale, b.autoScaleFormula, b.autoScaleEvaluationInterval = true, o.as.f, o.as.i
        b.targetDedicatedNodes, b.targetLowPriorityNodes, b.resizeTimeout = nil, nil, nil
      end
      b.virtualMachineConfiguration = st.body.virtualMachineConfiguration
      out[#out + 1] = b
    end
  end
  return out
end

-- The record's JSON (without what is per pool), or fail when too big.
local function record_text(rec)
  local keep = {}
  for k, v in pairs(rec) do
    if k ~= "text" and k ~= "orig" then keep[k] = v end
  end
  -- each old pool's virtualMachineConfiguration is on that pool only
  keep.orig = {}
  for id, o in pairs(rec.orig or {}) do keep.orig[id] = { td = o.td, tl = o.tl, as = o.as } end
  return state.encode(keep, "rollout")
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
  local text, twhy, terr = record_text(rec)
  if not text then return nil, twhy, terr end
  rec.text = text
  for _, id in ipairs(rec.pools) do rec.orig[id].vmc = self.vmc[id] end
  local steps = planner.build(rec, live)
  -- every body valid, and preflight on each
  local list = bodies(self, steps, live)
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
        text, twhy, terr = record_text(rec)
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

local function line_of(st, t)
  local what = st.method and (st.method .. " " .. st.path) or ""
  local target = st.pool or (st.pools and table.concat(st.pools, ", ")) or (st.from and (st.from .. " -> " .. st.to))
    or st.what or ""
  local extra = ""
  if st.call == "wait_pool" or st.call == "wait_empty" or st.call == "wait_deleted" then
    extra = (" (up to %gs)"):format(math.min(t.wait, t.step))
  end
  return ("%3d. %-17s %-38s %s%s"):format(st.n, st.call, what, target, extra)
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
    emit(line_of(st, self.timeouts))
    if st.body then emit("       " .. assert(json.encode(st.body))) end
  end
  return steps
end

-- {===================================================================
-- Progress on the service
-- ====================================================================

local function now() return core.time() end

-- The compact step log: {n, start, end, outcome} in seconds from t0.
local function log_entries(self)
  local out = {}
  local t0 = self.rec.t0 or 0
  for _, list in ipairs { self.log, self.undo_log } do
    for _, e in ipairs(list) do
      out[#out + 1] = { e.n, math.floor((e.start - t0) * 10 + 0.5) / 10, math.floor(((e["end"] or e.start) - t0)
        * 10 + 0.5) / 10, e.outcome }
    end
  end
  return out
end

function Rollout:progress_text(st)
  local p = { id = self.id, st = st or self.state, n = self.done or 0, b = self.undone, f = self.failed_at,
    o = self.owner, t = math.floor(now()), log = log_entries(self) }
  local text, why, err = state.encode(p, "progress")
  if not text then
    -- keep the latest steps when the log outgrows the cap
    while not text and #p.log > 1 do
      table.remove(p.log, 1)
      text, why, err = state.encode(p, "progress")
    end
  end
  return text, why, err
end

-- Write the progress to every live pool of the rollout; a pool that went
-- away is dropped. Fails with RolloutBusy when another runner took over.
function Rollout:save(st, extra)
  local text, why, err = self:progress_text(st)
  if not text then return nil, why, err end
  local ids = {}
  for id in pairs(self.live) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local records = { [state.STEP_KEY] = text }
    for k, v in pairs(extra and extra[id] or {}) do records[k] = v end
    local ok, wwhy, werr = state.write(self.client, id, records, self.owner, { take = self.taking, id = self.id })
    if not ok then
      if werr and (werr.code == "PoolNotFound" or werr.code == "PoolBeingDeleted") then
        self.live[id] = nil
      else
        return nil, wwhy, werr
      end
    end
  end
  self.taking = nil
  return true
end

-- {===================================================================
-- Running
-- ====================================================================

function Rollout:context(st)
  return { id = self.id, strategy = self.strategy, client = self.client, rollout = self, step = st }
end

-- Run one step (forward or undo); append its entry to 'log'. Returns
-- true, or fail with err.step; err.outcome "unknown" when it could not be
-- settled.
function Rollout:step(st, log)
  local entry = { n = st.n, name = st.name, call = st.call, pool = st.pool or (st.pools and table.concat(st.pools,
    ",")) or st.from, start = now() }
  log[#log + 1] = entry
  notify(self, { type = "step", step = st.n, name = st.name })
  local deadline = entry.start + self.timeouts.step
  local ok, why, err
  if st.approve and self.hooks.approve and not self.hooks.approve(self:context(st), st) then
    ok, why, err = fail(("approval: %s: not approved"):format(st.name), "NotApproved")
  else
    ok, why, err = steps_mod.EXEC[st.call](self, st, deadline)
  end
  if not ok and err and err.outcome == "unknown" then
    local applied = steps_mod.resolve(self, st)
    if applied then
      ok, why = true, nil
      entry.recovered = true
    elseif applied == false then
      err.outcome = nil
    end
  end
  entry["end"] = now()
  if ok then
    -- "recovered": the client found the effect of an attempt whose answer was lost
    entry.recovered = entry.recovered or why == "recovered" or nil
    entry.outcome = why == "skipped" and "skipped" or "ok"
    entry.jobs = st.jobs
  else
    entry.outcome = err and err.outcome == "unknown" and "unknown" or "failed"
    entry.message = core.sanitize(tostring(why), 300)
    err = err or {}
    err.step = st.n
  end
  -- a picture of every live pool after each step
  local ids = {}
  for id in pairs(self.live) do ids[#ids + 1] = id end
  if st.pool and not self.live[st.pool] and st.call ~= "wait_deleted" then ids[#ids + 1] = st.pool end
  table.sort(ids)
  steps_mod.sample_counts(self, ids)
  if self.hooks.on_step then self.hooks.on_step(entry) end
  if ok then return true end
  return nil, why, err
end

-- The undo steps for a failure at step 'f' (its own too, since it may have
-- done part of its work), last first.
local function undo_list(steps, f)
  local out = {}
  for i = math.min(f, #steps), 2, -1 do
    for _, u in ipairs(steps[i].undo or {}) do out[#out + 1] = u end
  end
  for j, u in ipairs(out) do u.n = -j end
  return out
end

local function committed(steps, done)
  for i = 1, math.min(done, #steps) do
    if steps[i].commit then return steps[i] end
  end
end

-- Remove the rollout's records from every pool it left (after a rollback
-- or an abort: nothing of it stays).
function Rollout:clear()
  local ids = {}
  for id in pairs(self.live) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local ok, why, err = state.write(self.client, id, { [state.KEY] = false, [state.POOL_KEY] = false,
      [state.STEP_KEY] = false }, self.owner, { id = self.id })
    if not ok and not (err and (err.code == "PoolNotFound" or err.code == "PoolBeingDeleted")) then
      return nil, why, err
    end
  end
  return true
end

-- Roll back from a failure at step f: undo in reverse, from undo step b+1.
function Rollout:rollback(f, cause_why, cause_err)
  local steps = self.steps
  self.failed_at = f
  self.undone = self.undone or 0
  self.state = "rolling_back"
  notify(self, { type = "rollback", step = f, message = cause_why })
  local ok, why, err = self:save("rolling_back")
  if not ok and err and err.code == "RolloutBusy" then return nil, why, err end
  local list = undo_list(steps, f)
  for j = self.undone + 1, #list do
    ok, why, err = self:step(list[j], self.undo_log)
    if not ok then
      self.state = "failed"
      self:save("rolling_back")
      err.rollback_failed = true
      return nil, ("rollout %s: rolling back failed at undo step %d (%s): %s; after: %s"):format(self.id, j,
        list[j].name, tostring(why), tostring(cause_why)), err
    end
    self.undone = j
    ok, why, err = self:save("rolling_back")
    if not ok and err and err.code == "RolloutBusy" then return nil, why, err end
  end
  ok, why, err = self:clear()
  if not ok then return nil, why, err end
  self.state = "rolled_back"
  self.rolled_back = true
  notify(self, { type = "rolled_back", step = f })
  cause_err = cause_err or {}
  cause_err.rolled_back = true
  return nil, cause_why, cause_err
end

-- Run the steps after 'from' (the number already done). When every step
-- is done already (a runner stopped after the last one, before the service
-- took "done"), the last one's record is all that is left to write.
function Rollout:forward(from)
  local steps = self.steps
  for i = math.min(from + 1, #steps), #steps do
    local st = steps[i]
    local ok, why, err = true, nil, nil
    if i > from then ok, why, err = self:step(st, self.log) end
    local unsaved
    if ok then
      self.done = i
      local last = i == #steps
      ok, why, err = self:save(last and "done" or "running")
      if ok and last then
        self.state = "done"
        notify(self, { type = "done" })
        return true
      end
      unsaved = not ok
    end
    if not ok then
      err = err or {}
      if err.code == "RolloutBusy" then
        self.state = "busy"
        return nil, why, err
      end
      if unsaved then
        -- the step is done but the service did not take the progress: it
        -- cannot take a rollback either; resume runs the step again (or,
        -- when "failed" below is taken with the step counted, only
        -- records it)
        err.unsaved = true
        why = ("rollout %s: step %d is done, and recording it failed: %s"):format(self.id, i, tostring(why))
      end
      local c = committed(steps, self.done or 0)
      if c or err.outcome == "unknown" or unsaved then
        -- past the point of no return, or the service cannot tell: stop,
        -- and leave the state for resume or abort
        self.state = "failed"
        self:save("failed")
        err.committed = c and c.n or nil
        notify(self, { type = "failed", step = i, message = why })
        return nil, why, err
      end
      return self:rollback(i, why, err)
    end
  end
  return true
end

--- r:run() -> report | fail. Runs the plan; on a failure rolls back and
-- returns fail with err.report (report.rolled_back = true).
function Rollout:run()
  if self.started then error("bad self: this rollout has already run (use rollout.resume)", 2) end
  local steps, why, err = self:plan()
  if not steps then return nil, why, err end
  self.started = true
  self.rec.t0 = now()
  self.owner = state.token()
  self.state = "running"
  notify(self, { type = "start", steps = #steps })
  -- step 1 (preflight) before anything is written
  local ok
  ok, why, err = self:step(steps[1], self.log)
  if not ok then
    self.state = "failed"
    err.report = self:report()
    return nil, why, err
  end
  self.done = 1
  -- claim the old pools: the records, written with If-Match
  local text
  text, why, err = record_text(self.rec)
  if not text then return nil, why, err end
  self.rec.text = text
  -- the new pools' bodies carry the record as it is now (with t0)
  self.steps = planner.build(self.rec, self.live_pools)
  local ptext = assert(self:progress_text("running"))
  for _, id in ipairs(self.rec.pools) do
    local part = { role = "old" }
    if self.strategy == "in-place" or (self.rec.o.canary and self.rec.o.canary["then"] == "in-place") then
      part.vmc = self.vmc[id]
    end
    local ptxt
    ptxt, why, err = state.encode(part, "pool")
    if ptxt then
      ok, why, err = state.write(self.client, id, { [state.KEY] = text, [state.POOL_KEY] = ptxt,
        [state.STEP_KEY] = ptext }, self.owner, { id = self.id })
    else
      ok = nil
    end
    if not ok then
      self:clear()
      self.state = "failed"
      err = err or {}
      err.report = self:report()
      return nil, why, err
    end
    self.live[id] = true
  end
  ok, why, err = self:forward(1)
  if not ok then
    err.report = self:report()
    return nil, why, err
  end
  return self:report()
end

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
    findings = {}, vmc = {}, since = {} },
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
  rec.text = assert(record_text(rec))
  self.steps = planner.build(rec, live)
  local p = found.step or { st = "running", n = 0 }
  self.done, self.undone, self.failed_at, self.state = p.n or 0, p.b, p.f, p.st
  self.prior = p
  -- earlier runners' step log, back in absolute time
  for _, e in ipairs(p.log or {}) do
    local entry = { n = e[1], start = (rec.t0 or 0) + e[2], ["end"] = (rec.t0 or 0) + e[3], outcome = e[4] }
    local st = entry.n > 0 and self.steps[entry.n]
    entry.name = st and st.name or nil
    if entry.n > 0 then self.log[#self.log + 1] = entry else self.undo_log[#self.undo_log + 1] = entry end
  end
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
    ok, why, err = self:rollback(self.failed_at or self.done + 1, "resumed rollback")
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
  local cm = committed(self.steps, self.done)
  local nxt = self.state ~= "rolling_back" and self.steps[self.done + 1]
  if not cm and nxt and nxt.commit then
    -- the runner may have died between that step and writing it down
    local p, _, perr = c:get_pool(nxt.pool, { select = "id,state" })
    if (p and p.state == "deleting") or (perr and perr.code == "PoolNotFound") then cm = nxt end
  end
  if cm then
    return fail(("rollout %s: step %d (%s) is done and cannot be undone; resume it instead"):format(id, cm.n,
      cm.name), "RolloutCommitted", { step = cm.n })
  end
  local f = self.state == "rolling_back" and self.failed_at or (self.done + 1)
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
        local log = {}
        for _, e in ipairs(p.log or {}) do
          local st = e[1] > 0 and steps[e[1]]
          log[#log + 1] = { n = e[1], start = (rec.t0 or 0) + e[2], ["end"] = (rec.t0 or 0) + e[3], outcome = e[4],
            name = st and st.name or nil }
        end
        local steps_log, undo = {}, {}
        for _, e in ipairs(log) do
          if e.n > 0 then steps_log[#steps_log + 1] = e else undo[#undo + 1] = e end
        end
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
    local ok, wwhy, werr = state.write(c, pid, { [state.KEY] = false, [state.POOL_KEY] = false,
      [state.STEP_KEY] = false })
    if not ok and not (werr and (werr.code == "PoolNotFound" or werr.code == "PoolBeingDeleted")) then
      return nil, wwhy, werr
    end
  end
  return true
end

return M
