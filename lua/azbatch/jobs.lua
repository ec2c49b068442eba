--- Job operations, as methods of azbatch.Client: what a rollout needs to
-- move jobs between pools (list, get, update, disable, enable). Like the
-- pool operations, a mutating call whose answer was lost reads the job back
-- and reports what happened (recovered = true), or err.outcome = "unknown".
-- Bodies are small and checked here; the service checks the rest.
local core = require "azbatch.core"
local json = require "azbatch.json"
local client = require "azbatch.client"
local check = require "azbatch.check"
local parallel = require "azbatch.parallel"

local Client = client.Client
local set = check.set
local collect = client.collect

local M = {}

-- The metadata item on a job being moved: "<tag>|<from>|<to>", so that a
-- mover that died half-way, or one undoing a move, knows which disabled
-- jobs it disabled itself.
M.MARK = "azbatch.rollout.handover"

local function job_path(id, suffix)
  return "/jobs/" .. core.url_encode(id) .. (suffix or "")
end

-- Settle a failed mutation whose attempt may have taken effect: 'applied'
-- reads the job and says true (it did), false (it did not) or nil, why.
local function settle(self, err, why, applied)
  if not (err.outcome == "unknown" or err.maybe_applied) or self.closed then return nil, why, err end
  local done, rwhy = applied()
  if done then return true end
  if done == nil then
    err.outcome = "unknown"
    return nil, why .. " (and reading the job back to check failed: " .. tostring(rwhy) .. ")", err
  end
  if err.kind ~= "timeout" then err.outcome = nil end
  return nil, why, err
end

local function mutate(self, method, path, req, applied)
  local ok, resp, err = self:request(method, path, req)
  if ok then
    return { etag = resp.etag, request_id = resp.request_id, attempts = resp.attempts,
      client_request_id = resp.client_request_id }
  end
  local why = resp
  local r1, r2, r3 = settle(self, err, why, applied)
  if r1 then
    return { request_id = err.request_id, attempts = err.attempts, client_request_id = err.client_request_id,
      recovered = true }
  end
  return r1, r2, r3
end

local LIST_OPTS = set { "filter", "select", "expand", "maxresults" }

--- client:list_jobs([{filter=, select=, expand=, maxresults=}]) -> list of jobs
function Client:list_jobs(opts)
  opts = check.options(opts, 1, "list_jobs", LIST_OPTS)
  return self:pages("/jobs", { ["$filter"] = opts.filter, ["$select"] = opts.select, ["$expand"] = opts.expand,
    maxresults = opts.maxresults })
end

local GET_OPTS = set { "select", "timeout" }

--- client:get_job(id [, {select=, timeout=}]) -> job, response | fail
function Client:get_job(id, opts)
  check.id(id, 1, "get_job")
  opts = check.options(opts, 2, "get_job", GET_OPTS)
  return self:request("GET", job_path(id), { query = { ["$select"] = opts.select }, timeout = opts.timeout })
end

local IF_MATCH_OPTS = set { "if_match", "timeout" }
local PATCH_FIELDS = set { "priority", "allowTaskPreemption", "maxParallelTasks", "constraints", "poolInfo",
  "onAllTasksComplete", "metadata", "networkConfiguration" }

-- Does 'have' hold every field of 'want' (strings ignoring case)?
local function holds(want, have)
  if type(want) == "table" then
    if type(have) ~= "table" then return false end
    for k, v in pairs(want) do
      if not holds(v, have[k]) then return false end
    end
    -- an array must not have more items than asked (metadata replaced)
    if #want > 0 or getmetatable(want) then return #have == #want end
    return true
  end
  if type(want) == "string" and type(have) == "string" then return want:lower() == have:lower() end
  return want == have
end

--- client:patch_job(id, properties [, {if_match=, timeout=}]) -> result | fail
-- properties: the JobUpdateOptions fields (poolInfo, metadata, priority, ...).
function Client:patch_job(id, props, opts)
  check.id(id, 1, "patch_job")
  if type(props) ~= "table" then
    error(("bad argument #2 to 'patch_job' (table expected, got %s)"):format(type(props)), 2)
  end
  opts = check.options(opts, 3, "patch_job", IF_MATCH_OPTS)
  for k in pairs(props) do
    if not PATCH_FIELDS[k] then
      return nil, ("job.%s: unknown field"):format(tostring(k)), { kind = "validation", field = "job." .. tostring(k) }
    end
  end
  local info = props.poolInfo
  if info ~= nil and (type(info) ~= "table" or type(info.poolId) ~= "string" or info.poolId == "") then
    return nil, "job.poolInfo.poolId: expected a pool id", { kind = "validation", field = "job.poolInfo.poolId" }
  end
  return mutate(self, "PATCH", job_path(id), { body = props, if_match = opts.if_match, timeout = opts.timeout },
    function()
      local job, why = self:get_job(id)
      if not job then return nil, why end
      return holds(props, job)
    end)
end

local DISABLE = set { "requeue", "terminate", "wait" }

--- client:disable_job(id, disable_tasks [, {if_match=, timeout=}]) -> result | fail
-- disable_tasks: "requeue", "terminate" or "wait" (what becomes of the
-- job's running tasks). A job already disabling or disabled is left as it is.
function Client:disable_job(id, disable_tasks, opts)
  check.id(id, 1, "disable_job")
  opts = check.options(opts, 3, "disable_job", IF_MATCH_OPTS)
  if not DISABLE[disable_tasks] then
    return nil, "job.disableTasks: must be one of 'requeue', 'terminate', 'wait'",
      { kind = "validation", field = "job.disableTasks" }
  end
  return mutate(self, "POST", job_path(id, "/disable"), { body = { disableTasks = disable_tasks },
    if_match = opts.if_match, timeout = opts.timeout }, function()
    local job, why = self:get_job(id, { select = "id,state" })
    if not job then return nil, why end
    return job.state == "disabling" or job.state == "disabled"
  end)
end

--- client:enable_job(id [, {if_match=, timeout=}]) -> result | fail
function Client:enable_job(id, opts)
  check.id(id, 1, "enable_job")
  opts = check.options(opts, 2, "enable_job", IF_MATCH_OPTS)
  return mutate(self, "POST", job_path(id, "/enable"), { if_match = opts.if_match, timeout = opts.timeout },
    function()
      local job, why = self:get_job(id, { select = "id,state" })
      if not job then return nil, why end
      return job.state == "enabling" or job.state == "active"
    end)
end

-- {===================================================================
-- Handing jobs over from one pool to another
-- ====================================================================

local function mark_of(job)
  for _, kv in ipairs(type(job.metadata) == "table" and job.metadata or {}) do
    if kv.name == M.MARK then return kv.value end
  end
end

local function metadata_with(job, value)
  local md = {}
  for _, kv in ipairs(type(job.metadata) == "table" and job.metadata or {}) do
    if kv.name ~= M.MARK then md[#md + 1] = { name = kv.name, value = kv.value } end
  end
  if value then md[#md + 1] = { name = M.MARK, value = value } end
  return json.array(md)
end

local GONE = set { "completed", "terminating", "deleting" }

local function marked_by(job, tag)
  local m = mark_of(job)
  return type(m) == "string" and m:sub(1, #tag + 1) == tag .. "|"
end

-- Move one job from 'from' to 'to', from whatever state it is in: mark,
-- disable, wait until disabled, point at 'to', enable, unmark. A job its
-- owner had disabled is only pointed at 'to', and stays disabled.
-- Returns "moved", "disabled" (moved, left disabled), true (nothing to do)
-- or fail.
local function move_job(self, job_id, from, to, o)
  local mark = ("%s|%s|%s"):format(o.tag, from, to)
  while true do
    local job, why, err = self:get_job(job_id)
    if not job then
      if err and err.code == "JobNotFound" then return true end
      return nil, why, err
    end
    if GONE[job.state] then return true end
    local pool = type(job.poolInfo) == "table" and type(job.poolInfo.poolId) == "string" and job.poolInfo.poolId or ""
    local on_from, on_to = pool:lower() == from:lower(), pool:lower() == to:lower()
    local mine = mark_of(job) == mark
    -- marked by this mover for either direction (a move undone half-way)
    local ours = marked_by(job, o.tag)
    local ok
    if on_from and ours and not mine then
      ok, why, err = self:patch_job(job_id, { metadata = metadata_with(job, mark) })
    elseif on_from and not mine then
      if job.state == "disabled" then
        ok, why, err = self:patch_job(job_id, { poolInfo = { poolId = to } })
        if ok then return "disabled" end
      else
        ok, why, err = self:patch_job(job_id, { metadata = metadata_with(job, mark) })
      end
    elseif on_from and mine then
      if job.state == "active" then
        ok, why, err = self:disable_job(job_id, o.disable_tasks)
      elseif job.state == "disabled" then
        ok, why, err = self:patch_job(job_id, { poolInfo = { poolId = to } })
      else
        ok = true                                  -- disabling, enabling: wait
      end
    elseif on_to and ours then
      if job.state == "disabled" then
        ok, why, err = self:enable_job(job_id)
      elseif job.state == "active" or job.state == "enabling" then
        ok, why, err = self:patch_job(job_id, { metadata = metadata_with(job, nil) })
        if ok then return "moved" end
      else
        ok = true
      end
    else
      return true                                  -- not ours to move (any more)
    end
    if not ok then return nil, why, err end
    if core.now() >= o.deadline then
      return nil, ("job %s: not moved to %s after %gs"):format(job_id, to, o.timeout),
        { kind = "timeout", job = job_id }
    end
    if job.state == "disabling" or job.state == "enabling" then parallel.sleep(o.interval) end
  end
end

local HANDOVER_OPTS = set { "tag", "disable_tasks", "timeout", "interval" }

--- client:hand_over_jobs(from, to [, {tag=, disable_tasks=, timeout=, interval=}]) ->
--    {jobs = {ids}, moved = n, disabled = n} | fail
-- Moves every job whose poolInfo names pool 'from' to pool 'to' (disable
-- with disable_tasks, default "requeue"; poolInfo; enable) and waits until
-- each runs there (active, executionInfo.poolId = to). Jobs their owner had
-- disabled are pointed at 'to' and stay disabled. Each job in motion carries
-- the metadata item "azbatch.rollout.handover" = "<tag>|<from>|<to>", so a
-- call with the same tag carries on a move that was cut short, or undoes it
-- (from and to swapped). tag: who moves (default "azbatch").
function Client:hand_over_jobs(from, to, opts)
  check.id(from, 1, "hand_over_jobs")
  check.id(to, 2, "hand_over_jobs")
  opts = check.options(opts, 3, "hand_over_jobs", HANDOVER_OPTS)
  check.seconds(opts.timeout, "timeout", "hand_over_jobs")
  check.seconds(opts.interval, "interval", "hand_over_jobs")
  check.type(opts.tag, "string", "tag", "hand_over_jobs")
  local o = { tag = opts.tag or "azbatch", disable_tasks = opts.disable_tasks or "requeue",
    timeout = opts.timeout or 1800, interval = opts.interval or 2 }
  if not DISABLE[o.disable_tasks] then
    error("bad argument #3 to 'hand_over_jobs' (option 'disable_tasks' must be 'requeue', 'terminate' or 'wait')", 2)
  end
  o.deadline = core.now() + o.timeout
  local all, why, err = collect(self:list_jobs { select = "id,state,poolInfo,metadata" })
  if not all then return nil, why, err end
  local ids = {}
  for _, j in ipairs(all) do
    local pool = type(j.poolInfo) == "table" and type(j.poolInfo.poolId) == "string" and j.poolInfo.poolId:lower()
    if not GONE[j.state] and (pool == from:lower() or (pool == to:lower() and marked_by(j, o.tag))) then
      ids[#ids + 1] = j.id
    end
  end
  local result = { jobs = ids, moved = 0, disabled = 0 }
  local moved = {}
  for _, jid in ipairs(ids) do
    local r
    r, why, err = move_job(self, jid, from, to, o)
    if not r then return nil, why, err end
    if r == "moved" then moved[#moved + 1] = jid end
    if r == "disabled" then result.disabled = result.disabled + 1 end
  end
  -- until they run there: active, and the service says the job runs on 'to'
  for _, jid in ipairs(moved) do
    while true do
      local job, gwhy, gerr = self:get_job(jid, { select = "id,state,executionInfo" })
      if not job then
        if gerr and gerr.code == "JobNotFound" then break end
        return nil, gwhy, gerr
      end
      local ran = type(job.executionInfo) == "table" and job.executionInfo.poolId
      if GONE[job.state] or (job.state == "active" and type(ran) == "string" and ran:lower() == to:lower()) then
        break
      end
      if core.now() >= o.deadline then
        return nil, ("job %s: not running on %s after %gs"):format(jid, to, o.timeout), { kind = "timeout", job = jid }
      end
      parallel.sleep(o.interval)
    end
  end
  result.moved = #moved
  return result
end

return M
