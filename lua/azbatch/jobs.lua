--- Job operations, as methods of azbatch.Client: what a rollout needs to
-- move jobs between pools (list, get, update, disable, enable). Like the
-- pool operations, a mutating call whose answer was lost reads the job back
-- and reports what happened (recovered = true), or err.outcome = "unknown".
-- Bodies are small and checked here; the service checks the rest.
local core = require "azbatch.core"
local client = require "azbatch.client"
local check = require "azbatch.check"

local Client = client.Client
local set = check.set

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

return Client
