--- The azbatch command line: az-style verbs over the azbatch library.
-- main(argv, out, err) returns the exit status: 0 success, 1 a validation or
-- service error (message on stderr), 2 bad usage.
local azbatch = require "azbatch"
local args = require "azbatch.args"

local M = {}

local EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
local connect

local function read_file(path)
  local f, why = io.open(path, "rb")
  if not f then return nil, why end
  local text = f:read("a")
  f:close()
  return text
end

-- A JSON body may be the data-plane body (what POST /pools takes) or, by
-- mistake, the ARM resource with its "properties" wrapper (Azure/Batch#162).
local function load_json_body(path)
  local text, why = read_file(path)
  if not text then return nil, ("--json-file: %s"):format(why) end
  local body, msg = azbatch.json.decode(text)
  if body == nil then return nil, ("--json-file %s: %s"):format(path, msg) end
  if type(body) ~= "table" then
    return nil, ("--json-file %s: expected a JSON object (the pool body)"):format(path)
  end
  if body.properties ~= nil and body.vmSize == nil then
    return nil, ("--json-file %s: this is an ARM (management-plane) pool resource with a 'properties' "
      .. "wrapper; azbatch takes the Batch data-plane body (the REST 'Pool - Add' body)"):format(path)
  end
  return body
end

local function print_warnings(err, warnings)
  for _, w in ipairs(warnings or {}) do
    err:write(("warning: %s: %s\n"):format(w.field, w.message))
  end
end

--- The pool body from --json-file and the flags; flags override the file.
local function pool_body(o)
  local body = {}
  if o.jsonFile then
    local b, why = load_json_body(o.jsonFile)
    if not b then return nil, why end
    body = b
  end
  for _, k in ipairs { "id", "vmSize", "targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout" } do
    if o[k] ~= nil then body[k] = o[k] end
  end
  if o.image or o.nodeAgentSKUId then
    local vmc = body.virtualMachineConfiguration
    if type(vmc) ~= "table" then vmc = {} end
    vmc.imageReference = o.image or vmc.imageReference
    vmc.nodeAgentSKUId = o.nodeAgentSKUId or vmc.nodeAgentSKUId
    body.virtualMachineConfiguration = vmc
  end
  return body
end

local commands = {}
M.commands = commands

-- Flags shared by several verbs.
local TARGET_DEDICATED = { name = "target-dedicated-nodes", key = "targetDedicatedNodes", kind = "integer",
  metavar = "N", help = "dedicated compute nodes" }
local TARGET_LOW_PRIORITY = { name = "target-low-priority-nodes", key = "targetLowPriorityNodes",
  kind = "integer", metavar = "N", help = "Spot/low-priority compute nodes" }
local RESIZE_TIMEOUT = { name = "resize-timeout", key = "resizeTimeout", kind = "string", metavar = "DURATION",
  help = "ISO-8601 duration, e.g. PT30M" }
local IF_MATCH = { name = "if-match", key = "ifMatch", kind = "string", metavar = "ETAG",
  help = "only if the pool has this ETag" }

local function fail(err, msg)
  err:write("error: ", msg, "\n")
  return EXIT_FAIL
end

-- Re-indent compact JSON for people (az prints indented JSON too).
local function pretty(text)
  local out, depth, i, n = {}, 0, 1, #text
  local function nl() out[#out + 1] = "\n" .. string.rep("  ", depth) end
  while i <= n do
    local c = text:sub(i, i)
    if c == '"' then
      local j = i + 1
      while j <= n do
        local d = text:sub(j, j)
        if d == "\\" then j = j + 2 elseif d == '"' then break else j = j + 1 end
      end
      out[#out + 1] = text:sub(i, j)
      i = j
    elseif c == "{" or c == "[" then
      local close = c == "{" and "}" or "]"
      if text:sub(i + 1, i + 1) == close then
        out[#out + 1] = c .. close
        i = i + 1
      else
        depth = depth + 1
        out[#out + 1] = c
        nl()
      end
    elseif c == "}" or c == "]" then
      depth = depth - 1
      nl()
      out[#out + 1] = c
    elseif c == "," then
      out[#out + 1] = ","
      nl()
    elseif c == ":" then
      out[#out + 1] = ": "
    else
      out[#out + 1] = c
    end
    i = i + 1
  end
  return table.concat(out)
end
M.pretty = pretty

-- The flags every verb that talks to the service takes, with az's names.
local ACCOUNT_FLAGS = {
  { name = "account-name", key = "accountName", kind = "string", metavar = "NAME",
    help = "Batch account name (env AZURE_BATCH_ACCOUNT)" },
  { name = "account-key", key = "accountKey", kind = "string", metavar = "KEY",
    help = "Shared Key (env AZURE_BATCH_ACCESS_KEY); Entra ID is used without one" },
  { name = "account-endpoint", key = "accountEndpoint", kind = "string", metavar = "URL",
    help = "https://{account}.{region}.batch.azure.com (env AZURE_BATCH_ENDPOINT)" },
  { name = "output", key = "output", kind = "string", metavar = "FORMAT", choices = { "json", "table" },
    help = "json (default) or table" },
}

local function with_account_flags(flags)
  for _, f in ipairs(ACCOUNT_FLAGS) do flags[#flags + 1] = f end
  return flags
end

local function env(name)
  local v = os.getenv(name)
  return v ~= "" and v or nil
end

--- A client from the flags and the environment, as az finds the account.
-- Returns client or nil, exit status (the message is written).
connect = function(o, err)
  local endpoint = o.accountEndpoint or env("AZURE_BATCH_ENDPOINT")
  if not endpoint then
    err:write("error: no Batch account endpoint: pass --account-endpoint or set AZURE_BATCH_ENDPOINT\n")
    return nil, EXIT_USAGE
  end
  local key = o.accountKey or env("AZURE_BATCH_ACCESS_KEY")
  local cred, why
  if key then
    local name = o.accountName or env("AZURE_BATCH_ACCOUNT") or endpoint:match("^%a+://([^.:/]+)%.")
    if not name then
      err:write("error: a Shared Key needs the account name: pass --account-name or set AZURE_BATCH_ACCOUNT\n")
      return nil, EXIT_USAGE
    end
    cred, why = azbatch.credential.shared_key(name, key)
  else
    cred, why = azbatch.credential.default()
  end
  if not cred then return nil, fail(err, why) end
  local batch, msg = azbatch.client { endpoint = endpoint, credential = cred }
  if not batch then return nil, fail(err, msg) end
  return batch
end

commands["pool create"] = {
  usage = "azbatch pool create [--json-file FILE] [--id ID --vm-size SIZE --image IMAGE "
    .. "--node-agent-sku-id SKU ...] [--dry-run]",
  summary = "Create a pool. The body is validated locally first; --dry-run prints the exact JSON "
    .. "body that would be sent and sends nothing. Flags override fields of --json-file.",
  flags = with_account_flags({
    { name = "id", key = "id", kind = "string", metavar = "ID", help = "pool id (1-64 letters, digits, - and _)" },
    { name = "vm-size", key = "vmSize", kind = "string", metavar = "SIZE", help = "VM size, e.g. Standard_D4s_v5" },
    TARGET_DEDICATED, TARGET_LOW_PRIORITY,
    { name = "image", key = "image", kind = "string", metavar = "IMAGE",
      help = "URN publisher:offer:sku[:version] or an image resource id" },
    { name = "node-agent-sku-id", key = "nodeAgentSKUId", kind = "string", metavar = "SKU",
      help = "node agent SKU matching the image, e.g. 'batch.node.ubuntu 22.04'" },
    RESIZE_TIMEOUT,
    { name = "json-file", key = "jsonFile", kind = "string", metavar = "FILE",
      help = "a pool body in the REST format (Pool - Add)" },
    { name = "dry-run", key = "dryRun", kind = "flag", help = "validate and print the request body; send nothing" },
  }),
  run = function(o, out, err)
    local body, why = pool_body(o)
    if not body then
      err:write("error: ", why, "\n")
      return EXIT_FAIL
    end
    local spec, warnings, e = azbatch.pool_spec(body)
    if not spec then
      err:write("error: ", warnings, "\n")
      for i = 2, #(e.errors or {}) do
        err:write(("error: %s: %s\n"):format(e.errors[i].field, e.errors[i].message))
      end
      return EXIT_FAIL
    end
    print_warnings(err, warnings)
    if o.dryRun then
      out:write(assert(spec:json()), "\n")
      return EXIT_OK
    end
    local batch, code = connect(o, err)
    if not batch then return code end
    local res, msg = batch:create_pool(spec)
    batch:close()
    if not res then return fail(err, msg) end
    if o.output == "json" then
      out:write(pretty(azbatch.json.encode { id = res.id, eTag = res.etag, requestId = res.request_id }), "\n")
    else
      out:write(("created pool %s%s\n"):format(res.id, res.recovered and " (found after a retried request)" or ""))
    end
    return EXIT_OK
  end,
}

local POOL_ID = { name = "pool-id", key = "poolId", kind = "string", metavar = "ID", help = "the pool id (required)" }

local function image_text(pool)
  local ref = pool.virtualMachineConfiguration and pool.virtualMachineConfiguration.imageReference
  if type(ref) ~= "table" then return "" end
  return ref.virtualMachineImageId or ref.sharedGalleryImageId or ref.communityGalleryImageId
    or table.concat({ ref.publisher or "", ref.offer or "", ref.sku or "", ref.version or "latest" }, ":")
end

local POOL_COLUMNS = {
  { "Id", function(p) return p.id end },
  { "State", function(p) return p.state end },
  { "Allocation", function(p) return p.allocationState end },
  { "VmSize", function(p) return p.vmSize end },
  { "Dedicated", function(p) return ("%s/%s"):format(p.currentDedicatedNodes or 0, p.targetDedicatedNodes or 0) end },
  { "LowPriority", function(p)
    return ("%s/%s"):format(p.currentLowPriorityNodes or 0, p.targetLowPriorityNodes or 0) end },
  { "Image", image_text },
}

local function table_text(rows, columns)
  local cells, widths = {}, {}
  for c, col in ipairs(columns) do widths[c] = #col[1] end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for c, col in ipairs(columns) do
      local v = tostring(col[2](row) or "")
      cells[r][c] = v
      widths[c] = math.max(widths[c], #v)
    end
  end
  local lines = {}
  local function line(values)
    local parts = {}
    for c, v in ipairs(values) do parts[c] = c < #values and ("%-" .. widths[c] .. "s"):format(v) or v end
    lines[#lines + 1] = table.concat(parts, "  ")
  end
  local head, rule = {}, {}
  for c, col in ipairs(columns) do head[c], rule[c] = col[1], string.rep("-", widths[c]) end
  line(head)
  line(rule)
  for _, row in ipairs(cells) do line(row) end
  return table.concat(lines, "\n") .. "\n"
end

local function need_pool_id(o, err, usage)
  if o.poolId then return true end
  err:write("error: --pool-id is required\nusage: ", usage, "\n")
  return false
end

local function emit(out, o, value, rows)
  if o.output == "table" then
    out:write(table_text(rows or { value }, POOL_COLUMNS))
  else
    out:write(pretty(assert(azbatch.json.encode(value))), "\n")
  end
end

commands["pool show"] = {
  usage = "azbatch pool show --pool-id ID [--select FIELDS] [--expand stats] [--output json|table]",
  summary = "Show a pool. Prints the pool as the service returns it.",
  flags = with_account_flags({ POOL_ID,
    { name = "select", key = "select", kind = "string", metavar = "FIELDS", help = "OData $select clause" },
    { name = "expand", key = "expand", kind = "string", metavar = "FIELDS", help = "OData $expand clause" },
  }),
  run = function(o, out, err)
    if not need_pool_id(o, err, commands["pool show"].usage) then return EXIT_USAGE end
    local batch, code = connect(o, err)
    if not batch then return code end
    local pool, msg = batch:get_pool(o.poolId, { select = o.select, expand = o.expand })
    batch:close()
    if not pool then return fail(err, msg) end
    emit(out, o, pool)
    return EXIT_OK
  end,
}

commands["pool list"] = {
  usage = "azbatch pool list [--filter ODATA] [--select FIELDS] [--expand stats] [--output json|table]",
  summary = "List the account's pools. Follows every page.",
  flags = with_account_flags({
    { name = "filter", key = "filter", kind = "string", metavar = "ODATA", help = "OData $filter clause" },
    { name = "select", key = "select", kind = "string", metavar = "FIELDS", help = "OData $select clause" },
    { name = "expand", key = "expand", kind = "string", metavar = "FIELDS", help = "OData $expand clause" },
  }),
  run = function(o, out, err)
    local batch, code = connect(o, err)
    if not batch then return code end
    local pools, msg = azbatch.collect(batch:list_pools { filter = o.filter, select = o.select, expand = o.expand })
    batch:close()
    if not pools then return fail(err, msg) end
    emit(out, o, azbatch.json.array(pools), pools)
    return EXIT_OK
  end,
}

commands["pool delete"] = {
  usage = "azbatch pool delete --pool-id ID [--if-match ETAG] [--yes]",
  summary = "Delete a pool. The pool goes to 'deleting' and disappears once its nodes are released.",
  flags = with_account_flags({ POOL_ID,
    IF_MATCH,
    { name = "yes", key = "yes", kind = "flag", help = "accepted for az compatibility; azbatch never prompts" },
  }),
  run = function(o, out, err)
    if not need_pool_id(o, err, commands["pool delete"].usage) then return EXIT_USAGE end
    local batch, code = connect(o, err)
    if not batch then return code end
    local ok, msg = batch:delete_pool(o.poolId, { if_match = o.ifMatch })
    batch:close()
    if not ok then return fail(err, msg) end
    if o.output ~= "json" then out:write(("deleting pool %s\n"):format(o.poolId)) end
    return EXIT_OK
  end,
}

commands["pool resize"] = {
  usage = "azbatch pool resize --pool-id ID [--target-dedicated-nodes N] [--target-low-priority-nodes N] "
    .. "[--resize-timeout DURATION] [--node-deallocation-option OPTION] [--abort]",
  summary = "Resize a pool, or stop a resize with --abort.",
  flags = with_account_flags({ POOL_ID,
    TARGET_DEDICATED, TARGET_LOW_PRIORITY,
    RESIZE_TIMEOUT,
    { name = "node-deallocation-option", key = "nodeDeallocationOption", kind = "string", metavar = "OPTION",
      help = "requeue, terminate, taskcompletion or retaineddata" },
    IF_MATCH,
    { name = "abort", key = "abort", kind = "flag", help = "stop the pool's current resize" },
  }),
  run = function(o, out, err)
    if not need_pool_id(o, err, commands["pool resize"].usage) then return EXIT_USAGE end
    local batch, code = connect(o, err)
    if not batch then return code end
    local ok, msg
    if o.abort then
      ok, msg = batch:stop_resize_pool(o.poolId)
    else
      ok, msg = batch:resize_pool(o.poolId, { targetDedicatedNodes = o.targetDedicatedNodes,
        targetLowPriorityNodes = o.targetLowPriorityNodes, resizeTimeout = o.resizeTimeout,
        nodeDeallocationOption = o.nodeDeallocationOption }, { if_match = o.ifMatch })
    end
    batch:close()
    if not ok then return fail(err, msg) end
    if o.output ~= "json" then
      out:write(("%s pool %s\n"):format(o.abort and "stopping the resize of" or "resizing", o.poolId))
    end
    return EXIT_OK
  end,
}

commands["pool exists"] = {
  usage = "azbatch pool exists --pool-id ID",
  summary = "Print true when the pool exists, false otherwise.",
  flags = with_account_flags({ POOL_ID }),
  run = function(o, out, err)
    if not need_pool_id(o, err, commands["pool exists"].usage) then return EXIT_USAGE end
    local batch, code = connect(o, err)
    if not batch then return code end
    local exists, msg = batch:pool_exists(o.poolId)
    batch:close()
    if exists == nil then return fail(err, msg) end
    out:write(tostring(exists), "\n")
    return EXIT_OK
  end,
}

local function format_plan(p)
  local lines = {
    ("%-22s %d"):format("nodes", p.nodes),
    ("%-22s %d  (one per 600 VMs, in the Batch account's region)"):format("gallery replicas", p.replicas),
  }
  if p.autoscale then
    lines[#lines + 1] = ("%-22s %s"):format("resize timeout", "n/a (autoscale pools ignore resizeTimeout)")
  else
    lines[#lines + 1] = ("%-22s %s  (15 minutes per 1000 VMs, at least PT15M)")
      :format("resize timeout", p.resizeTimeout)
  end
  for _, w in ipairs(p.warnings or {}) do
    lines[#lines + 1] = ("warning: %s: %s"):format(w.field, w.message)
  end
  for _, n in ipairs(p.notes or {}) do lines[#lines + 1] = "note: " .. n end
  return table.concat(lines, "\n") .. "\n"
end

commands["plan"] = {
  usage = "azbatch plan --nodes N [--autoscale] [--resize-timeout DURATION] [--replicas N]",
  summary = "Plan a large custom-image pool offline. Prints the gallery replicas (one per 600 VMs) "
    .. "and the resize timeout (15 minutes per 1000 VMs) it needs.",
  flags = {
    { name = "nodes", key = "nodes", kind = "integer", metavar = "N", help = "VMs in the pool (required)" },
    { name = "autoscale", key = "enableAutoScale", kind = "flag", help = "the pool uses autoscale" },
    { name = "resize-timeout", key = "resizeTimeout", kind = "string", metavar = "DURATION",
      help = "the resize timeout you plan to use, to check it" },
    { name = "replicas", key = "replicas", kind = "integer", metavar = "N",
      help = "the image's replica count in the region, to check it" },
    { name = "output", key = "output", kind = "string", metavar = "FORMAT", choices = { "table", "json" },
      help = "table (default) or json" },
  },
  run = function(o, out, err)
    if o.nodes == nil then
      err:write("usage: azbatch plan --nodes N (try --help)\n")
      return EXIT_USAGE
    end
    local p, msg = azbatch.plan { nodes = o.nodes, enableAutoScale = o.enableAutoScale,
      resizeTimeout = o.resizeTimeout, replicas = o.replicas }
    local output = o.output
    if not p then
      err:write("error: ", msg, "\n")
      return EXIT_FAIL
    end
    if output == "json" then
      out:write(assert(azbatch.json.encode(p)), "\n")
    else
      out:write(format_plan(p))
    end
    return EXIT_OK
  end,
}

local function top_help()
  local names = {}
  for name in pairs(commands) do names[#names + 1] = name end
  table.sort(names)
  local lines = { "usage: azbatch <command> [options]", "", "Azure Batch pools from custom images.", "",
    "commands:" }
  for _, name in ipairs(names) do
    lines[#lines + 1] = ("  %-20s %s"):format(name, commands[name].summary:match("^[^.]*"))
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Run 'azbatch <command> --help' for a command's options."
  return table.concat(lines, "\n") .. "\n"
end

local function is_help(a) return a == "-h" or a == "--help" end

--- Run the CLI.
---@param argv string[]
---@param out? file* defaults to io.stdout
---@param err? file* defaults to io.stderr
---@return integer status
function M.main(argv, out, err)
  out, err = out or io.stdout, err or io.stderr
  if #argv == 0 then
    err:write(top_help())
    return EXIT_USAGE
  elseif is_help(argv[1]) then
    out:write(top_help())
    return EXIT_OK
  end
  if argv[1] == "version" or argv[1] == "--version" then
    out:write(("azbatch %s (api-version %s)\n"):format(azbatch._VERSION, azbatch.API_VERSION))
    return EXIT_OK
  end
  -- Longest command name that prefixes argv ("pool create" before "pool").
  local cmd, rest
  for n = 2, 1, -1 do
    local name = table.concat(argv, " ", 1, math.min(n, #argv))
    if commands[name] and (n == 1 or #argv >= n) then
      cmd, rest = commands[name], table.move(argv, n + 1, #argv, 1, {})
      break
    end
  end
  if not cmd then
    local group = argv[1]
    local subs = {}
    for name in pairs(commands) do
      if name:match("^" .. group:gsub("%p", "%%%0") .. " ") then subs[#subs + 1] = name end
    end
    table.sort(subs)
    if #subs > 0 and (argv[2] == nil or is_help(argv[2])) then
      local w = argv[2] and out or err
      w:write(("usage: azbatch %s <command>\n\ncommands:\n"):format(group))
      for _, s in ipairs(subs) do w:write(("  %-20s %s\n"):format(s, commands[s].summary:match("^[^.]*"))) end
      return argv[2] and EXIT_OK or EXIT_USAGE
    end
    err:write(("error: unknown command '%s' (try 'azbatch --help')\n"):format(table.concat(argv, " ", 1,
      math.min(2, #argv))))
    return EXIT_USAGE
  end
  for _, a in ipairs(rest) do
    if is_help(a) then
      out:write(args.help(cmd.usage, cmd.summary, cmd.flags))
      return EXIT_OK
    end
  end
  local o, why, positional = args.parse(rest, cmd.flags)
  if not o then
    err:write("error: ", why, "\n", "usage: ", cmd.usage, "\n")
    return EXIT_USAGE
  end
  if positional and #positional > 0 and not cmd.positional then
    err:write(("error: unexpected argument '%s'\n"):format(positional[1]), "usage: ", cmd.usage, "\n")
    return EXIT_USAGE
  end
  return cmd.run(o, out, err)
end

return M
