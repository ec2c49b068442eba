--- Running a rollout: each step with its deadline, its approval and its
-- hooks; the progress written to every pool of the rollout after each
-- step; on a failure the undo steps in reverse, or a stop (for resume or
-- abort) when the rollout is past a commit or the service cannot tell
-- what happened. These are methods of azbatch.Rollout (rollout.lua puts
-- them on the class); the plan is rollout_plan.lua's, the steps
-- rollout_steps.lua's and the records rollout_state.lua's.
local core = require "azbatch.core"
local state = require "azbatch.rollout_state"
local planner = require "azbatch.rollout_plan"
local steps_mod = require "azbatch.rollout_steps"

-- The fail triple of rollout_steps.lua, as a local function: the code map
-- (tests/unit/troubleshooting_spec.lua) reads each call's code in this file.
local function fail(msg, code, extra) return steps_mod.fail(msg, code, extra) end

local R = {}

local function now() return core.time() end

local function notify(self, event)
  event.rollout = self.id
  if self.hooks.notify then self.hooks.notify(event) end
end

-- {===================================================================
-- Progress on the service
-- ====================================================================

function R:progress_text(st)
  local p = { id = self.id, st = st or self.state, n = self.done or 0, b = self.undone, f = self.failed_at,
    o = self.owner, t = math.floor(now()), log = state.log_entries(self.rec.t0, self.log, self.undo_log) }
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
function R:save(st, extra)
  local text, why, err = self:progress_text(st)
  if not text then return nil, why, err end
  local ids = {}
  for id in pairs(self.live) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local records = { [state.STEP_KEY] = text }
    for k, v in pairs(extra and extra[id] or {}) do records[k] = v end
    local ok, wwhy, werr = state.write(self.client, id, records, self.owner, { take = self.taking, id = self.id,
      known = self.known })
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

function R:context(st)
  return { id = self.id, strategy = self.strategy, client = self.client, rollout = self, step = st }
end

-- Run one step (forward or undo); append its entry to 'log'. Returns
-- true, or fail with err.step; err.outcome "unknown" when it could not be
-- settled. last: no step follows (its picture of the pools is always taken).
function R:step(st, log, last)
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
  -- a picture of every live pool after a step: at most one a poll interval
  -- (steps a moment apart show the same nodes, and each costs a request),
  -- and always after a failure and after the last step
  local ids = {}
  for id in pairs(self.live) do ids[#ids + 1] = id end
  if st.pool and not self.live[st.pool] and st.call ~= "wait_deleted" then ids[#ids + 1] = st.pool end
  if #ids > 0 and (not ok or last or not self.sampled_at or entry["end"] - self.sampled_at >= self.timeouts.poll) then
    self.sampled_at = entry["end"]
    table.sort(ids)
    steps_mod.sample_counts(self, ids)
  end
  if self.hooks.on_step then self.hooks.on_step(entry) end
  if ok then return true end
  return nil, why, err
end

-- Remove the rollout's records from every pool it left (after a rollback
-- or an abort: nothing of it stays).
function R:clear()
  local ids = {}
  for id in pairs(self.live) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local ok, why, err = state.remove(self.client, id, self.owner, { id = self.id, known = self.known })
    if not ok then return nil, why, err end
  end
  return true
end

-- Roll back from a failure at step f: undo in reverse, from undo step b+1.
function R:rollback(f, cause_why, cause_err)
  local steps = self.steps
  self.failed_at = f
  self.undone = self.undone or 0
  self.state = "rolling_back"
  notify(self, { type = "rollback", step = f, message = cause_why })
  local ok, why, err = self:save("rolling_back")
  if not ok and err and err.code == "RolloutBusy" then return nil, why, err end
  local list = planner.undo_list(steps, f)
  for j = self.undone + 1, #list do
    ok, why, err = self:step(list[j], self.undo_log, j == #list)
    if not ok then
      self.state = "failed"
      self:save("rolling_back")
      err.rollback_failed = true
      return nil, ("rollout %s: rolling back failed at undo step %d (%s): %s; after: %s"):format(self.id, j,
        list[j].name, tostring(why), tostring(cause_why)), err
    end
    self.undone = j
    if steps_mod.recorded(list, j) then
      ok, why, err = self:save("rolling_back")
      if not ok and err and err.code == "RolloutBusy" then return nil, why, err end
    end
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
function R:forward(from)
  local steps = self.steps
  for i = math.min(from + 1, #steps), #steps do
    local st = steps[i]
    local ok, why, err = true, nil, nil
    if i > from then ok, why, err = self:step(st, self.log, i == #steps) end
    local unsaved
    if ok then
      self.done = i
      local last = i == #steps
      if steps_mod.recorded(steps, i) then ok, why, err = self:save(last and "done" or "running") end
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
        why = ("rollout %s: step %d is done, and recording it %s: %s"):format(self.id, i,
          err.outcome == "unknown" and "may have failed (the service's answer was lost)" or "failed", tostring(why))
      end
      local c = planner.committed(steps, self.done or 0)
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
function R:run()
  if self.started then error("bad self: this rollout has already run (use rollout.resume)", 2) end
  local steps, why, err = self:plan()
  if not steps then
    -- nothing written: a report with no steps, as every failure of run has
    self.state = "failed"
    err = err or {}
    err.report = self:report()
    return nil, why, err
  end
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
  text, why, err = state.record_text(self.rec)
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
        [state.STEP_KEY] = ptext }, self.owner, { id = self.id, known = self.known })
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

return R
