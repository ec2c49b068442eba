--- Azure Resource Manager on the client's machinery (one transport, the
-- same credentials with the ARM scope, retries and fail values): the reads
-- a preflight needs and the writes that publish images, with long-running
-- operations followed to the end.
local core = require "azbatch.core"
local client = require "azbatch.client"
local check = require "azbatch.check"
local parallel = require "azbatch.parallel"

local Arm = client.Arm
local set = check.set

local M = {}

-- The api-versions azbatch speaks per resource provider (design.md "On the wire").
M.API = {
  subscriptions = "2022-12-01",
  batch = "2025-06-01",
  gallery = "2025-03-03",
  image = "2024-07-01",
  storage = "2023-05-01",
  skus = "2021-07-01",
}

local function check_id(id, arg, fname)
  check.id(id, arg, fname)
  if id:sub(1, 1) ~= "/" or id:find("[?#]") then
    error(("bad argument #%d to '%s' (a resource id starting with '/' expected, got %q)")
      :format(arg, fname, core.sanitize(id, 200)), 3)
  end
  return id
end

local GET_OPTS = set { "query", "timeout" }

--- arm:get(id, api_version [, {query=, timeout=}]) -> resource, response | fail
function Arm:get(id, api_version, opts)
  check_id(id, 1, "get")
  opts = check.options(opts, 3, "get", GET_OPTS)
  local query = { ["api-version"] = api_version }
  for k, v in pairs(opts.query or {}) do query[k] = v end
  return self:request("GET", id, { query = query, timeout = opts.timeout })
end

--- arm:list(path, api_version [, query]) -> a list (follows nextLink)
function Arm:list(path, api_version, query)
  check_id(path, 1, "list")
  local q = { ["api-version"] = api_version }
  for k, v in pairs(query or {}) do q[k] = v end
  return self:pages(path, q)
end

local TERMINAL = { succeeded = "Succeeded", failed = "Failed", canceled = "Canceled", cancelled = "Canceled" }

--- What an operation-status answer says: "Succeeded", "Failed" or
-- "Canceled" (with the error's code and message, cleaned), or nil while it
-- runs or when the answer says nothing readable. Pure: fuzzed.
function M.operation_state(body)
  if type(body) ~= "table" or type(body.status) ~= "string" then return nil end
  local status = TERMINAL[body.status:lower()]
  if status == "Failed" or status == "Canceled" then
    local e = type(body.error) == "table" and body.error or {}
    return status, core.sanitize(type(e.code) == "string" and e.code or "OperationFailed", 128),
      core.sanitize(type(e.message) == "string" and e.message or status)
  end
  return status
end

-- Follow a long-running operation started by 'resp' until it ends.
-- Returns the final resource (read from 'id'), or fail.
local function follow(self, id, api_version, resp, opts)
  local timeout, interval = opts.timeout or 3600, opts.interval or 5
  local deadline = core.now() + timeout
  local op = resp.headers["azure-asyncoperation"]
  local loc = resp.headers["location"]
  local started = core.now()
  while true do
    local status, why, err
    if op then
      local body, code, message
      body, why, err = self:request("GET", nil, { url = op })
      if not body then return nil, why, err end
      status, code, message = M.operation_state(body)
      if status == "Failed" or status == "Canceled" then
        return nil, ("%s: the operation %s: %s: %s"):format(id, status:lower(), code, message),
          { kind = "api", code = code, message = message, operation = op }
      end
    elseif loc then
      local body, r
      body, r, err = self:request("GET", nil, { url = loc, ok = { 202 } })
      if not body then return nil, r, err end
      if r.status ~= 202 then status = "Succeeded" end
    end
    local resource
    resource, why, err = self:get(id, api_version)
    if not resource then return nil, why, err end
    local props = type(resource) == "table" and type(resource.properties) == "table" and resource.properties or {}
    local state = type(props.provisioningState) == "string" and TERMINAL[props.provisioningState:lower()]
    if not op and not loc then status = state end
    if opts.on_progress then
      opts.on_progress { id = id, status = status or (op and "InProgress") or props.provisioningState,
        provisioningState = props.provisioningState, resource = resource, elapsed = core.now() - started }
    end
    if status == "Succeeded" and (state == nil or state == "Succeeded") then return resource end
    if state == "Failed" or state == "Canceled" then
      return nil, ("%s: provisioning %s"):format(id, state:lower()),
        { kind = "api", code = "Provisioning" .. state, resource = resource }
    end
    if core.now() >= deadline then
      return nil, ("%s: still %s after %gs (the operation goes on)"):format(id,
        core.sanitize(tostring(props.provisioningState or "running"), 64), timeout),
        { kind = "timeout", accepted = true, operation = op or loc }
    end
    local wait = math.min(interval, math.max(0, deadline - core.now()))
    if resp.retry_after then wait = math.min(math.max(wait, resp.retry_after), interval * 4) end
    parallel.sleep(wait)
  end
end

local WRITE_OPTS = set { "wait", "timeout", "interval", "on_progress" }

-- PUT or PATCH a resource; with wait ~= false, follow the operation.
local function write(self, method, id, api_version, body, opts, fname)
  check_id(id, 1, fname)
  if type(body) ~= "table" then
    error(("bad argument #3 to '%s' (table expected, got %s)"):format(fname, type(body)), 3)
  end
  opts = check.options(opts, 4, fname, WRITE_OPTS)
  check.seconds(opts.timeout, "timeout", fname)
  check.seconds(opts.interval, "interval", fname)
  check.type(opts.on_progress, "function", "on_progress", fname)
  local res, resp, err = self:request(method, id, { query = { ["api-version"] = api_version }, body = body })
  if not res then return nil, resp, err end
  if opts.wait == false then return res, resp end
  return follow(self, id, api_version, resp, opts)
end

--- arm:put(id, api_version, body [, {wait=, timeout=, interval=, on_progress=}]) -> resource | fail
function Arm:put(id, api_version, body, opts) return write(self, "PUT", id, api_version, body, opts, "put") end
--- arm:patch(id, api_version, body [, opts]) -> resource | fail
function Arm:patch(id, api_version, body, opts) return write(self, "PATCH", id, api_version, body, opts, "patch") end

--{ Reads a preflight needs

--- arm:subscriptions() -> list of {subscriptionId, displayName, state}
function Arm:subscriptions() return self:list("/subscriptions", M.API.subscriptions) end

--- arm:batch_accounts([subscription]) -> list of Batch account resources
function Arm:batch_accounts(subscription)
  check.id(subscription, 1, "batch_accounts")
  return self:list("/subscriptions/" .. core.url_encode(subscription) .. "/providers/Microsoft.Batch/batchAccounts",
    M.API.batch)
end

--- arm:batch_account(id) -> resource | fail
function Arm:batch_account(id) return self:get(check_id(id, 1, "batch_account"), M.API.batch) end

--- arm:gallery_image(definition_id) -> resource | fail
function Arm:gallery_image(id) return self:get(check_id(id, 1, "gallery_image"), M.API.gallery) end

--- arm:gallery_version(version_id) -> resource with replicationStatus | fail
function Arm:gallery_version(id)
  return self:get(check_id(id, 1, "gallery_version"), M.API.gallery, { query = { ["$expand"] = "ReplicationStatus" } })
end

--- arm:gallery_versions(definition_id) -> list of versions
function Arm:gallery_versions(id)
  return self:list(check_id(id, 1, "gallery_versions") .. "/versions", M.API.gallery)
end

--- arm:managed_image(id) -> resource | fail
function Arm:managed_image(id) return self:get(check_id(id, 1, "managed_image"), M.API.image) end

--- arm:storage_account(id) -> resource | fail
function Arm:storage_account(id) return self:get(check_id(id, 1, "storage_account"), M.API.storage) end

--- arm:storage_accounts(subscription) -> list of storage accounts
function Arm:storage_accounts(subscription)
  check.id(subscription, 1, "storage_accounts")
  return self:list("/subscriptions/" .. core.url_encode(subscription) .. "/providers/Microsoft.Storage/storageAccounts",
    M.API.storage)
end

--- arm:vm_sizes(subscription, location) -> list of Resource SKUs (virtual machines) in the region
function Arm:vm_sizes(subscription, location)
  check.id(subscription, 1, "vm_sizes")
  check.id(location, 2, "vm_sizes")
  return self:list("/subscriptions/" .. core.url_encode(subscription) .. "/providers/Microsoft.Compute/skus",
    M.API.skus, { ["$filter"] = ("location eq '%s'"):format(location) })
end

--}

return M
