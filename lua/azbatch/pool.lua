--- Pool operations, as methods of azbatch.Client. Every body is validated
-- by the C core before anything is sent.
local core = require "azbatch.core"
local client = require "azbatch.client"
local credential = require "azbatch.credential"

local Client = client.Client

local function check_id(id, what)
  if type(id) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(what, type(id)), 3)
  end
end

local function pool_path(id, suffix)
  return "/pools/" .. core.url_encode(id) .. (suffix or "")
end

local function opts_table(opts, what)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #2 to '%s' (table expected, got %s)"):format(what, type(opts)), 3)
  end
  return opts or {}
end

-- Validated body of the given kind, or fail.
local function body_of(kind, t)
  local body, warnings, err = core.validate(kind, t)
  if body == nil then return nil, warnings, err end
  return body
end

local SHARED_KEY_REFUSED = "The specified type of authentication SharedKey is not allowed when external "
  .. "resources of type Compute are linked."

-- Deep comparison of what was asked with what the service holds:
-- every field of 'want' must be in 'have'; strings compare ignoring case
-- (the service keeps ids case-insensitively), durations by length.
local DURATION_FIELDS = { resizeTimeout = true, autoScaleEvaluationInterval = true }
local function same(want, have, key)
  if type(want) == "table" then
    if type(have) ~= "table" then return false end
    for k, v in pairs(want) do
      if not same(v, have[k], k) then return false end
    end
    return true
  end
  if DURATION_FIELDS[key] and type(want) == "string" and type(have) == "string" then
    return core.parse_duration(want) == core.parse_duration(have)
  end
  if type(want) == "string" and type(have) == "string" then return want:lower() == have:lower() end
  return want == have
end

--- client:create_pool(spec [, opts]) -> {id=, etag=, request_id=, warnings=} | fail
-- spec: a PoolSpec from azbatch.pool_spec or a plain table (validated here).
-- A retried create that meets PoolExists succeeds (recovered = true) when
-- the existing pool has this spec: an earlier attempt made it. Otherwise,
-- and always on a first attempt, the conflict is returned. The create goes
-- on a fresh connection, because libcurl silently re-sends a request whose
-- reused connection died unanswered: a first attempt is sent only once.
function Client:create_pool(spec, opts)
  client.check_open(self)
  if type(spec) ~= "table" then
    error(("bad argument #1 to 'create_pool' (table expected, got %s)"):format(type(spec)), 2)
  end
  opts = opts_table(opts, "create_pool")
  local warnings
  if getmetatable(spec) == nil or tostring(getmetatable(spec).__name) ~= "azbatch.PoolSpec" then
    local why, err
    spec, why, err = core.pool_spec(spec)
    if not spec then return nil, why, err end
    warnings = why
  end
  local vmc = spec.virtualMachineConfiguration
  local image = vmc and vmc.imageReference
  if image and image.virtualMachineImageId and credential.is_shared_key(self.credential) then
    local field = "pool.virtualMachineConfiguration.imageReference.virtualMachineImageId"
    return nil, field .. ": Batch refuses Shared Key for pools from gallery or managed images (\""
      .. SHARED_KEY_REFUSED .. "\"); use a Microsoft Entra ID credential (azbatch.credential.default())",
      { kind = "auth", field = field, code = "SharedKeyNotAllowed" }
  end
  local ok, why, err = self:request("POST", "/pools", { body = spec:json(), timeout = opts.timeout,
    fresh_connect = true })
  if ok then
    return { id = spec.id, etag = why.etag, request_id = why.request_id, attempts = why.attempts,
      warnings = warnings }
  end
  if err.kind == "api" and err.code == "PoolExists" and (err.attempts or 1) > 1 then
    local pool = self:get_pool(spec.id)
    if pool and same(spec, pool) then
      return { id = spec.id, etag = pool.eTag, request_id = err.request_id, attempts = err.attempts,
        recovered = true, warnings = warnings }
    end
  end
  return nil, why, err
end

--- client:get_pool(id [, {select=, expand=}]) -> pool table, response | fail
function Client:get_pool(id, opts)
  check_id(id, "get_pool")
  opts = opts_table(opts, "get_pool")
  return self:request("GET", pool_path(id), { query = { ["$select"] = opts.select, ["$expand"] = opts.expand },
    timeout = opts.timeout, if_none_match = opts.if_none_match })
end

--- client:list_pools([{filter=, select=, expand=, maxresults=}]) -> iterator of pools
function Client:list_pools(opts)
  opts = opts_table(opts, "list_pools")
  return self:pages("/pools", { ["$filter"] = opts.filter, ["$select"] = opts.select,
    ["$expand"] = opts.expand, maxresults = opts.maxresults })
end

--- client:pool_exists(id) -> true | false | fail
function Client:pool_exists(id)
  check_id(id, "pool_exists")
  local ok, resp, err = self:request("HEAD", pool_path(id), { ok = { 404 } })
  if not ok then return nil, resp, err end
  return resp.status == 200
end

--- client:delete_pool(id [, {if_match=}]) -> true, response | fail
function Client:delete_pool(id, opts)
  check_id(id, "delete_pool")
  opts = opts_table(opts, "delete_pool")
  return self:request("DELETE", pool_path(id), { if_match = opts.if_match })
end

--- client:patch_pool(id, properties [, {if_match=}]) -> true, response | fail
function Client:patch_pool(id, props, opts)
  check_id(id, "patch_pool")
  opts = opts_table(opts, "patch_pool")
  local body, why, err = body_of("pool.update", props)
  if not body then return nil, why, err end
  return self:request("PATCH", pool_path(id), { body = body, kind = "pool.update", if_match = opts.if_match })
end

--- client:replace_pool_properties(id, {startTask=, applicationPackageReferences=, metadata=}) -> true | fail
function Client:replace_pool_properties(id, props)
  check_id(id, "replace_pool_properties")
  local body, why, err = body_of("pool.replace", props)
  if not body then return nil, why, err end
  return self:request("POST", pool_path(id, "/updateproperties"), { body = body, kind = "pool.replace" })
end

--- client:resize_pool(id, {targetDedicatedNodes=, ...} [, {if_match=}]) -> true | fail
function Client:resize_pool(id, resize, opts)
  check_id(id, "resize_pool")
  opts = opts_table(opts, "resize_pool")
  local body, why, err = body_of("pool.resize", resize)
  if not body then return nil, why, err end
  return self:request("POST", pool_path(id, "/resize"), { body = body, kind = "pool.resize",
    if_match = opts.if_match })
end

--- client:stop_resize_pool(id) -> true | fail
function Client:stop_resize_pool(id)
  check_id(id, "stop_resize_pool")
  return self:request("POST", pool_path(id, "/stopresize"))
end

--- client:enable_autoscale(id, {autoScaleFormula=, autoScaleEvaluationInterval=}) -> true | fail
function Client:enable_autoscale(id, settings)
  check_id(id, "enable_autoscale")
  local body, why, err = body_of("pool.enableautoscale", settings)
  if not body then return nil, why, err end
  return self:request("POST", pool_path(id, "/enableautoscale"), { body = body, kind = "pool.enableautoscale" })
end

--- client:disable_autoscale(id) -> true | fail
function Client:disable_autoscale(id)
  check_id(id, "disable_autoscale")
  return self:request("POST", pool_path(id, "/disableautoscale"))
end

--- client:evaluate_autoscale(id, formula) -> AutoScaleRun table | fail
function Client:evaluate_autoscale(id, formula)
  check_id(id, "evaluate_autoscale")
  local body, why, err = body_of("pool.evaluateautoscale", { autoScaleFormula = formula })
  if not body then return nil, why, err end
  return self:request("POST", pool_path(id, "/evaluateautoscale"),
    { body = body, kind = "pool.evaluateautoscale" })
end

--- client:remove_nodes(id, {nodeList=, resizeTimeout=, nodeDeallocationOption=}) -> true | fail
function Client:remove_nodes(id, removal)
  check_id(id, "remove_nodes")
  local body, why, err = body_of("pool.removenodes", removal)
  if not body then return nil, why, err end
  return self:request("POST", pool_path(id, "/removenodes"), { body = body, kind = "pool.removenodes" })
end

--- client:list_nodes(pool_id [, {filter=, select=, maxresults=}]) -> iterator of nodes
function Client:list_nodes(id, opts)
  check_id(id, "list_nodes")
  opts = opts_table(opts, "list_nodes")
  return self:pages(pool_path(id, "/nodes"), { ["$filter"] = opts.filter, ["$select"] = opts.select,
    maxresults = opts.maxresults })
end

--- client:get_node(pool_id, node_id [, {select=}]) -> node | fail
function Client:get_node(id, node_id, opts)
  check_id(id, "get_node")
  opts = opts_table(opts, "get_node")
  return self:request("GET", pool_path(id, "/nodes/" .. core.url_encode(node_id)),
    { query = { ["$select"] = opts.select } })
end

--- client:list_supported_images([{filter=, maxresults=}]) -> iterator of images
function Client:list_supported_images(opts)
  opts = opts_table(opts, "list_supported_images")
  return self:pages("/supportedimages", { ["$filter"] = opts.filter, maxresults = opts.maxresults })
end

--- client:list_pool_node_counts([{filter=, maxresults=}]) -> iterator of per-pool counts
function Client:list_pool_node_counts(opts)
  opts = opts_table(opts, "list_pool_node_counts")
  return self:pages("/nodecounts", { ["$filter"] = opts.filter, maxresults = opts.maxresults })
end

--- client:wait_pool(id [, opts]) -> pool | fail
-- Waits until the pool's allocation state is steady. Resize errors that
-- appeared during the wait end it with kind "api" (code from the error);
-- errors older than the wait (left from an earlier resize) are ignored.
-- opts: timeout (seconds, default 1800), interval (default 5),
-- on_progress(pool) called after each poll.
function Client:wait_pool(id, opts)
  check_id(id, "wait_pool")
  opts = opts_table(opts, "wait_pool")
  local deadline = core.now() + (opts.timeout or 1800)
  local interval = opts.interval or 5
  local since                                -- allocationStateTransitionTime at the start
  while true do
    local pool, why, err = self:get_pool(id)
    if not pool then return nil, why, err end
    since = since or pool.allocationStateTransitionTime
    if opts.on_progress then opts.on_progress(pool) end
    if pool.state == "deleting" then
      return nil, ("pool %s: is being deleted"):format(id), { kind = "api", code = "PoolBeingDeleted" }
    end
    if pool.allocationState == "steady" then
      local errors = pool.resizeErrors
      local fresh = type(errors) == "table" and #errors > 0
        and pool.allocationStateTransitionTime ~= since
      if fresh then
        local first = errors[1]
        return nil, ("pool %s: resize error %s: %s"):format(id, tostring(first.code), tostring(first.message)),
          { kind = "api", code = first.code, message = first.message, values = first.values, pool = pool }
      end
      return pool
    end
    if core.now() >= deadline then
      return nil, ("pool %s: still %s after %gs"):format(id, tostring(pool.allocationState), opts.timeout or 1800),
        { kind = "timeout", pool = pool }
    end
    require("azbatch.parallel").sleep(math.min(interval, math.max(0, deadline - core.now())), self.http)
  end
end

return Client
