--- The steps of a rollout, as the service sees them: each reads the pool
-- first and does only what is not done yet, so that running a step again
-- (a resumed rollout, an undo of a step that was cut short) is safe. Each
-- takes the Rollout, the step and its deadline, and returns true (or true,
-- "skipped" when it found its work done) or fail.
local core = require "azbatch.core"
local client = require "azbatch.client"
local parallel = require "azbatch.parallel"
local state = require "azbatch.rollout_state"
local planner = require "azbatch.rollout_plan"
local report_mod = require "azbatch.rollout_report"
require "azbatch.jobs"

local collect = client.collect

local M = {}

local function now() return core.time() end

local function fail(msg, code, extra)
  local err = extra or {}
  err.kind = err.kind or "api"
  err.code = code
  return nil, msg, err
end


-- Deep "want is in have" (strings ignoring case), as the client compares.
local function same(want, have)
  if type(want) == "table" then
    if type(have) ~= "table" then return false end
    for k, v in pairs(want) do
      if not same(v, have[k]) then return false end
    end
    return true
  end
  if type(want) == "string" and type(have) == "string" then return want:lower() == have:lower() end
  return want == have
end

function M.sample_counts(self, ids)
  local rows = collect(self.client:list_pool_node_counts())
  if not rows then return end
  local want = {}
  for _, id in ipairs(ids) do want[id:lower()] = id end
  local t = now()
  local got = {}
  for _, row in ipairs(rows) do
    local id = type(row.poolId) == "string" and want[row.poolId:lower()]
    if id then
      self.samples[#self.samples + 1] = { t = t, pool = id, counts = report_mod.counts_of(row) }
      got[id] = true
    end
  end
  for _, id in ipairs(ids) do
    if not got[id] then self.samples[#self.samples + 1] = { t = t, pool = id, counts = {} } end
  end
end

local function wait_opts(self, deadline, id)
  return { timeout = math.max(0, math.min(self.timeouts.wait, deadline - now())), interval = self.timeouts.poll,
    max_interval = math.max(self.timeouts.poll, 5), on_progress = function(p)
      local counts = {}
      for k, v in pairs(p.counts or {}) do if k ~= "total" and v > 0 then counts[k] = v end end
      self.samples[#self.samples + 1] = { t = now(), pool = id, counts = counts }
      if self.hooks.on_progress then self.hooks.on_progress(p) end
    end }
end

-- Poll until 'done(pool)' or the deadline; fail on a read failure.
local function poll_pool(self, id, deadline, select, done, what)
  while true do
    local p, why, err = self.client:get_pool(id, { select = select })
    if not p then return nil, why, err end
    local ok, res = done(p)
    if ok then return res or p end
    if now() >= deadline then
      return nil, ("pool %s: %s after %gs"):format(id, what, self.timeouts.step), { kind = "timeout", pool = id }
    end
    parallel.sleep(self.timeouts.poll)
  end
end

local function all(ids, fn)
  local fns = {}
  for i, id in ipairs(ids) do fns[i] = function() return fn(id) end end
  for i, r in ipairs(parallel.run(fns)) do
    if r[1] == nil then
      local err = r[3] or {}
      err.pool = err.pool or ids[i]
      return nil, r[2], err
    end
  end
  return true
end

local EXEC = {}
M.EXEC = EXEC

-- Steps that only read: a runner killed after one without recording it
-- runs it again on resume, which costs nothing, so their progress is
-- recorded with the next step's (one write to each pool fewer).
M.READ_ONLY = { wait_pool = true, wait_empty = true, wait_deleted = true, health = true }

--- Whether step i of 'steps' is recorded when done: all are but read-only
-- ones, except the last and one before a point of no return (a resume
-- after the commit must not wait again on a pool the commit deleted).
function M.recorded(steps, i)
  return not M.READ_ONLY[steps[i].call] or i == #steps or (steps[i + 1] and steps[i + 1].commit) or false
end

--- The furthest step a runner may have started after recording 'done'
-- steps: the first recorded one after them.
function M.in_flight(steps, done)
  local i = done + 1
  while i < #steps and not M.recorded(steps, i) do i = i + 1 end
  return i
end

function EXEC.preflight(self)
  local errors = {}
  for _, f in ipairs(self.findings) do
    if f.severity == "error" then errors[#errors + 1] = f end
  end
  if #errors > 0 then
    local f = errors[1]
    return fail(("preflight: %s%s: %s%s"):format(f.code, f.pool and (" (" .. f.pool .. ")") or "", f.message,
      #errors > 1 and (" (and %d more)"):format(#errors - 1) or ""), "PreflightFailed",
      { kind = "validation", findings = errors })
  end
  return true
end

function EXEC.create_pool(self, st)
  local c = self.client
  local p, why, err = c:get_pool(st.pool, { select = "id,state,metadata" })
  if p then
    local rec = state.read(p)
    if rec and rec.id == self.id and p.state == "active" then return true, "skipped" end
    return fail(("pool %s: exists and is not this rollout's"):format(st.pool), "PoolExists")
  elseif err.code ~= "PoolNotFound" then
    return nil, why, err
  end
  if not st.body then
    return fail(("pool %s: the pool it replaces (%s) is gone"):format(st.pool, tostring(st.of)), "PoolNotFound")
  end
  local body = planner.deep_copy(st.body)
  local text = self:progress_text("running")
  body.metadata[#body.metadata + 1] = { name = state.STEP_KEY, value = text }
  local ok
  ok, why, err = c:create_pool(body)
  if ok then
    self.live[st.pool] = true
    state.remember(self.known, st.pool, ok.etag, "active", body.metadata)
    return true, ok.recovered and "recovered" or nil
  end
  return nil, why, err
end

function EXEC.resize_pool(self, st, deadline)
  local c, id, body = self.client, st.pool, st.body
  local sel = "id,state,allocationState,allocationStateTransitionTime,targetDedicatedNodes,targetLowPriorityNodes,"
    .. "enableAutoScale"
  local p, why, err = c:get_pool(id, { select = sel })
  if not p then return nil, why, err end
  -- the pool as this runner last wrote it, if nothing changed it since
  local mine = self.known[id]
  if not (mine and type(why) == "table" and why.etag == mine.etag) then mine = nil end
  if p.enableAutoScale then
    return fail(("pool %s: autoscale is on; it cannot be resized"):format(id), "AutoScalingEnabled")
  end
  local at = p.targetDedicatedNodes == body.targetDedicatedNodes and p.targetLowPriorityNodes
    == body.targetLowPriorityNodes
  if at then return true, "skipped" end
  self.known[id] = nil                              -- what follows changes the pool's ETag
  if p.allocationState ~= "steady" then
    -- a resize of an earlier step (or runner) is still going: stop it first
    mine = nil
    local ok
    ok, why, err = c:stop_resize_pool(id)
    if not ok then return nil, why, err end
    ok, why, err = poll_pool(self, id, deadline, "id,allocationState", function(q)
      return q.allocationState == "steady"
    end, "still not steady")
    if not ok then return nil, why, err end
  end
  -- resize errors of the pool after this moment are this resize's (the wait's 'since')
  self.since[id] = p.allocationStateTransitionTime
  local ok
  if mine then
    -- If-Match: when it succeeds, the pool's new ETag covers this resize
    -- alone, and the next record write needs no read
    ok, why, err = c:resize_pool(id, body, { if_match = mine.etag })
    if ok and not ok.recovered then state.remember(self.known, id, ok.etag, mine.pool.state, mine.pool.metadata) end
    if not ok and err.code == "ConditionNotMet" and not err.maybe_applied then
      ok, why, err = c:resize_pool(id, body)        -- someone else changed the pool: resize all the same
    end
  else
    ok, why, err = c:resize_pool(id, body)
  end
  if ok then return true, ok.recovered and "recovered" or nil end
  return nil, why, err
end

function EXEC.patch_pool(self, st)
  local c, id = self.client, st.pool
  local p, why, err = c:get_pool(id, { select = "id,virtualMachineConfiguration" })
  if not p then return nil, why, err end
  if same(st.body, p) then return true, "skipped" end
  local ok
  ok, why, err = c:patch_pool(id, st.body)
  if ok then return true, ok.recovered and "recovered" or nil end
  return nil, why, err
end

function EXEC.delete_pool(self, st)
  local c, id = self.client, st.pool
  local p, why, err = c:get_pool(id, { select = "id,state" })
  if not p then
    if err.code == "PoolNotFound" then
      self.live[id] = nil
      return true, "skipped"
    end
    return nil, why, err
  end
  if p.state ~= "deleting" then
    local ok
    ok, why, err = c:delete_pool(id)
    if not ok then return nil, why, err end
    self.live[id] = nil
    return true, ok.recovered and "recovered" or nil
  end
  self.live[id] = nil
  return true
end

function EXEC.disable_autoscale(self, st)
  local c, id = self.client, st.pool
  local p, why, err = c:get_pool(id, { select = "id,enableAutoScale" })
  if not p then return nil, why, err end
  if not p.enableAutoScale then return true, "skipped" end
  local ok
  ok, why, err = c:disable_autoscale(id)
  if ok then return true, ok.recovered and "recovered" or nil end
  return nil, why, err
end

function EXEC.enable_autoscale(self, st, deadline)
  local c, id = self.client, st.pool
  local p, why, err = c:get_pool(id, { select = "id,enableAutoScale,autoScaleFormula,allocationState" })
  if not p then return nil, why, err end
  if p.enableAutoScale and p.autoScaleFormula == st.body.autoScaleFormula then return true, "skipped" end
  if p.allocationState ~= "steady" then
    local ok
    ok, why, err = poll_pool(self, id, deadline, "id,allocationState", function(q)
      return q.allocationState == "steady"
    end, "still not steady")
    if not ok then return nil, why, err end
  end
  for _ = 1, 60 do
    local ok
    ok, why, err = c:enable_autoscale(id, st.body)
    if ok then return true, ok.recovered and "recovered" or nil end
    -- the service's 30-second rule between enables of one pool
    if err.code ~= "TooManyEnableAutoScaleRequests" or now() >= deadline then break end
    parallel.sleep(math.max(1, self.timeouts.poll))
  end
  return nil, why, err
end

function EXEC.wait_pool(self, st, deadline)
  return all(st.pools, function(id)
    local o = wait_opts(self, deadline, id)
    o.nodes = st.nodes
    o.since = self.since[id]
    local ok, why, err = self.client:wait_pool(id, o)
    if ok then self.since[id] = nil end
    return ok, why, err
  end)
end

function EXEC.wait_empty(self, st, deadline)
  return all(st.pools, function(id)
    return poll_pool(self, id, deadline, "id,allocationState,currentDedicatedNodes,currentLowPriorityNodes",
      function(p)
        local on = wait_opts(self, deadline, id).on_progress
        local rows = collect(self.client:list_pool_node_counts { filter = ("poolId eq '%s'"):format(id) })
        local counts = rows and rows[1] and report_mod.counts_of(rows[1]) or {}
        local total = 0
        for _, v in pairs(counts) do total = total + v end
        on { counts = counts }
        return p.allocationState == "steady" and (p.currentDedicatedNodes or 0) + (p.currentLowPriorityNodes or 0)
          == 0 and rows ~= nil and total == 0
      end, "still has nodes")
  end)
end

function EXEC.wait_deleted(self, st, deadline)
  local ok, why, err = self.client:wait_pool_deleted(st.pool, { timeout = math.max(0, math.min(self.timeouts.wait,
    deadline - now())), interval = self.timeouts.poll, max_interval = math.max(self.timeouts.poll, 5),
    on_progress = self.hooks.on_progress and function(p)
      p.deleting = true
      self.hooks.on_progress(p)
    end })
  if ok then self.live[st.pool] = nil end
  return ok, why, err
end

function EXEC.health(self, st)
  local ctx = self:context(st)
  if self.hooks.health then
    local ok, why = self.hooks.health(ctx, st.pool)
    if ok then return true end
    return fail(("health check of %s: %s"):format(st.pool, tostring(why or "failed")), "HealthCheckFailed",
      { pool = st.pool })
  end
  -- the default: every node idle or running
  local nodes, why, err = collect(self.client:list_nodes(st.pool, { select = "id,state" }))
  if not nodes then return nil, why, err end
  for _, n in ipairs(nodes) do
    if n.state ~= "idle" and n.state ~= "running" then
      return fail(("health check of %s: node %s is %s"):format(st.pool, tostring(n.id), tostring(n.state)),
        "HealthCheckFailed", { pool = st.pool })
    end
  end
  return true
end

function EXEC.approve(self, st)
  if not self.hooks.approve then return true end
  if self.hooks.approve(self:context(st), st) then return true end
  return fail(("approval: %s: not approved"):format(st.what), "NotApproved")
end

function EXEC.finish() return true end

function EXEC.handover(self, st, deadline)
  if st.how == "custom" then
    if not self.handover_fn then
      return fail("handover: this rollout's handover is a function; pass it again (handover = ...)",
        "HandoverMissing", { kind = "validation" })
    end
    local ok, why = self.handover_fn(self:context(st), st.from, st.to)
    if ok then return true end
    return fail(("handover from %s to %s: %s"):format(st.from, st.to, tostring(why or "failed")), "HandoverFailed")
  end
  local r, why, err = self.client:hand_over_jobs(st.from, st.to, { tag = self.id,
    disable_tasks = self.rec.o.disable, timeout = math.max(0, deadline - now()), interval = self.timeouts.poll })
  if not r then return nil, why, err end
  st.jobs = #r.jobs
  return true
end

-- Did a step whose last answer was lost take effect? Read the service:
-- true, false, or nil when it still cannot tell.
function M.resolve(self, st)
  if st.call == "create_pool" then
    for _ = 1, 3 do
      local p, _, err = self.client:get_pool(st.pool, { select = "id,metadata" })
      if p then
        local rec = state.read(p)
        if rec and rec.id == self.id then
          self.live[st.pool] = true
          return true
        end
        return false
      end
      if err and err.code == "PoolNotFound" then return false end
      parallel.sleep(self.timeouts.poll)
    end
    return nil
  end
  -- the client settled the rest (read back); "unknown" left means it could
  -- not read: try again here with the step's own check
  if not st.pool then return nil end          -- a handover: running it again settles it
  for _ = 1, 3 do
    local p, _, err = self.client:get_pool(st.pool, { select = "id,state,targetDedicatedNodes,targetLowPriorityNodes,"
      .. "enableAutoScale,virtualMachineConfiguration" })
    if not p and st.call == "delete_pool" and err and err.code == "PoolNotFound" then return true end
    if p then
      if st.call == "resize_pool" then
        return p.targetDedicatedNodes == st.body.targetDedicatedNodes
          and p.targetLowPriorityNodes == st.body.targetLowPriorityNodes
      elseif st.call == "patch_pool" then
        return same(st.body, p)
      elseif st.call == "delete_pool" then
        return p.state == "deleting"
      elseif st.call == "disable_autoscale" then
        return not p.enableAutoScale
      elseif st.call == "enable_autoscale" then
        return p.enableAutoScale == true
      end
      return nil
    end
    parallel.sleep(self.timeouts.poll)
  end
  return nil
end

M.same = same
M.fail = fail

return M
