--- Waiting, honestly: until a pool is steady with its targets reached and
-- its nodes ready, or until it is gone; failing early and clearly on what
-- will not get better by waiting (a resize error of this resize, never a
-- stale one; nodes unusable or failing their start task beyond what the
-- caller tolerates; the pool deleted). Polls ask only for what they need,
-- and back off while nothing changes. Methods of azbatch.Client.
local core = require "azbatch.core"
local client = require "azbatch.client"
local check = require "azbatch.check"
local parallel = require "azbatch.parallel"

local Client = client.Client
local collect = client.collect

local M = {}

-- Node states (2025-06-01 BatchNodeState), and which of them are "ready".
M.STATES = { "creating", "starting", "waitingforstarttask", "idle", "running", "rebooting", "reimaging",
  "leavingpool", "offline", "preempted", "unusable", "starttaskfailed", "unknown", "deallocating",
  "deallocated", "upgradingos" }
local READY = { idle = true, running = true }
local ON_THE_WAY = { creating = true, starting = true, waitingforstarttask = true, rebooting = true,
  reimaging = true, upgradingos = true }

local POOL_SELECT = "id,state,allocationState,allocationStateTransitionTime,resizeErrors,targetDedicatedNodes,"
  .. "targetLowPriorityNodes,currentDedicatedNodes,currentLowPriorityNodes,enableAutoScale"

-- Per-state counts of a pool's nodes, dedicated and low-priority together,
-- from /nodecounts (one cheap request whatever the pool's size).
local function node_counts(self, id)
  local rows, why, err = collect(self:list_pool_node_counts { filter = ("poolId eq '%s'"):format(id:gsub("'", "''")) })
  if not rows then return nil, why, err end
  local counts = { total = 0 }
  for _, s in ipairs(M.STATES) do counts[s] = 0 end
  for _, row in ipairs(rows) do
    for _, part in ipairs { "dedicated", "lowPriority" } do
      local c = type(row[part]) == "table" and row[part] or {}
      for _, s in ipairs(M.STATES) do
        local key = s == "waitingforstarttask" and "waitingForStartTask" or s == "starttaskfailed"
          and "startTaskFailed" or s == "leavingpool" and "leavingPool" or s == "upgradingos" and "upgradingOS" or s
        local n = math.tointeger(c[key]) or 0
        counts[s] = counts[s] + n
      end
      counts.total = counts.total + (math.tointeger(c.total) or 0)
    end
  end
  return counts
end

-- A resize error as a fail: its code, message and details ({key=, value=}).
local function resize_fail(id, e, pool)
  e = type(e) == "table" and e or {}
  local code, message = core.sanitize(tostring(e.code), 128), core.sanitize(tostring(e.message))
  local values, details = {}, {}
  for _, nv in ipairs(type(e.values) == "table" and e.values or {}) do
    if type(nv) == "table" and (nv.name or nv.key) then
      local kv = { key = core.sanitize(tostring(nv.name or nv.key), 128), value = core.sanitize(tostring(nv.value)) }
      values[#values + 1] = kv
      details[#details + 1] = kv.key .. "=" .. kv.value
    end
  end
  local text = ("pool %s: resize error %s: %s"):format(id, code, message)
  if #details > 0 then text = text .. " [" .. table.concat(details, ", ") .. "]" end
  return nil, text, { kind = "api", code = code, message = message, values = values, pool = pool }
end

-- The errors of the first few nodes in a state, for the fail's message.
local function node_errors(self, id, state)
  local nodes = collect(self:list_nodes(id, { filter = ("state eq '%s'"):format(state),
    select = "id,state,errors,startTaskInfo", maxresults = 10 }))
  local out = {}
  for _, n in ipairs(nodes or {}) do
    local e
    if type(n.errors) == "table" and type(n.errors[1]) == "table" then
      e = { code = n.errors[1].code, message = n.errors[1].message }
    elseif type(n.startTaskInfo) == "table" and type(n.startTaskInfo.failureInfo) == "table" then
      local f = n.startTaskInfo.failureInfo
      e = { code = f.code, message = f.message, exit_code = n.startTaskInfo.exitCode }
    end
    if e then
      out[#out + 1] = { node = core.sanitize(tostring(n.id), 128), code = core.sanitize(tostring(e.code), 128),
        message = core.sanitize(tostring(e.message)), exit_code = math.tointeger(e.exit_code) }
    end
    if #out >= 3 then break end
  end
  return out
end

local WAIT_OPTS = check.set { "timeout", "interval", "max_interval", "on_progress", "nodes", "max_unusable",
  "max_start_task_failed", "since" }

local function check_count(v, name)
  if v ~= nil and (math.type(v) ~= "integer" or v < 0) then
    error(("bad argument #2 to 'wait_pool' (option '%s' must be an integer >= 0)"):format(name), 4)
  end
  return v or 0
end

--- client:wait_pool(id [, opts]) -> pool | fail
-- Returns the pool when it is steady with its targets reached (and, with
-- nodes = "ready", the default, every node idle or running). Fails:
--  kind "api", the resize error's code: a resize error of this resize
--    (one older than the wait, left from an earlier resize, is ignored);
--  kind "api", code "NodesUnusable" / "StartTaskFailed": more nodes in that
--    state than max_unusable / max_start_task_failed (default 0), with
--    err.nodes = the first few nodes' errors;
--  kind "api", code "PoolNotFound" / "PoolBeingDeleted": the pool went away;
--  kind "timeout" after 'timeout' seconds (default 1800), with the last pool.
-- on_progress(p) after each poll: p = {id, state, allocationState, target,
-- current, counts = {idle=, running=, creating=, ...}, elapsed}.
-- Polls every 'interval' seconds (default 2), backing off to max_interval
-- (default 30) while nothing changes. since: the pool's
-- allocationStateTransitionTime before the caller's resize (resize errors
-- of a pool that has moved on from it are this resize's); default: the
-- first poll's.
function Client:wait_pool(id, opts)
  check.id(id, 1, "wait_pool")
  opts = check.options(opts, 2, "wait_pool", WAIT_OPTS)
  for _, k in ipairs { "timeout", "interval", "max_interval" } do check.seconds(opts[k], k, "wait_pool") end
  check.type(opts.on_progress, "function", "on_progress", "wait_pool")
  check.type(opts.since, "string", "since", "wait_pool")
  local want = opts.nodes or "ready"
  if want ~= "ready" and want ~= "allocated" then
    error("bad argument #2 to 'wait_pool' (option 'nodes' must be 'ready' or 'allocated')", 2)
  end
  local max_unusable = check_count(opts.max_unusable, "max_unusable")
  local max_failed = check_count(opts.max_start_task_failed, "max_start_task_failed")
  local timeout = opts.timeout or 1800
  local started = core.now()
  local deadline = started + timeout
  local base = opts.interval or 2
  local interval, max_interval = base, math.max(base, opts.max_interval or 30)
  local since, last_seen = opts.since, nil  -- allocationStateTransitionTime at the start; the last progress
  local seen_once = false
  while true do
    if self.closed then
      return nil, ("pool %s: the wait ended: the azbatch.Client was closed"):format(id),
        { kind = "transport", cancelled = true }
    end
    local r = parallel.run {
      function() return self:get_pool(id, { select = POOL_SELECT }) end,
      function() return node_counts(self, id) end,
    }
    local pool, why, err = r[1][1], r[1][2], r[1][3]
    if not pool then
      if err and err.code == "PoolNotFound" and seen_once then
        return nil, ("pool %s: was deleted while waiting for it"):format(id), err
      end
      return nil, why, err
    end
    seen_once = true
    local counts = r[2][1] or {}
    since = since or pool.allocationStateTransitionTime or ""
    local target = (math.tointeger(pool.targetDedicatedNodes) or 0) + (math.tointeger(pool.targetLowPriorityNodes) or 0)
    local current = (math.tointeger(pool.currentDedicatedNodes) or 0)
      + (math.tointeger(pool.currentLowPriorityNodes) or 0)
    local progress = { id = id, state = pool.state, allocationState = pool.allocationState, target = target,
      current = current, counts = counts, elapsed = core.now() - started }
    if opts.on_progress then opts.on_progress(progress) end
    if pool.state == "deleting" then
      return nil, ("pool %s: is being deleted"):format(id), { kind = "api", code = "PoolBeingDeleted", pool = pool }
    end
    -- nodes that will not get better by waiting
    for _, bad in ipairs { { "unusable", max_unusable, "NodesUnusable" },
                           { "starttaskfailed", max_failed, "StartTaskFailed" } } do
      local n = counts[bad[1]] or 0
      if n > bad[2] then
        local nodes = node_errors(self, id, bad[1])
        local first = nodes[1]
        return nil, ("pool %s: %d node(s) %s (more than the %d tolerated)%s"):format(id, n, bad[1], bad[2],
          first and (": " .. first.node .. ": " .. first.code .. ": " .. first.message) or ""),
          { kind = "api", code = bad[3], count = n, nodes = nodes, pool = pool, progress = progress }
      end
    end
    local fresh = pool.allocationStateTransitionTime ~= since
    if pool.allocationState == "steady" then
      local errors = pool.resizeErrors
      if fresh and type(errors) == "table" and #errors > 0 then return resize_fail(id, errors[1], pool) end
      local reached = pool.enableAutoScale or current >= target
      local settled = want == "allocated"
      if not settled then
        settled = true
        for s in pairs(ON_THE_WAY) do settled = settled and (counts[s] or 0) == 0 end
        local ready = 0
        for s in pairs(READY) do ready = ready + (counts[s] or 0) end
        settled = settled and (ready >= target - (counts.unusable or 0) - (counts.starttaskfailed or 0)
          or pool.enableAutoScale)
      end
      if reached and settled then return pool end
      if not reached and not fresh and type(errors) == "table" and #errors > 0 and since ~= "" then
        -- steady short of its targets since before the wait, with the errors
        -- that left it there: waiting will not change it (errors are stale
        -- only once a later resize reached its targets)
        local f1, f2, f3 = resize_fail(id, errors[1], pool)
        return f1, f2:gsub("^pool [^:]+:", ("pool %s: steady at %d of %d nodes:"):format(id, current, target), 1), f3
      end
    end
    if core.now() >= deadline then
      return nil, ("pool %s: still %s (%d of %d nodes) after %gs"):format(id, tostring(pool.allocationState),
        current, target, timeout), { kind = "timeout", pool = pool, progress = progress }
    end
    -- back off while nothing moves; look again soon after a change
    local seen = table.concat({ tostring(pool.allocationState), current, counts.idle or 0, counts.running or 0,
      counts.starting or 0, counts.creating or 0 }, ",")
    if seen ~= last_seen then interval = base else interval = math.min(interval * 1.5, max_interval) end
    last_seen = seen
    parallel.sleep(math.min(interval, math.max(0, deadline - core.now())))
  end
end

local DELETED_OPTS = check.set { "timeout", "interval", "max_interval", "on_progress" }

--- client:wait_pool_deleted(id [, {timeout=, interval=, on_progress=}]) -> true | fail
-- Returns when the pool is gone (PoolNotFound); fails on timeout.
function Client:wait_pool_deleted(id, opts)
  check.id(id, 1, "wait_pool_deleted")
  opts = check.options(opts, 2, "wait_pool_deleted", DELETED_OPTS)
  for _, k in ipairs { "timeout", "interval", "max_interval" } do check.seconds(opts[k], k, "wait_pool_deleted") end
  check.type(opts.on_progress, "function", "on_progress", "wait_pool_deleted")
  local timeout = opts.timeout or 1800
  local started = core.now()
  local deadline = started + timeout
  local base = opts.interval or 2
  local interval, max_interval = base, math.max(base, opts.max_interval or 30)
  while true do
    local pool, why, err = self:get_pool(id, { select = "id,state,currentDedicatedNodes,currentLowPriorityNodes" })
    if not pool then
      if err and err.code == "PoolNotFound" then return true end
      return nil, why, err
    end
    if opts.on_progress then
      opts.on_progress { id = id, state = pool.state, current = (math.tointeger(pool.currentDedicatedNodes) or 0)
        + (math.tointeger(pool.currentLowPriorityNodes) or 0), elapsed = core.now() - started }
    end
    if core.now() >= deadline then
      return nil, ("pool %s: still %s after %gs"):format(id, tostring(pool.state), timeout),
        { kind = "timeout", pool = pool }
    end
    parallel.sleep(math.min(interval, math.max(0, deadline - core.now())))
    interval = math.min(interval * 1.5, max_interval)
  end
end

return M
