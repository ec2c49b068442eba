--- The azbatch command line: az-style verbs over the azbatch library.
-- main(argv, out, err [, env]) returns the exit status: 0 success, 1 a
-- validation or service error (message on stderr), 2 bad usage.
-- Output: --output json (the default for the service verbs) prints JSON,
-- indented like az; --output table prints a table. Every verb does both.
local azbatch = require "azbatch"
local args = require "azbatch.args"
local getenv = azbatch.credential.getenv

local M = {}

local EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

-- {==================================================================
-- Printing: sanitised lines, numbers, JSON and tables
-- ===================================================================

-- Text from the service (error messages, table cells) and from files goes
-- through the core's sanitiser before it reaches a terminal: no control
-- characters or escape sequences, one line, a bounded length.
local ERROR_MAX, CELL_MAX = 2048, 256

local function clean(s, max)
  return azbatch.sanitize(tostring(s), max or ERROR_MAX)
end

local function fail(err, msg)
  err:write("error: ", clean(msg), "\n")
  return EXIT_FAIL
end

local function usage_error(err, msg, usage)
  err:write("error: ", clean(msg), "\n")
  if usage then err:write("usage: ", usage, "\n") end
  return EXIT_USAGE
end

--- A number as people read it: decimal digits where it is integral (never
-- "2.0" or "1e+03"), otherwise the shortest text that reads back the same.
local function number_text(v)
  if math.type(v) == "integer" then return ("%d"):format(v) end
  if v ~= v or v == math.huge or v == -math.huge then return tostring(v) end
  if v == 0 then return "0" end                       -- -0.0 too, as the encoder writes it
  if v == math.floor(v) then return ("%.0f"):format(v) end
  for digits = 15, 17 do
    local s = ("%." .. digits .. "g"):format(v)
    if tonumber(s) == v then return s end
  end
  return ("%.17g"):format(v)
end
M.number_text = number_text

-- Re-indent compact JSON for people (az prints indented JSON too), and
-- write integral numbers as decimal integers: the encoder writes a float
-- beyond the integer range as "1e+20".
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
    elseif c:match("[%-%d]") then
      local num = text:match("^%-?[%d.eE+%-]+", i)
      local v = num:find("[.eE]") and tonumber(num)
      out[#out + 1] = v and number_text(v) or num
      i = i + #num - 1
    else
      out[#out + 1] = c
    end
    i = i + 1
  end
  return table.concat(out)
end
M.pretty = pretty

local function cell_text(v)
  if v == nil or v == azbatch.null then return "" end
  if type(v) == "number" then return number_text(v) end
  return clean(v, CELL_MAX)
end

local function width(s) return utf8.len(s) or #s end

--- rows: array of tables; columns: { {"Heading", function(row) -> value}, ... }
local function table_text(rows, columns)
  local cells, widths = {}, {}
  for c, col in ipairs(columns) do widths[c] = width(col[1]) end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for c, col in ipairs(columns) do
      local v = cell_text(col[2](row))
      cells[r][c] = v
      widths[c] = math.max(widths[c], width(v))
    end
  end
  local lines = {}
  local function line(values)
    local parts = {}
    for c, v in ipairs(values) do
      parts[c] = c < #values and v .. string.rep(" ", widths[c] - width(v)) or v
    end
    lines[#lines + 1] = table.concat(parts, "  ")
  end
  local head, rule = {}, {}
  for c, col in ipairs(columns) do head[c], rule[c] = col[1], string.rep("-", widths[c]) end
  line(head)
  line(rule)
  for _, row in ipairs(cells) do line(row) end
  return table.concat(lines, "\n") .. "\n"
end
M.table_text = table_text

local function image_text(pool)
  local vmc = type(pool.virtualMachineConfiguration) == "table" and pool.virtualMachineConfiguration
  local ref = vmc and vmc.imageReference
  if type(ref) ~= "table" then return "" end
  return ref.virtualMachineImageId or ref.sharedGalleryImageId or ref.communityGalleryImageId
    or table.concat({ ref.publisher or "", ref.offer or "", ref.sku or "", ref.version or "latest" }, ":")
end

local function of(current, target)
  return ("%s/%s"):format(cell_text(current or 0), cell_text(target or 0))
end

local POOL_COLUMNS = {
  { "Id", function(p) return p.id end },
  { "State", function(p) return p.state end },
  { "Allocation", function(p) return p.allocationState end },
  { "VmSize", function(p) return p.vmSize end },
  { "Dedicated", function(p) return of(p.currentDedicatedNodes, p.targetDedicatedNodes) end },
  { "LowPriority", function(p) return of(p.currentLowPriorityNodes, p.targetLowPriorityNodes) end },
  { "Image", image_text },
}
local CREATED_COLUMNS = {
  { "Id", function(r) return r.id end },
  { "ETag", function(r) return r.eTag end },
  { "Recovered", function(r) return tostring(r.recovered) end },
  { "RequestId", function(r) return r.requestId end },
}
local OPERATION_COLUMNS = {
  { "Id", function(r) return r.id end },
  { "Operation", function(r) return r.operation end },
  { "RequestId", function(r) return r.requestId end },
}
local EXISTS_COLUMNS = {
  { "Id", function(r) return r.id end },
  { "Exists", function(r) return tostring(r.exists) end },
}

--- Print one result: JSON (indented) or a table of `rows` (default: the value itself).
local function emit(out, err, o, value, columns, rows)
  if o.output == "table" then
    out:write(table_text(rows or { value }, columns))
    return EXIT_OK
  end
  local text, why = azbatch.json.encode(value)
  if not text then return fail(err, "cannot print the answer as JSON: " .. why) end
  out:write(pretty(text), "\n")
  return EXIT_OK
end

-- }==================================================================


-- {==================================================================
-- Inputs: the JSON file, the account
-- ===================================================================

local function line_column(text, at)
  local line, col = 1, at
  for nl in text:sub(1, at - 1):gmatch("()\n") do line, col = line + 1, at - nl end
  return line, col
end

local TOP_KINDS = { ["["] = "an array", ['"'] = "a string", t = "true", f = "false", n = "null" }

-- A JSON body may be the data-plane body (what POST /pools takes) or, by
-- mistake, the ARM resource with its "properties" wrapper (Azure/Batch#162).
local function load_json_body(path)
  local where = "--json-file " .. path
  local f, why = io.open(path, "rb")
  if not f then
    return nil, ("%s: cannot open it (%s)"):format(where, (why:gsub("^.*: ", "")))
  end
  local text, rwhy, code = f:read("a")
  f:close()
  if not text then
    if code == 21 then return nil, where .. ": is a directory, not a JSON file" end
    return nil, ("%s: cannot read it (%s)"):format(where, rwhy)
  end
  local bom = text:sub(1, 3) == "\239\187\191" and 3 or 0   -- a UTF-8 byte order mark, as some editors write
  if bom > 0 then text = text:sub(4) end
  if text:match("^%s*$") then
    return nil, where .. ": the file is empty; expected a JSON object (the pool body)"
  end
  local body, msg, jerr = azbatch.json.decode(text)
  if body == nil then
    local what = msg:gsub("^json: ", ""):gsub(" at byte %d+$", "")
      :gsub("unexpected end of input", "reached the end of the file too soon")
    local at = jerr and math.tointeger(jerr.offset)
    if not at then return nil, ("%s: invalid JSON: %s"):format(where, what) end
    local line, col = line_column(text, at)
    return nil, ("%s: invalid JSON at line %d, column %d (byte %d): %s"):format(where, line, col, at + bom, what)
  end
  local first = text:match("^%s*(.)")
  if first ~= "{" then
    return nil, ("%s: expected a JSON object (the pool body), got %s"):format(where, TOP_KINDS[first] or "a number")
  end
  if body.properties ~= nil and body.vmSize == nil then
    return nil, ("%s: this is an ARM (management-plane) pool resource with a 'properties' "
      .. "wrapper; azbatch takes the Batch data-plane body (the REST 'Pool - Add' body)"):format(where)
  end
  return body
end

--- The account name in an https://{account}.{region}.batch.azure.com
-- endpoint (exactly that host shape, any case), or nil: never from an IP
-- address, localhost or another host, where the first label names nothing.
function M.account_from_endpoint(endpoint)
  local rest = endpoint:match("^[Hh][Tt][Tt][Pp][Ss]://(.*)$")
  if not rest and not endpoint:find("://", 1, true) then rest = endpoint end   -- a bare host means https
  if not rest then return nil end
  local host = rest:match("^[^/?#]*"):gsub(":%d*$", ""):lower()
  return (host:match("^([%l%d]+)%.[%l%d]+%.batch%.azure%.com$"))
end

--- The credential from the flags and the environment, as az finds it.
-- Returns credential or nil, message, exit status.
function M.find_credential(o, endpoint, env)
  local key = o.accountKey or getenv(env, "AZURE_BATCH_ACCESS_KEY")
  if not key then
    -- Microsoft Entra ID: the data plane needs no account name.
    local cred, why = azbatch.credential.default { env = env }
    if not cred then return nil, why, EXIT_FAIL end
    return cred
  end
  local name = o.accountName or getenv(env, "AZURE_BATCH_ACCOUNT") or M.account_from_endpoint(endpoint)
  if not name then
    return nil, ("a Shared Key needs the Batch account name, and the endpoint %s does not give one (only "
      .. "https://{account}.{region}.batch.azure.com does): pass --account-name or set AZURE_BATCH_ACCOUNT")
      :format(endpoint), EXIT_USAGE
  end
  local cred, why = azbatch.credential.shared_key(name, key)
  if not cred then return nil, why, EXIT_FAIL end
  return cred
end

--- A client from the flags and the environment.
-- Returns client or nil, exit status (the message is written).
local function connect(o, err, env)
  local endpoint = o.accountEndpoint or getenv(env, "AZURE_BATCH_ENDPOINT")
  if not endpoint then
    return nil, usage_error(err, "no Batch account endpoint: pass --account-endpoint or set AZURE_BATCH_ENDPOINT")
  end
  local cred, why, status = M.find_credential(o, endpoint, env)
  if not cred then
    err:write("error: ", clean(why), "\n")
    return nil, status
  end
  local batch, msg = azbatch.client { endpoint = endpoint, credential = cred }
  if not batch then return nil, fail(err, msg) end
  return batch
end

-- }==================================================================


-- {==================================================================
-- The verbs
-- ===================================================================

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
local DEALLOCATION = { name = "node-deallocation-option", key = "nodeDeallocationOption", kind = "string",
  metavar = "OPTION", help = "requeue, terminate, taskcompletion or retaineddata" }
local POOL_ID = { name = "pool-id", key = "poolId", kind = "string", metavar = "ID", help = "the pool id (required)" }
local OUTPUT = { name = "output", key = "output", kind = "string", metavar = "FORMAT", choices = { "json", "table" },
  help = "json (default) or table" }

-- The flags every verb that talks to the service takes, with az's names.
local ACCOUNT_FLAGS = {
  { name = "account-name", key = "accountName", kind = "string", metavar = "NAME",
    help = "Batch account name (env AZURE_BATCH_ACCOUNT; else from the endpoint's host)" },
  { name = "account-key", key = "accountKey", kind = "string", metavar = "KEY", secret = true,
    help = "Shared Key (env AZURE_BATCH_ACCESS_KEY); Entra ID is used without one" },
  { name = "account-endpoint", key = "accountEndpoint", kind = "string", metavar = "URL",
    help = "https://{account}.{region}.batch.azure.com (env AZURE_BATCH_ENDPOINT)" },
  OUTPUT,
}

local function with_account_flags(flags)
  for _, f in ipairs(ACCOUNT_FLAGS) do flags[#flags + 1] = f end
  return flags
end

local function print_warnings(err, warnings)
  for _, w in ipairs(warnings or {}) do
    err:write("warning: ", clean(("%s: %s"):format(w.field, w.message)), "\n")
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

local function need_pool_id(o, err, usage)
  if o.poolId then return true end
  usage_error(err, "--pool-id is required", usage)
  return false
end

commands["pool create"] = {
  usage = "azbatch pool create [--json-file FILE] [--id ID --vm-size SIZE --image IMAGE "
    .. "--node-agent-sku-id SKU ...] [--dry-run] [--output json|table]",
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
    { name = "dry-run", key = "dryRun", kind = "flag",
      help = "validate and print the request body byte for byte; send nothing" },
  }),
  run = function(o, out, err, env)
    local body, why = pool_body(o)
    if not body then return fail(err, why) end
    local spec, warnings, e = azbatch.pool_spec(body)
    if not spec then
      fail(err, warnings)
      for i = 2, #(e.errors or {}) do fail(err, ("%s: %s"):format(e.errors[i].field, e.errors[i].message)) end
      return EXIT_FAIL
    end
    print_warnings(err, warnings)
    if o.dryRun then
      local text = assert(spec:json())
      if o.output == "table" then
        out:write(table_text({ assert(azbatch.json.decode(text)) }, POOL_COLUMNS))
      else
        out:write(text, "\n")     -- the request body exactly as it would be sent
      end
      return EXIT_OK
    end
    local batch, code = connect(o, err, env)
    if not batch then return code end
    local res, msg = batch:create_pool(spec)
    batch:close()
    if not res then return fail(err, msg) end
    return emit(out, err, o, { id = res.id, eTag = res.etag, requestId = res.request_id,
      recovered = res.recovered == true }, CREATED_COLUMNS)
  end,
}

commands["pool show"] = {
  usage = "azbatch pool show --pool-id ID [--select FIELDS] [--expand stats] [--output json|table]",
  summary = "Show a pool. Prints the pool as the service returns it.",
  flags = with_account_flags({ POOL_ID,
    { name = "select", key = "select", kind = "string", metavar = "FIELDS", help = "OData $select clause" },
    { name = "expand", key = "expand", kind = "string", metavar = "FIELDS", help = "OData $expand clause" },
  }),
  run = function(o, out, err, env)
    if not need_pool_id(o, err, commands["pool show"].usage) then return EXIT_USAGE end
    local batch, code = connect(o, err, env)
    if not batch then return code end
    local pool, msg = batch:get_pool(o.poolId, { select = o.select, expand = o.expand })
    batch:close()
    if not pool then return fail(err, msg) end
    return emit(out, err, o, pool, POOL_COLUMNS)
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
  run = function(o, out, err, env)
    local batch, code = connect(o, err, env)
    if not batch then return code end
    local pools, msg = azbatch.collect(batch:list_pools { filter = o.filter, select = o.select, expand = o.expand })
    batch:close()
    if not pools then return fail(err, msg) end
    return emit(out, err, o, azbatch.json.array(pools), POOL_COLUMNS, pools)
  end,
}

commands["pool delete"] = {
  usage = "azbatch pool delete --pool-id ID [--if-match ETAG] [--yes] [--output json|table]",
  summary = "Delete a pool. The pool goes to 'deleting' and disappears once its nodes are released.",
  flags = with_account_flags({ POOL_ID,
    IF_MATCH,
    { name = "yes", key = "yes", kind = "flag", help = "accepted for az compatibility; azbatch never prompts" },
  }),
  run = function(o, out, err, env)
    if not need_pool_id(o, err, commands["pool delete"].usage) then return EXIT_USAGE end
    local batch, code = connect(o, err, env)
    if not batch then return code end
    local res, why = batch:delete_pool(o.poolId, { if_match = o.ifMatch })
    batch:close()
    if not res then return fail(err, why) end
    return emit(out, err, o, { id = o.poolId, operation = "delete", requestId = res.request_id,
      recovered = res.recovered }, OPERATION_COLUMNS)
  end,
}

-- The flags that describe a resize, none of which --abort takes.
local RESIZE_FLAGS = { TARGET_DEDICATED, TARGET_LOW_PRIORITY, RESIZE_TIMEOUT, DEALLOCATION }

commands["pool resize"] = {
  usage = "azbatch pool resize --pool-id ID {--target-dedicated-nodes N | --target-low-priority-nodes N} "
    .. "[--resize-timeout DURATION] [--node-deallocation-option OPTION] [--if-match ETAG] [--output json|table]\n"
    .. "       azbatch pool resize --pool-id ID --abort [--if-match ETAG] [--output json|table]",
  summary = "Resize a pool to a target, or stop its current resize with --abort.",
  flags = with_account_flags({ POOL_ID,
    TARGET_DEDICATED, TARGET_LOW_PRIORITY, RESIZE_TIMEOUT, DEALLOCATION, IF_MATCH,
    { name = "abort", key = "abort", kind = "flag", help = "stop the pool's current resize (takes no other option)" },
  }),
  run = function(o, out, err, env)
    local usage = commands["pool resize"].usage
    if not need_pool_id(o, err, usage) then return EXIT_USAGE end
    local resize
    if o.abort then
      for _, f in ipairs(RESIZE_FLAGS) do
        if o[f.key] ~= nil then
          return usage_error(err, ("--abort stops the current resize and takes no --%s"):format(f.name), usage)
        end
      end
    else
      if o.targetDedicatedNodes == nil and o.targetLowPriorityNodes == nil then
        return usage_error(err, "pool resize needs a target (--target-dedicated-nodes, --target-low-priority-nodes) "
          .. "or --abort", usage)
      end
      resize = { targetDedicatedNodes = o.targetDedicatedNodes, targetLowPriorityNodes = o.targetLowPriorityNodes,
        resizeTimeout = o.resizeTimeout, nodeDeallocationOption = o.nodeDeallocationOption }
      local ok, why = azbatch.validate("pool.resize", resize)    -- before anything is sent
      if not ok then return fail(err, why) end
    end
    local batch, code = connect(o, err, env)
    if not batch then return code end
    local res, why
    if o.abort then
      res, why = batch:stop_resize_pool(o.poolId, { if_match = o.ifMatch })
    else
      res, why = batch:resize_pool(o.poolId, resize, { if_match = o.ifMatch })
    end
    batch:close()
    if not res then return fail(err, why) end
    local result = { id = o.poolId, operation = o.abort and "stopResize" or "resize",
      requestId = res.request_id, recovered = res.recovered }
    for k, v in pairs(resize or {}) do result[k] = v end
    return emit(out, err, o, result, OPERATION_COLUMNS)
  end,
}

commands["pool exists"] = {
  usage = "azbatch pool exists --pool-id ID [--output json|table]",
  summary = "Print true when the pool exists, false otherwise.",
  flags = with_account_flags({ POOL_ID }),
  run = function(o, out, err, env)
    if not need_pool_id(o, err, commands["pool exists"].usage) then return EXIT_USAGE end
    local batch, code = connect(o, err, env)
    if not batch then return code end
    local exists, msg = batch:pool_exists(o.poolId)
    batch:close()
    if exists == nil then return fail(err, msg) end
    return emit(out, err, o, exists, EXISTS_COLUMNS, { { id = o.poolId, exists = exists } })
  end,
}

local function format_plan(p)
  local lines = {
    ("%-22s %s"):format("nodes", number_text(p.nodes)),
    ("%-22s %s  (one per 600 VMs, in the Batch account's region)"):format("gallery replicas",
      number_text(p.replicas)),
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
    { name = "output", key = "output", kind = "string", metavar = "FORMAT", choices = { "table", "json" },
      help = "table (default: plan is read by people) or json" },
  },
  run = function(o, out, err)
    if o.nodes == nil then return usage_error(err, "--nodes is required", commands["plan"].usage) end
    local p, msg = azbatch.plan { nodes = o.nodes, enableAutoScale = o.enableAutoScale,
      resizeTimeout = o.resizeTimeout, replicas = o.replicas }
    if not p then return fail(err, msg) end
    if o.output == "json" then return emit(out, err, o, p) end
    out:write(format_plan(p))
    return EXIT_OK
  end,
}

-- }==================================================================


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
---@param env? table<string,string> the environment (default: os.getenv)
---@return integer status
function M.main(argv, out, err, env)
  out, err = out or io.stdout, err or io.stderr
  -- keys and tokens live in this process: never in a core file
  require("azbatch.core").disable_core_dumps()
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
      if name:sub(1, #group + 1) == group .. " " then subs[#subs + 1] = name end
    end
    table.sort(subs)
    if #subs > 0 and (argv[2] == nil or is_help(argv[2])) then
      local w = argv[2] and out or err
      w:write(("usage: azbatch %s <command>\n\ncommands:\n"):format(group))
      for _, s in ipairs(subs) do w:write(("  %-20s %s\n"):format(s, commands[s].summary:match("^[^.]*"))) end
      return argv[2] and EXIT_OK or EXIT_USAGE
    end
    return usage_error(err, ("unknown command '%s' (try 'azbatch --help')")
      :format(table.concat(argv, " ", 1, math.min(2, #argv))))
  end
  for _, a in ipairs(rest) do
    if a == "--" then break end
    if is_help(a) then
      out:write(args.help(cmd.usage, cmd.summary, cmd.flags))
      return EXIT_OK
    end
  end
  local o, why, positional = args.parse(rest, cmd.flags)
  if not o then return usage_error(err, why, cmd.usage) end
  if positional and #positional > 0 then
    return usage_error(err, ("unexpected argument '%s'"):format(positional[1]), cmd.usage)
  end
  return cmd.run(o, out, err, env)
end

return M
