--- Pool operations, as methods of azbatch.Client. Every body is validated
-- by the C core before anything is sent. Every mutating operation reports
-- what happened on the service: when an attempt may have taken effect and
-- its answer was lost, the outcome is read back from the pool itself
-- (see "Truthful outcomes" in the README).
local core = require "azbatch.core"
local client = require "azbatch.client"
local check = require "azbatch.check"
local credential = require "azbatch.credential"

local Client = client.Client
local set = check.set

local function pool_path(id, suffix)
  return "/pools/" .. core.url_encode(id) .. (suffix or "")
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

--[[ Truthful outcomes.
A mutating call that failed is looked at once more when an attempt of it
may have taken effect: its own last answer was lost (err.outcome ==
"unknown"), or an earlier attempt's was and this one met the consequence
(PoolBeingDeleted, PoolBeingResized, ConditionNotMet, ...). 'applied' reads
the pool and says whether the operation's effect is there: true (success,
recovered = true), false (the failure stands: it did not happen), or nil
with a message when the read itself failed, or when what it read cannot
tell (a third value, true, says the read answered): outcome "unknown".
A timeout is the one failure after which "not there yet" proves nothing:
the service may still act on the request, so it stays "unknown". ]]
local function settle(self, err, why, applied)
  if not (err.outcome == "unknown" or err.maybe_applied) or self.closed then
    return nil, why, err
  end
  local done, rwhy, answered = applied(err)
  if done then return true end
  if done == nil then
    err.outcome = "unknown"
    if answered then return nil, why .. " (" .. tostring(rwhy) .. ")", err end
    return nil, why .. " (and reading the pool back to check failed: " .. tostring(rwhy) .. ")", err
  end
  if err.kind ~= "timeout" then err.outcome = nil end
  return nil, why, err
end

-- Success result of a mutating call.
local function done(resp, recovered, extra)
  local r = extra or {}
  if resp then
    r.etag, r.request_id, r.attempts = resp.etag, resp.request_id, resp.attempts
    r.client_request_id = resp.client_request_id
  end
  r.recovered = recovered or nil
  return r
end

-- Run a mutating request and settle its outcome with 'applied'.
local function mutate(self, method, path, req, applied)
  local ok, resp, err = self:request(method, path, req)
  if ok then return done(resp) end
  local why = resp
  local r1, r2, r3 = settle(self, err, why, applied)
  if r1 then
    return done(nil, true, { request_id = err.request_id, attempts = err.attempts,
      client_request_id = err.client_request_id })
  end
  return r1, r2, r3
end

local TIMEOUT_ONLY = set { "timeout" }
local CREATE_OPTS = set { "timeout", "arm" }
local IF_MATCH_OPTS = set { "if_match", "timeout" }

--- client:create_pool(spec [, {timeout=, arm=}]) -> {id=, etag=, request_id=, warnings=, node_agent=} | fail
-- spec: a PoolSpec from azbatch.pool_spec or a plain table (validated here).
-- A nodeAgentSKUId left out or "auto" is chosen for the image
-- (client:choose_node_agent; a gallery image's definition is read from ARM,
-- through opts.arm or the client's Entra ID credential); the result says
-- which (node_agent) and why (node_agent_reason).
-- A retried create that meets PoolExists succeeds (recovered = true) when
-- an earlier attempt may have made it and the existing pool has this spec;
-- otherwise, and always on a first attempt, the conflict is returned. The
-- create goes on a fresh connection, because libcurl silently re-sends a
-- request whose reused connection died unanswered: a first attempt is
-- sent only once.
function Client:create_pool(spec, opts)
  client.check_open(self)
  if type(spec) ~= "table" then
    error(("bad argument #1 to 'create_pool' (table expected, got %s)"):format(type(spec)), 2)
  end
  opts = check.options(opts, 2, "create_pool", CREATE_OPTS)
  -- a node agent left out (or "auto") is chosen for the image, and said so
  local vmc0 = type(spec.virtualMachineConfiguration) == "table" and spec.virtualMachineConfiguration
  local chosen, reason
  if vmc0 and vmc0.imageReference ~= nil and (vmc0.nodeAgentSKUId == nil or vmc0.nodeAgentSKUId == "auto") then
    local cwhy, cerr
    chosen, cwhy, cerr = self:choose_node_agent(vmc0.imageReference, { arm = opts.arm })
    if not chosen then
      if type(cerr) == "table" then cerr.field = cerr.field or "pool.virtualMachineConfiguration.nodeAgentSKUId" end
      return nil, "pool.virtualMachineConfiguration.nodeAgentSKUId: " .. tostring(cwhy), cerr
    end
    reason = cwhy
    local copy, vmc = {}, {}
    for k, v in pairs(spec) do copy[k] = v end
    for k, v in pairs(vmc0) do vmc[k] = v end
    vmc.nodeAgentSKUId = chosen
    copy.virtualMachineConfiguration = vmc
    spec = copy
  end
  local body, warnings, err = core.validate("pool", spec)
  if not body then return nil, warnings, err end
  local vmc = body.virtualMachineConfiguration
  local image = vmc and vmc.imageReference
  if image and image.virtualMachineImageId and credential.is_shared_key(self.credential) then
    local field = "pool.virtualMachineConfiguration.imageReference.virtualMachineImageId"
    return nil, field .. ": Batch refuses Shared Key for pools from gallery or managed images (\""
      .. SHARED_KEY_REFUSED .. "\"); use a Microsoft Entra ID credential (azbatch.credential.default())",
      { kind = "auth", field = field, code = "SharedKeyNotAllowed" }
  end
  local text, jwhy, jerr = core.json_encode(body, "pool")
  if not text then return nil, jwhy, jerr end
  local ok, resp
  ok, resp, err = self:request("POST", "/pools", { body = text, timeout = opts.timeout, fresh_connect = true })
  if ok then
    return { id = body.id, etag = resp.etag, request_id = resp.request_id, attempts = resp.attempts,
      client_request_id = resp.client_request_id, warnings = warnings, node_agent = chosen,
      node_agent_reason = reason }
  end
  local why = resp
  local function applied()
    local pool, gwhy, gerr = self:get_pool(body.id)
    if pool then return same(body, pool) end
    if gerr and gerr.code == "PoolNotFound" then return false end
    return nil, gwhy
  end
  if err.kind == "api" and err.code == "PoolExists" and not err.maybe_applied then
    return nil, why, err                      -- someone else's pool
  end
  local r1, r2, r3 = settle(self, err, why, applied)
  if r1 then
    return { id = body.id, request_id = err.request_id, attempts = err.attempts, recovered = true,
      client_request_id = err.client_request_id, warnings = warnings, node_agent = chosen,
      node_agent_reason = reason }
  end
  return r1, r2, r3
end

local GET_OPTS = set { "select", "expand", "timeout", "if_none_match" }

--- client:get_pool(id [, {select=, expand=}]) -> pool table, response | fail
function Client:get_pool(id, opts)
  check.id(id, 1, "get_pool")
  opts = check.options(opts, 2, "get_pool", GET_OPTS)
  local query = (opts.select ~= nil or opts.expand ~= nil) and { ["$select"] = opts.select, ["$expand"] = opts.expand }
    or nil
  return self:request("GET", pool_path(id),
    { query = query, timeout = opts.timeout, if_none_match = opts.if_none_match })
end

local LIST_POOLS_OPTS = set { "filter", "select", "expand", "maxresults" }

--- client:list_pools([{filter=, select=, expand=, maxresults=}]) -> list of pools
-- (iterate with for-in, raising on failure; or azbatch.collect(...))
function Client:list_pools(opts)
  opts = check.options(opts, 1, "list_pools", LIST_POOLS_OPTS)
  return self:pages("/pools", { ["$filter"] = opts.filter, ["$select"] = opts.select,
    ["$expand"] = opts.expand, maxresults = opts.maxresults })
end

--- client:pool_exists(id) -> true | false | fail
function Client:pool_exists(id, opts)
  check.id(id, 1, "pool_exists")
  opts = check.options(opts, 2, "pool_exists", TIMEOUT_ONLY)
  local ok, resp, err = self:request("HEAD", pool_path(id), { ok = { 404 }, timeout = opts.timeout })
  if not ok then return nil, resp, err end
  return resp.status == 200
end

--- client:delete_pool(id [, {if_match=}]) -> {etag=, request_id=, recovered=} | fail
-- On a retry after a lost answer, PoolBeingDeleted (or the pool found
-- deleting) means an earlier attempt deleted it: success, recovered =
-- true. A pool gone without a trace tells nothing: an earlier attempt
-- deleted it, or it was never there; the fail is PoolNotFound with outcome
-- "unknown" (a caller that saw the pool before the call knows which).
function Client:delete_pool(id, opts)
  check.id(id, 1, "delete_pool")
  opts = check.options(opts, 2, "delete_pool", IF_MATCH_OPTS)
  return mutate(self, "DELETE", pool_path(id), { if_match = opts.if_match, timeout = opts.timeout }, function(last)
    if last.code == "PoolBeingDeleted" then return true end
    local pool, why, err = self:get_pool(id, { select = "id,state" })
    if pool then return pool.state == "deleting" end
    if err and err.code == "PoolNotFound" then
      return nil, "the pool is gone: an earlier attempt of this call deleted it, or it was not there", true
    end
    return nil, why
  end)
end

-- Does the pool hold these properties (a patch or replace took effect)?
local function holds(self, id, props)
  return function()
    local pool, why = self:get_pool(id)
    if not pool then return nil, why end
    return same(props, pool)
  end
end

--- client:patch_pool(id, properties [, {if_match=}]) -> {etag=, ...} | fail
function Client:patch_pool(id, props, opts)
  check.id(id, 1, "patch_pool")
  opts = check.options(opts, 3, "patch_pool", IF_MATCH_OPTS)
  local body, why, err = body_of("pool.update", props)
  if not body then return nil, why, err end
  return mutate(self, "PATCH", pool_path(id), { body = body, kind = "pool.update", if_match = opts.if_match,
    timeout = opts.timeout }, holds(self, id, body))
end

--- client:replace_pool_properties(id, {startTask=, applicationPackageReferences=, metadata=}) -> {...} | fail
function Client:replace_pool_properties(id, props, opts)
  check.id(id, 1, "replace_pool_properties")
  opts = check.options(opts, 3, "replace_pool_properties", TIMEOUT_ONLY)
  local body, why, err = body_of("pool.replace", props)
  if not body then return nil, why, err end
  local want = { applicationPackageReferences = body.applicationPackageReferences, metadata = body.metadata,
    startTask = body.startTask }
  return mutate(self, "POST", pool_path(id, "/updateproperties"), { body = body, kind = "pool.replace",
    timeout = opts.timeout }, function()
    local pool, gwhy = self:get_pool(id)
    if not pool then return nil, gwhy end
    if body.startTask == nil and pool.startTask ~= nil then return false end
    -- an empty list is absent in the pool's JSON
    local function list_same(w, h) return (#w == 0 and (h == nil or #h == 0)) or same(w, h) end
    return list_same(want.applicationPackageReferences, pool.applicationPackageReferences)
      and list_same(want.metadata, pool.metadata) and (want.startTask == nil or same(want.startTask, pool.startTask))
  end)
end

-- Are the pool's targets the requested ones (a resize took effect)?
local function has_targets(self, id, want)
  return function()
    local pool, why = self:get_pool(id, { select = "id,state,targetDedicatedNodes,targetLowPriorityNodes,"
      .. "enableAutoScale" })
    if not pool then return nil, why end
    if pool.enableAutoScale then return false end
    return (want.targetDedicatedNodes == nil or pool.targetDedicatedNodes == want.targetDedicatedNodes)
      and (want.targetLowPriorityNodes == nil or pool.targetLowPriorityNodes == want.targetLowPriorityNodes)
  end
end

--- client:resize_pool(id, {targetDedicatedNodes=, ...} [, {if_match=}]) -> {...} | fail
-- On a retry, PoolBeingResized (the earlier attempt's resize) succeeds when
-- the pool's targets are the requested ones.
function Client:resize_pool(id, resize, opts)
  check.id(id, 1, "resize_pool")
  opts = check.options(opts, 3, "resize_pool", IF_MATCH_OPTS)
  local body, why, err = body_of("pool.resize", resize)
  if not body then return nil, why, err end
  return mutate(self, "POST", pool_path(id, "/resize"), { body = body, kind = "pool.resize",
    if_match = opts.if_match, timeout = opts.timeout }, has_targets(self, id, body))
end

--- client:stop_resize_pool(id [, {if_match=}]) -> {...} | fail
function Client:stop_resize_pool(id, opts)
  check.id(id, 1, "stop_resize_pool")
  opts = check.options(opts, 2, "stop_resize_pool", IF_MATCH_OPTS)
  return mutate(self, "POST", pool_path(id, "/stopresize"), { if_match = opts.if_match, timeout = opts.timeout },
    function()
      local pool, why = self:get_pool(id, { select = "id,allocationState" })
      if not pool then return nil, why end
      return pool.allocationState == "stopping" or pool.allocationState == "steady"
    end)
end

-- Is autoscale on (with this formula and interval) or off?
local function autoscale_is(self, id, on, settings)
  return function()
    local pool, why = self:get_pool(id, { select = "id,enableAutoScale,autoScaleFormula,autoScaleEvaluationInterval" })
    if not pool then return nil, why end
    if not on then return pool.enableAutoScale == false end
    return pool.enableAutoScale == true
      and (settings.autoScaleFormula == nil or pool.autoScaleFormula == settings.autoScaleFormula)
      and (settings.autoScaleEvaluationInterval == nil
        or same(settings.autoScaleEvaluationInterval, pool.autoScaleEvaluationInterval, "autoScaleEvaluationInterval"))
  end
end

--- client:enable_autoscale(id, {autoScaleFormula=, autoScaleEvaluationInterval=} [, {if_match=}]) -> {...} | fail
-- On a retry, TooManyEnableAutoScaleRequests (the service's 30-second rule,
-- met because the earlier attempt went through) succeeds when autoscale is
-- on with this formula.
function Client:enable_autoscale(id, settings, opts)
  check.id(id, 1, "enable_autoscale")
  opts = check.options(opts, 3, "enable_autoscale", IF_MATCH_OPTS)
  local body, why, err = body_of("pool.enableautoscale", settings)
  if not body then return nil, why, err end
  return mutate(self, "POST", pool_path(id, "/enableautoscale"), { body = body, kind = "pool.enableautoscale",
    if_match = opts.if_match, timeout = opts.timeout }, autoscale_is(self, id, true, body))
end

--- client:disable_autoscale(id) -> {...} | fail
function Client:disable_autoscale(id, opts)
  check.id(id, 1, "disable_autoscale")
  opts = check.options(opts, 2, "disable_autoscale", TIMEOUT_ONLY)
  return mutate(self, "POST", pool_path(id, "/disableautoscale"), { timeout = opts.timeout },
    autoscale_is(self, id, false))
end

--- client:evaluate_autoscale(id, formula) -> AutoScaleRun table | fail
function Client:evaluate_autoscale(id, formula, opts)
  check.id(id, 1, "evaluate_autoscale")
  opts = check.options(opts, 3, "evaluate_autoscale", TIMEOUT_ONLY)
  local body, why, err = body_of("pool.evaluateautoscale", { autoScaleFormula = formula })
  if not body then return nil, why, err end
  return self:request("POST", pool_path(id, "/evaluateautoscale"),
    { body = body, kind = "pool.evaluateautoscale", timeout = opts.timeout })
end

--- client:remove_nodes(id, {nodeList=, resizeTimeout=, nodeDeallocationOption=} [, {if_match=}]) -> {...} | fail
-- On a retry, the nodes being gone or leaving the pool means an earlier
-- attempt removed them.
function Client:remove_nodes(id, removal, opts)
  check.id(id, 1, "remove_nodes")
  opts = check.options(opts, 3, "remove_nodes", IF_MATCH_OPTS)
  local body, why, err = body_of("pool.removenodes", removal)
  if not body then return nil, why, err end
  return mutate(self, "POST", pool_path(id, "/removenodes"), { body = body, kind = "pool.removenodes",
    if_match = opts.if_match, timeout = opts.timeout }, function()
    local left = {}
    for _, n in ipairs(body.nodeList) do left[n] = true end
    local nodes, lwhy = client.collect(self:list_nodes(id, { select = "id,state" }))
    if not nodes then return nil, lwhy end
    for _, n in ipairs(nodes) do
      if left[n.id] and n.state ~= "leavingpool" then return false end
    end
    return true
  end)
end

local LIST_NODES_OPTS = set { "filter", "select", "maxresults" }

--- client:list_nodes(pool_id [, {filter=, select=, maxresults=}]) -> list of nodes
function Client:list_nodes(id, opts)
  check.id(id, 1, "list_nodes")
  opts = check.options(opts, 2, "list_nodes", LIST_NODES_OPTS)
  return self:pages(pool_path(id, "/nodes"), { ["$filter"] = opts.filter, ["$select"] = opts.select,
    maxresults = opts.maxresults })
end

local GET_NODE_OPTS = set { "select", "timeout" }

--- client:get_node(pool_id, node_id [, {select=}]) -> node | fail
function Client:get_node(id, node_id, opts)
  check.id(id, 1, "get_node")
  check.id(node_id, 2, "get_node")
  opts = check.options(opts, 3, "get_node", GET_NODE_OPTS)
  return self:request("GET", pool_path(id, "/nodes/" .. core.url_encode(node_id)),
    { query = { ["$select"] = opts.select }, timeout = opts.timeout })
end

local FILTER_OPTS = set { "filter", "maxresults" }

--- client:list_supported_images([{filter=, maxresults=}]) -> list of images
function Client:list_supported_images(opts)
  opts = check.options(opts, 1, "list_supported_images", FILTER_OPTS)
  return self:pages("/supportedimages", { ["$filter"] = opts.filter, maxresults = opts.maxresults })
end

--- client:list_pool_node_counts([{filter=, maxresults=}]) -> list of per-pool counts
function Client:list_pool_node_counts(opts)
  opts = check.options(opts, 1, "list_pool_node_counts", FILTER_OPTS)
  return self:pages("/nodecounts", { ["$filter"] = opts.filter, maxresults = opts.maxresults })
end

return Client
