--- The pool verbs, as az batch pool has them (create, show, list, delete,
-- resize, set, reset, autoscale, node-counts) and azbatch's own (wait,
-- exists, plan). Each run(ctx, o) returns the exit status; ctx is the
-- context of cli.lua (connect, emit, fail, usage_error, progress).
local azbatch = require "azbatch"
local body = require "azbatch.cli_body"
local output = require "azbatch.cli_output"
local with = require("azbatch.args").with

local M = {}

local F = body.FLAG
local POOL_ID, IF_MATCH, WAIT = body.POOL_ID, body.IF_MATCH, body.WAIT

-- {==================================================================
-- Views: the columns of --output table and tsv
-- ===================================================================

local cell = output.cell_text

-- A table is read by people: a gallery image id is shown as
-- gallery/definition[/version], a managed image by its name (JSON keeps ids).
local function short_id(id)
  local parts = {}
  for part in id:gmatch("[^/]+") do parts[#parts + 1] = part end
  for i = 1, #parts - 1 do
    local key = parts[i]:lower()
    if key == "galleries" and parts[i + 2] and parts[i + 2]:lower() == "images" and parts[i + 3] then
      local out = parts[i + 1] .. "/" .. parts[i + 3]
      if parts[i + 4] and parts[i + 4]:lower() == "versions" and parts[i + 5] then out = out .. "/" .. parts[i + 5] end
      return out
    elseif key == "images" and parts[i - 1] and parts[i - 1]:lower() == "microsoft.compute" then
      return parts[i + 1]
    end
  end
  return id
end

local function image_text(pool)
  local vmc = type(pool.virtualMachineConfiguration) == "table" and pool.virtualMachineConfiguration
  local ref = vmc and vmc.imageReference
  if type(ref) == "string" then return ref end
  if type(ref) ~= "table" then return "" end
  local id = ref.virtualMachineImageId or ref.sharedGalleryImageId or ref.communityGalleryImageId
  if id then return short_id(id) end
  return table.concat({ ref.publisher or "", ref.offer or "", ref.sku or "", ref.version or "latest" }, ":")
end
M.image_text = image_text

local function of(current, target)
  return ("%s/%s"):format(cell(current or 0), cell(target or 0))
end

M.POOL_VIEW = { columns = {
  { "Id", function(p) return p.id end },
  { "State", function(p) return p.state end },
  { "Allocation", function(p) return p.allocationState end },
  { "VmSize", function(p) return p.vmSize end },
  { "Dedicated", function(p) return of(p.currentDedicatedNodes, p.targetDedicatedNodes) end },
  { "LowPriority", function(p) return of(p.currentLowPriorityNodes, p.targetLowPriorityNodes) end },
  { "Image", image_text },
} }
local POOL_VIEW = M.POOL_VIEW

local CREATED_VIEW = { columns = {
  { "Id", function(r) return r.id end },
  { "ETag", function(r) return r.eTag end },
  { "Recovered", function(r) return tostring(r.recovered) end },
  { "RequestId", function(r) return r.requestId end },
} }
local OPERATION_VIEW = { columns = {
  { "Id", function(r) return r.id end },
  { "Operation", function(r) return r.operation end },
  { "RequestId", function(r) return r.requestId end },
} }
local EXISTS_VIEW = { columns = {
  { "Id", function(r) return r.id end },
  { "Exists", function(r) return tostring(r.exists) end },
}, rows = function(v) return v end }

local function sum(row, state)
  local n = 0
  for _, part in ipairs { "dedicated", "lowPriority" } do
    local c = type(row[part]) == "table" and row[part] or {}
    n = n + (math.tointeger(c[state]) or 0)
  end
  return n
end

local COUNTS_VIEW = { columns = {
  { "PoolId", function(r) return r.poolId end },
  { "Dedicated", function(r) return type(r.dedicated) == "table" and r.dedicated.total or 0 end },
  { "LowPriority", function(r) return type(r.lowPriority) == "table" and r.lowPriority.total or 0 end },
  { "Idle", function(r) return sum(r, "idle") end },
  { "Running", function(r) return sum(r, "running") end },
  { "Starting", function(r) return sum(r, "creating") + sum(r, "starting") + sum(r, "waitingForStartTask") end },
  { "Unusable", function(r) return sum(r, "unusable") end },
  { "StartTaskFailed", function(r) return sum(r, "startTaskFailed") end },
  { "LeavingPool", function(r) return sum(r, "leavingPool") end },
} }

local function results_text(run)
  return type(run) == "table" and type(run.results) == "string" and run.results or ""
end
local EVALUATE_VIEW = { columns = {
  { "Timestamp", function(r) return r.timestamp end },
  { "Results", results_text },
  { "Error", function(r)
    return type(r.error) == "table" and ((r.error.code or "") .. ": " .. (r.error.message or "")) or nil
  end },
} }

-- }==================================================================


-- {==================================================================
-- Helpers
-- ===================================================================

-- The pool as it is now, for verbs that print it after a change.
local function show_pool(ctx, c, id)
  local pool, why, e = c:get_pool(id)
  if not pool then return ctx:fail(why, e) end
  return ctx:emit(pool, POOL_VIEW)
end

--- Wait until the pool is ready (or allocated), showing progress; then
-- print the pool. Returns the exit status.
-- since: the pool's allocationStateTransitionTime before the change (resize
-- errors older than it are stale); stopped = true: a ResizeStopped error is
-- what was asked for.
local function wait_and_show(ctx, c, id, o, since, stopped)
  local prog = ctx:progress()
  local pool, why, e = c:wait_pool(id, { timeout = o.timeout, interval = o.interval, nodes = o.nodes,
    max_unusable = o.maxUnusable, max_start_task_failed = o.maxStartTaskFailed, since = since,
    on_progress = function(p) prog:pool(p) end })
  prog:done()
  if not pool and not (stopped and type(e) == "table" and e.code == "ResizeStopped") then
    return ctx:fail(why, e)
  end
  return show_pool(ctx, c, id)
end
M.wait_and_show = wait_and_show

local function wait_deleted(ctx, c, id, o)
  local prog = ctx:progress()
  local ok, why, e = c:wait_pool_deleted(id, { timeout = o.timeout, interval = o.interval,
    on_progress = function(p) prog:deleting(p) end })
  prog:done()
  if not ok then return ctx:fail(why, e) end
  return ctx:emit({ id = id, deleted = true }, { columns = {
    { "Id", function(r) return r.id end }, { "Deleted", function(r) return tostring(r.deleted) end } } })
end

local function has_wait_only_flags(ctx, o)
  if o.wait then return false end
  for _, f in ipairs(body.WAIT_FLAGS) do
    if o[f.key] ~= nil then
      ctx:usage_error(("--%s is for waiting: give --wait with it"):format(f.name))
      return true
    end
  end
  return false
end

--- Was the only problem of a pool body the missing node agent (so that
-- one can be chosen for its image)?
local function only_agent_missing(b, e)
  local vmc = type(b.virtualMachineConfiguration) == "table" and b.virtualMachineConfiguration
  if not (vmc and vmc.imageReference ~= nil and vmc.nodeAgentSKUId == nil) then return false end
  for _, p in ipairs(type(e) == "table" and e.errors or {}) do
    if p.field ~= "pool.virtualMachineConfiguration.nodeAgentSKUId" then return false end
  end
  return true
end

local getenv = azbatch.credential.getenv

--- The checked pool spec from the flags and --json-file; a node agent is
-- chosen for the image when none is given (said on stderr). Shared with
-- preflight. Returns spec, or nil and the exit status.
function M.pool_spec(ctx, o, opts)
  local b, notes = body.build(o, body.CREATE, { what = "the pool body", arm = true })
  if not b then return nil, ctx:fail(notes) end
  for _, n in ipairs(notes) do ctx:note(n) end
  local vmc0 = type(b.virtualMachineConfiguration) == "table" and b.virtualMachineConfiguration
  if vmc0 and vmc0.nodeAgentSKUId == "auto" then vmc0.nodeAgentSKUId = nil end    -- "choose", as the library reads it
  local spec, warnings, e = azbatch.pool_spec(b)
  if not spec and only_agent_missing(b, e) then
    if not (o.accountEndpoint or getenv(ctx.env, "AZURE_BATCH_ENDPOINT")) then
      return nil, ctx:fail(warnings .. " (with no account to ask, azbatch cannot choose one: pass --node-agent-sku-id)")
    end
    local c, status = ctx:connect()
    if not c then return nil, status end
    local aopts, ostatus = ctx:arm_opts()
    if not aopts then return nil, ostatus end
    local sku, reason, cerr = c:choose_node_agent(b.virtualMachineConfiguration.imageReference, { arm = aopts.arm })
    if not sku then return nil, ctx:fail(reason, cerr) end
    ctx:note(("no --node-agent-sku-id given: chose '%s' (%s)"):format(sku, reason))
    b.virtualMachineConfiguration.nodeAgentSKUId = sku
    spec, warnings, e = azbatch.pool_spec(b)
  end
  if not spec then return nil, ctx:fail(warnings, e) end
  if not (opts and opts.quiet) then ctx:warnings(warnings) end
  return spec
end

-- }==================================================================


local commands = {}
M.commands = commands
local function command(t) commands[#commands + 1] = t end

command {
  name = "pool create", account = true,
  usage = "azbatch pool create [--json-file FILE] [--id ID --vm-size SIZE --image IMAGE "
    .. "[--node-agent-sku-id SKU] ...] [--dry-run] [--wait]",
  summary = "Create a pool. The body is validated locally first; without --node-agent-sku-id one is chosen "
    .. "for the image (said on stderr). --dry-run prints the exact JSON body that would be sent and changes "
    .. "nothing. --json-file takes the REST body or the ARM/portal pool resource; flags override its fields. "
    .. "--wait waits until the nodes are ready, with progress, and prints the pool.",
  flags = with({ body.JSON_FILE, { name = "dry-run", key = "dryRun", kind = "flag",
      help = "validate and print the request body byte for byte; change nothing" } },
    body.CREATE, body.REMOVED_FLAGS, WAIT, body.WAIT_FLAGS),
  run = function(ctx, o)
    if has_wait_only_flags(ctx, o) then return 2 end
    local spec, status = M.pool_spec(ctx, o)
    if not spec then return status end
    if o.dryRun then
      local text = assert(spec:json())
      local fmt = o.output or "json"
      if ctx.query or fmt == "table" or fmt == "tsv" then
        return ctx:emit(assert(azbatch.json.decode(text)), POOL_VIEW)
      end
      if fmt ~= "none" then ctx.out:write(text, "\n") end     -- the request body exactly as it would be sent
      return 0
    end
    local c, cstatus = ctx:connect()
    if not c then return cstatus end
    local res, msg, e = c:create_pool(spec)
    if not res then return ctx:fail(msg, e) end
    if o.wait then return wait_and_show(ctx, c, spec.id, o) end
    return ctx:emit({ id = res.id, eTag = res.etag, requestId = res.request_id, recovered = res.recovered == true },
      CREATED_VIEW)
  end,
}

command {
  name = "pool show", account = true,
  usage = "azbatch pool show --pool-id ID [--select FIELDS] [--expand stats]",
  summary = "Show a pool. Prints the pool as the service returns it.",
  flags = { POOL_ID, body.SELECT, body.EXPAND },
  run = function(ctx, o)
    if not ctx:need(o, POOL_ID) then return 2 end
    local c, status = ctx:connect()
    if not c then return status end
    local pool, msg, e = c:get_pool(o.poolId, { select = o.select, expand = o.expand })
    if not pool then return ctx:fail(msg, e) end
    return ctx:emit(pool, POOL_VIEW)
  end,
}

command {
  name = "pool list", account = true,
  usage = "azbatch pool list [--filter ODATA] [--select FIELDS] [--expand stats]",
  summary = "List the account's pools. Follows every page.",
  flags = { body.FILTER, body.SELECT, body.EXPAND },
  run = function(ctx, o)
    local c, status = ctx:connect()
    if not c then return status end
    local pools, msg, e = azbatch.collect(c:list_pools { filter = o.filter, select = o.select, expand = o.expand })
    if not pools then return ctx:fail(msg, e) end
    return ctx:emit(azbatch.json.array(pools), POOL_VIEW)
  end,
}

command {
  name = "pool delete", account = true,
  usage = "azbatch pool delete --pool-id ID [--if-match ETAG] [--yes] [--wait]",
  summary = "Delete a pool. The pool goes to 'deleting' and disappears once its nodes are released; "
    .. "--wait waits until it is gone, with progress.",
  flags = { POOL_ID, IF_MATCH,
    { name = "yes", short = "y", key = "yes", kind = "flag",
      help = "accepted for az compatibility; azbatch never prompts" },
    WAIT, body.WAIT_FLAGS[1], body.WAIT_FLAGS[2] },
  run = function(ctx, o)
    if not ctx:need(o, POOL_ID) then return 2 end
    if has_wait_only_flags(ctx, o) then return 2 end
    local c, status = ctx:connect()
    if not c then return status end
    local res, why, e = c:delete_pool(o.poolId, { if_match = o.ifMatch })
    if not res then return ctx:fail(why, e) end
    if o.wait then return wait_deleted(ctx, c, o.poolId, o) end
    return ctx:emit({ id = o.poolId, operation = "delete", requestId = res.request_id, recovered = res.recovered },
      OPERATION_VIEW)
  end,
}

-- The flags that describe a resize, none of which --abort takes.
local RESIZE_FLAGS = { F.dedicated, F.low_priority, F.resize_timeout, body.DEALLOCATION }

command {
  name = "pool resize", account = true,
  usage = "azbatch pool resize --pool-id ID {--target-dedicated-nodes N | --target-low-priority-nodes N} "
    .. "[--resize-timeout DURATION] [--node-deallocation-option OPTION] [--if-match ETAG] [--wait]\n"
    .. "       azbatch pool resize --pool-id ID --abort [--if-match ETAG] [--wait]",
  summary = "Resize a pool to a target, or stop its current resize with --abort. --wait waits until the "
    .. "pool is steady and its nodes ready, with progress, and prints the pool.",
  flags = with({ POOL_ID }, RESIZE_FLAGS, IF_MATCH,
    { name = "abort", key = "abort", kind = "flag", help = "stop the pool's current resize (takes no target)" },
    WAIT, body.WAIT_FLAGS),
  run = function(ctx, o)
    if not ctx:need(o, POOL_ID) then return 2 end
    local resize
    if o.abort then
      for _, f in ipairs(RESIZE_FLAGS) do
        if o[f.key] ~= nil then
          return ctx:usage_error(("--abort stops the current resize and takes no --%s"):format(f.name))
        end
      end
    else
      if o.targetDedicatedNodes == nil and o.targetLowPriorityNodes == nil then
        return ctx:usage_error("pool resize needs a target (--target-dedicated-nodes, --target-low-priority-nodes) "
          .. "or --abort")
      end
      resize = { targetDedicatedNodes = o.targetDedicatedNodes, targetLowPriorityNodes = o.targetLowPriorityNodes,
        resizeTimeout = o.resizeTimeout, nodeDeallocationOption = o.nodeDeallocationOption }
      local ok, why, e = azbatch.validate("pool.resize", resize)    -- before anything is sent
      if not ok then return ctx:fail(why, e) end
    end
    if has_wait_only_flags(ctx, o) then return 2 end
    local c, status = ctx:connect()
    if not c then return status end
    local since
    if o.wait then
      -- when the pool last changed state: resize errors from before are not this resize's
      local before, bwhy, berr = c:get_pool(o.poolId, { select = "id,allocationStateTransitionTime" })
      if not before then return ctx:fail(bwhy, berr) end
      since = type(before.allocationStateTransitionTime) == "string" and before.allocationStateTransitionTime or nil
    end
    local res, why, e
    if o.abort then
      res, why, e = c:stop_resize_pool(o.poolId, { if_match = o.ifMatch })
    else
      res, why, e = c:resize_pool(o.poolId, resize, { if_match = o.ifMatch })
    end
    if not res then return ctx:fail(why, e) end
    if o.wait then
      if o.abort and o.nodes == nil then o.nodes = "allocated" end   -- a stopped resize never reaches its target
      return wait_and_show(ctx, c, o.poolId, o, since, o.abort)
    end
    local result = { id = o.poolId, operation = o.abort and "stopResize" or "resize",
      requestId = res.request_id, recovered = res.recovered }
    for k, v in pairs(resize or {}) do result[k] = v end
    return ctx:emit(result, OPERATION_VIEW)
  end,
}

command {
  name = "pool wait", account = true,
  usage = "azbatch pool wait --pool-id ID [--nodes ready|allocated] [--timeout SECONDS] [--deleted]",
  summary = "Wait until a pool is ready, or gone with --deleted. Ready is steady with its targets reached and "
    .. "its nodes idle or running. Shows node-state counts: a live bar on a terminal, timestamped lines otherwise. "
    .. "Fails early "
    .. "on a resize error of this resize, on unusable or start-task-failed nodes, and on deletion.",
  flags = with({ POOL_ID,
    { name = "deleted", key = "deleted", kind = "flag", help = "wait until the pool is gone" } }, body.WAIT_FLAGS),
  run = function(ctx, o)
    if not ctx:need(o, POOL_ID) then return 2 end
    if o.deleted and (o.nodes or o.maxUnusable or o.maxStartTaskFailed) then
      return ctx:usage_error("--deleted waits for the pool to go and takes no --nodes, --max-unusable or "
        .. "--max-start-task-failed")
    end
    local c, status = ctx:connect()
    if not c then return status end
    if o.deleted then return wait_deleted(ctx, c, o.poolId, o) end
    return wait_and_show(ctx, c, o.poolId, o)
  end,
}

command {
  name = "pool set", account = true,
  usage = "azbatch pool set --pool-id ID [--json-file FILE] [--metadata KEY=VALUE ...] "
    .. "[--start-task-command-line CMD ...] [--if-match ETAG]",
  summary = "Update a pool's properties (PATCH). Only what is given changes; a start task given replaces the "
    .. "pool's whole start task. Some properties change only on an empty pool. Prints the pool.",
  flags = with({ POOL_ID }, body.SET, body.REMOVED_FLAGS[1], body.REMOVED_FLAGS[4], body.JSON_FILE, IF_MATCH),
  run = function(ctx, o)
    if not ctx:need(o, POOL_ID) then return 2 end
    local b, why = body.build(o, body.SET, { what = "the pool update body" })
    if not b then return ctx:fail(why) end
    if next(b) == nil then
      return ctx:usage_error("pool set needs a property to set (a flag or --json-file)")
    end
    local checked, warnings, e = azbatch.validate("pool.update", b)
    if not checked then return ctx:fail(warnings, e) end
    ctx:warnings(warnings)
    local c, status = ctx:connect()
    if not c then return status end
    local res, msg, perr = c:patch_pool(o.poolId, b, { if_match = o.ifMatch })
    if not res then return ctx:fail(msg, perr) end
    return show_pool(ctx, c, o.poolId)
  end,
}

command {
  name = "pool reset", account = true,
  usage = "azbatch pool reset --pool-id ID [--json-file FILE] [--metadata KEY=VALUE ...] "
    .. "[--application-package-references ID ...] [--start-task-command-line CMD ...]",
  summary = "Replace a pool's start task, application packages and metadata. This is updateproperties: what "
    .. "is not given is removed. Prints the pool.",
  flags = with({ POOL_ID }, body.RESET, body.REMOVED_FLAGS[1], body.JSON_FILE),
  run = function(ctx, o)
    if not ctx:need(o, POOL_ID) then return 2 end
    local b, why = body.build(o, body.RESET, { what = "the pool properties body" })
    if not b then return ctx:fail(why) end
    b.metadata = b.metadata or azbatch.json.array {}
    b.applicationPackageReferences = b.applicationPackageReferences or azbatch.json.array {}
    local checked, warnings, e = azbatch.validate("pool.replace", b)
    if not checked then return ctx:fail(warnings, e) end
    local c, status = ctx:connect()
    if not c then return status end
    local res, msg, rerr = c:replace_pool_properties(o.poolId, b)
    if not res then return ctx:fail(msg, rerr) end
    return show_pool(ctx, c, o.poolId)
  end,
}

command {
  name = "pool autoscale enable", account = true,
  usage = "azbatch pool autoscale enable --pool-id ID [--auto-scale-formula FORMULA] "
    .. "[--auto-scale-evaluation-interval DURATION] [--if-match ETAG]",
  summary = "Turn on autoscale (or change its formula). The service evaluates the formula at once. Prints the pool.",
  flags = { POOL_ID, F.formula, F.interval, IF_MATCH },
  run = function(ctx, o)
    if not ctx:need(o, POOL_ID) then return 2 end
    local settings = { autoScaleFormula = o.autoScaleFormula,
      autoScaleEvaluationInterval = o.autoScaleEvaluationInterval }
    local ok, why, e = azbatch.validate("pool.enableautoscale", settings)
    if not ok then return ctx:fail(why, e) end
    local c, status = ctx:connect()
    if not c then return status end
    local res, msg, aerr = c:enable_autoscale(o.poolId, settings, { if_match = o.ifMatch })
    if not res then return ctx:fail(msg, aerr) end
    return show_pool(ctx, c, o.poolId)
  end,
}

command {
  name = "pool autoscale disable", account = true,
  usage = "azbatch pool autoscale disable --pool-id ID",
  summary = "Turn off autoscale; the pool keeps its current targets. Prints the pool.",
  flags = { POOL_ID },
  run = function(ctx, o)
    if not ctx:need(o, POOL_ID) then return 2 end
    local c, status = ctx:connect()
    if not c then return status end
    local res, msg, e = c:disable_autoscale(o.poolId)
    if not res then return ctx:fail(msg, e) end
    return show_pool(ctx, c, o.poolId)
  end,
}

command {
  name = "pool autoscale evaluate", account = true,
  usage = "azbatch pool autoscale evaluate --pool-id ID --auto-scale-formula FORMULA",
  summary = "Evaluate a formula on an autoscale pool without applying it. Prints the AutoScaleRun "
    .. "(results, and the error of a formula that cannot be evaluated).",
  flags = { POOL_ID, { name = "auto-scale-formula", key = "autoScaleFormula", kind = "string", metavar = "FORMULA",
    help = "the formula to evaluate (required)" } },
  run = function(ctx, o)
    if not ctx:need(o, POOL_ID) then return 2 end
    if not o.autoScaleFormula then return ctx:usage_error("--auto-scale-formula is required") end
    local ok, why, e = azbatch.validate("pool.evaluateautoscale", { autoScaleFormula = o.autoScaleFormula })
    if not ok then return ctx:fail(why, e) end
    local c, status = ctx:connect()
    if not c then return status end
    local run, msg, rerr = c:evaluate_autoscale(o.poolId, o.autoScaleFormula)
    if not run then return ctx:fail(msg, rerr) end
    return ctx:emit(run, EVALUATE_VIEW)
  end,
}

command {
  name = "pool node-counts list", account = true,
  usage = "azbatch pool node-counts list [--filter ODATA]",
  summary = "List node counts by state for each pool, dedicated and low-priority.",
  flags = { body.FILTER },
  run = function(ctx, o)
    local c, status = ctx:connect()
    if not c then return status end
    local rows, msg, e = azbatch.collect(c:list_pool_node_counts { filter = o.filter })
    if not rows then return ctx:fail(msg, e) end
    return ctx:emit(azbatch.json.array(rows), COUNTS_VIEW)
  end,
}

command {
  name = "pool exists", account = true,
  usage = "azbatch pool exists --pool-id ID",
  summary = "Print true when the pool exists, false otherwise.",
  flags = { POOL_ID },
  run = function(ctx, o)
    if not ctx:need(o, POOL_ID) then return 2 end
    local c, status = ctx:connect()
    if not c then return status end
    local exists, msg, e = c:pool_exists(o.poolId)
    if exists == nil then return ctx:fail(msg, e) end
    return ctx:emit(exists, { columns = EXISTS_VIEW.columns, rows = function() return { { id = o.poolId,
      exists = exists } } end })
  end,
}

local function plan_text(p)
  local lines = {
    ("%-22s %s"):format("nodes", output.number_text(p.nodes)),
    ("%-22s %s  (one per 600 VMs, in the Batch account's region)"):format("gallery replicas",
      output.number_text(p.replicas)),
  }
  if p.autoscale then
    lines[#lines + 1] = ("%-22s %s"):format("resize timeout", "n/a (autoscale pools ignore resizeTimeout)")
  else
    lines[#lines + 1] = ("%-22s %s  (15 minutes per 1000 VMs, at least PT15M)")
      :format("resize timeout", p.resizeTimeout)
  end
  for _, w in ipairs(p.warnings or {}) do
    lines[#lines + 1] = azbatch.sanitize(("warning: %s: %s"):format(w.field, w.message), 1024)
  end
  for _, n in ipairs(p.notes or {}) do lines[#lines + 1] = azbatch.sanitize("note: " .. n, 1024) end
  return table.concat(lines, "\n") .. "\n"
end

command {
  name = "plan", default_output = "table",
  usage = "azbatch plan --nodes N [--autoscale] [--resize-timeout DURATION] [--replicas N] [--output table|json]",
  summary = "Plan a large custom-image pool offline. Prints the gallery replicas (one per 600 VMs) "
    .. "and the resize timeout (15 minutes per 1000 VMs) it needs.",
  flags = {
    { name = "nodes", key = "nodes", kind = "integer", metavar = "N", help = "VMs in the pool (required)" },
    { name = "autoscale", key = "enableAutoScale", kind = "flag", help = "the pool uses autoscale" },
    { name = "resize-timeout", key = "resizeTimeout", kind = "string", metavar = "DURATION",
      help = "the resize timeout you plan to use, to check it" },
    { name = "replicas", key = "replicas", kind = "integer", metavar = "N",
      help = "the image's replica count in the region, to check it" },
  },
  run = function(ctx, o)
    if o.nodes == nil then return ctx:usage_error("--nodes is required") end
    local p, msg, e = azbatch.plan { nodes = o.nodes, enableAutoScale = o.enableAutoScale,
      resizeTimeout = o.resizeTimeout, replicas = o.replicas }
    if not p then return ctx:fail(msg, e) end
    return ctx:emit(p, { text = plan_text })
  end,
}

return M
