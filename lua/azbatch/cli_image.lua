--- The image verbs: preflight (the checks a pool spec needs, before it is
-- sent), supported-images, image from-vhd / publish / replicate (custom
-- images end to end) and pool images (what each pool runs, and what is
-- wrong with it).
local azbatch = require "azbatch"
local body = require "azbatch.cli_body"
local pool = require "azbatch.cli_pool"
local output = require "azbatch.cli_output"
local with = require("azbatch.args").with

local M = {}

local cell = output.cell_text

-- {==================================================================
-- preflight
-- ===================================================================

local FINDING_COLUMNS = {
  { "Severity", function(f) return f.severity end },
  { "Code", function(f) return f.code end },
  { "Field", function(f) return f.field end },
  { "Message", function(f) return f.message end },
  { "Fix", function(f) return f.fix end },
}

local function count(findings, severity)
  local n = 0
  for _, f in ipairs(findings) do if f.severity == severity then n = n + 1 end end
  return n
end

-- One finding a block: severity, code and field on a line, then the
-- message and the fix under them (a table of five columns is too wide).
local function findings_text(r)
  local findings = r.findings or {}
  if #findings == 0 then return "no findings: the pool spec passed every check that could be made\n" end
  local sev, code = 8, 4
  for _, f in ipairs(findings) do
    sev, code = math.max(sev, #cell(f.severity)), math.max(code, #cell(f.code))
  end
  local lines = { ("%-" .. sev .. "s  %-" .. code .. "s  %s"):format("SEVERITY", "CODE", "FIELD") }
  local indent = string.rep(" ", sev + 2)
  for _, f in ipairs(findings) do
    lines[#lines + 1] = (("%-" .. sev .. "s  %-" .. code .. "s  %s"):format(cell(f.severity), cell(f.code),
      cell(f.field)):gsub(" +$", ""))
    lines[#lines + 1] = indent .. cell(f.message)
    if f.fix then lines[#lines + 1] = indent .. "fix: " .. cell(f.fix) end
  end
  lines[#lines + 1] = ("%d error(s), %d warning(s), %d note(s)"):format(count(findings, "error"),
    count(findings, "warning"), #findings - count(findings, "error") - count(findings, "warning"))
  return table.concat(lines, "\n") .. "\n"
end

-- What a printed fact must not carry: the secrets a pool body may hold.
local SECRET_KEYS = { password = true, accountKey = true, sasKey = true, sshPrivateKey = true,
  protectedSettings = true }

local function redacted(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local out = setmetatable({}, getmetatable(v) == getmetatable(azbatch.json.array {}) and getmetatable(v) or nil)
  seen[v] = out
  for k, x in pairs(v) do
    if SECRET_KEYS[k] and x ~= nil then out[k] = "REDACTED" else out[k] = redacted(x, seen) end
  end
  return out
end

local function plain(v, seen)
  -- checked specs and image references are userdata-backed: print their fields
  if type(v) == "userdata" then return tostring(v) end
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local mt = getmetatable(v)
  local out = setmetatable({}, mt == getmetatable(azbatch.json.array {}) and mt or nil)
  seen[v] = out
  for k, x in pairs(v) do
    if type(x) ~= "function" then out[k] = plain(x, seen) end
  end
  return out
end

local PREFLIGHT = {
  name = "preflight", account = true, default_output = "table",
  usage = "azbatch preflight [--json-file FILE] [--id ID --vm-size SIZE --image IMAGE ...] (the flags of pool create)",
  summary = "Check a pool spec before it is sent. Checks the image's subscription, region, replicas and OS "
    .. "against the node agent, the resize timeout, quotas, Entra ID where Shared Key is refused, end of life. Prints "
    .. "the findings with their fixes (--output json: {\"findings\": [...], \"facts\": {...}}); exits 1 when "
    .. "an error is found, 0 otherwise.",
  flags = with({ body.JSON_FILE }, body.CREATE, body.REMOVED_FLAGS),
  run = function(ctx, o)
    -- the body's own warnings are findings too: printed once, below
    local spec, status = pool.pool_spec(ctx, o, { quiet = true })
    if not spec then return status end
    local c, cstatus = ctx:connect()
    if not c then return cstatus end
    local opts, ostatus = ctx:arm_opts()
    if not opts then return ostatus end
    local r, why, e = c:preflight(spec, opts)
    if not r then return ctx:fail(why, e) end
    local printed = ctx:emit({ findings = azbatch.json.array(r.findings), facts = redacted(plain(r.facts)) },
      { text = findings_text, rows = function(v) return v.findings end, columns = FINDING_COLUMNS })
    if printed ~= 0 then return printed end
    local errors = count(r.findings, "error")
    if errors > 0 then
      ctx.err:write(("error: preflight: %d error(s) found; the pool would fail as specified\n"):format(errors))
      return 1
    end
    return 0
  end,
}

-- }==================================================================


-- {==================================================================
-- supported images
-- ===================================================================

local function eol_text(img)
  local eol = img.batchSupportEndOfLife
  if type(eol) ~= "string" then return nil end
  local date = eol:match("^(%d%d%d%d%-%d%d%-%d%d)") or eol
  if date < os.date("!%Y-%m-%d") then return date .. " (past)" end
  return date
end

local SUPPORTED_VIEW = { columns = {
  { "NodeAgentSKUId", function(i) return i.nodeAgentSKUId end },
  { "OsType", function(i) return i.osType end },
  { "Publisher", function(i) return type(i.imageReference) == "table" and i.imageReference.publisher end },
  { "Offer", function(i) return type(i.imageReference) == "table" and i.imageReference.offer end },
  { "Sku", function(i) return type(i.imageReference) == "table" and i.imageReference.sku end },
  { "Verification", function(i) return i.verificationType end },
  { "EndOfLife", eol_text },
} }

local function supported(name, hidden)
  return {
    name = name, account = true, hidden = hidden,
    usage = "azbatch " .. name .. " [--filter ODATA]",
    summary = "List the images and node agents the account supports, with end-of-life dates. "
      .. "The table marks dates already past (batchSupportEndOfLife).",
    flags = { body.FILTER },
    run = function(ctx, o)
      local c, status = ctx:connect()
      if not c then return status end
      local images, msg, e = azbatch.collect(c:list_supported_images { filter = o.filter })
      if not images then return ctx:fail(msg, e) end
      return ctx:emit(azbatch.json.array(images), SUPPORTED_VIEW)
    end,
  }
end

-- }==================================================================


-- {==================================================================
-- images
-- ===================================================================

local RESOURCE_VIEW = { columns = {
  { "Name", function(r) return r.name end },
  { "Location", function(r) return r.location end },
  { "State", function(r) return type(r.properties) == "table" and r.properties.provisioningState end },
  { "Id", function(r) return r.id end },
} }

local function step_progress(ctx, label)
  local prog = ctx:progress()
  return prog, function(p)
    if p.region then
      prog:step(label, tostring(p.state or "pending"), p.progress and (cell(p.progress) .. "%") or nil)
    else
      prog:step(label, tostring(p.status or p.provisioningState or "running"))
    end
  end
end

local TIMEOUT = { name = "timeout", key = "timeout", kind = "number", metavar = "SECONDS",
  help = "how long to wait for the operation (default 3600)" }

local INTERVAL = { name = "interval", key = "interval", kind = "number", metavar = "SECONDS",
  help = "seconds between looks at the long-running operation (default 5)" }

local FROM_VHD = { { name = "blob", key = "blob", kind = "string", metavar = "URL",
    help = "https://{storage}.blob.core.windows.net/.../image.vhd (required)" },
  { name = "name", key = "name", kind = "string", metavar = "NAME", help = "the managed image's name (required)" },
  { name = "os-type", key = "osType", kind = "string", choices = { "linux", "windows" }, help = "default linux" },
  { name = "resource-group", key = "resourceGroup", kind = "string", metavar = "RG",
    help = "default: the Batch account's resource group" },
  { name = "hyperv-generation", key = "hypervGeneration", kind = "string", choices = { "V1", "V2" },
    help = "default V1" },
  INTERVAL, TIMEOUT }

local PUBLISH = { { name = "source", key = "source", kind = "string", metavar = "ID",
    help = "the managed image (or gallery version) id to publish (required)" },
  { name = "gallery", key = "gallery", kind = "string", metavar = "NAME", help = "the Compute Gallery (required)" },
  { name = "definition", key = "definition", kind = "string", metavar = "NAME",
    help = "the image definition, made when missing (required)" },
  { name = "version", key = "version", kind = "string", metavar = "X.Y.Z", help = "the new version (required)" },
  { name = "nodes", key = "nodes", kind = "integer", metavar = "N",
    help = "the largest pool to run it: ceil(N/600) replicas in the account's region" },
  { name = "replicas", key = "replicas", kind = "integer", metavar = "N", help = "at least this many replicas" },
  { name = "regions", key = "regions", kind = "list", metavar = "REGION", help = "more regions, one replica each" },
  { name = "resource-group", key = "resourceGroup", kind = "string", metavar = "RG",
    help = "the gallery's resource group (default: the Batch account's)" },
  { name = "publisher", key = "publisher", kind = "string", metavar = "NAME", help = "a new definition's publisher" },
  { name = "offer", key = "offer", kind = "string", metavar = "NAME", help = "a new definition's offer" },
  { name = "sku", key = "sku", kind = "string", metavar = "NAME", help = "a new definition's sku" },
  { name = "node-agent-sku-id", key = "nodeAgent", kind = "string", metavar = "SKU",
    help = "recorded in the version's tags, so that pools on it get their node agent chosen" },
  { name = "marketplace", key = "marketplace", kind = "string", metavar = "URN",
    help = "the marketplace image it was built from (recorded in its tags)" },
  { name = "exclude-from-latest", key = "excludeFromLatest", kind = "flag", help = "'latest' never resolves to it" },
  { name = "end-of-life", key = "endOfLife", kind = "string", metavar = "DATE", help = "ISO 8601 end-of-life date" },
  INTERVAL, TIMEOUT }

local REPLICATE = { { name = "image", key = "image", kind = "string", metavar = "VERSION_ID",
    help = "the gallery image version id (required)" },
  { name = "nodes", key = "nodes", kind = "integer", metavar = "N",
    help = "the pool size to serve: ceil(N/600) replicas (required)" },
  { name = "region", key = "region", kind = "string", metavar = "REGION", help = "default: the Batch account's" },
  { name = "replicas", key = "replicas", kind = "integer", metavar = "N", help = "at least this many" },
  INTERVAL, TIMEOUT }

local function run_arm(ctx, label, call)
  local c, status = ctx:connect()
  if not c then return status end
  local opts, ostatus = ctx:arm_opts(true)
  if not opts then return ostatus end
  local prog, on_progress = step_progress(ctx, label)
  opts.on_progress = on_progress
  local res, why, e = call(c, opts)
  prog:done()
  if not res then return ctx:fail(why, e) end
  return ctx:emit(res, RESOURCE_VIEW)
end

-- }==================================================================


-- {==================================================================
-- pool images
-- ===================================================================

local function versions_text(r)
  local parts = {}
  for _, v in ipairs(type(r.versions) == "table" and r.versions or {}) do
    parts[#parts + 1] = ("%s (%s)"):format(cell(v.version), cell(v.nodes))
  end
  return table.concat(parts, ", ")
end

local function findings_codes(r)
  local parts = {}
  for _, f in ipairs(type(r.findings) == "table" and r.findings or {}) do
    parts[#parts + 1] = ("%s %s"):format(cell(f.severity), cell(f.code))
  end
  return table.concat(parts, ", ")
end

local IMAGES_VIEW = { columns = {
  { "Pool", function(r) return r.id end },
  { "Kind", function(r) return r.kind end },
  { "Custom", function(r) return tostring(r.custom) end },
  { "Image", function(r) return pool.image_text { virtualMachineConfiguration = { imageReference = r.image } } end },
  { "Versions", versions_text },
  { "NodeAgent", function(r) return r.node_agent end },
  { "Findings", findings_codes },
} }

local POOL_IMAGES = {
  name = "pool images", account = true,
  usage = "azbatch pool images [--pool-id ID | --filter ODATA] [--no-nodes]",
  summary = "Audit the images of every pool (or one). Shows each pool's image kind, whether it is a custom "
    .. "image, the image, the versions its nodes run, the node agent, and findings (end of life, no replica in "
    .. "the region, mixed versions).",
  flags = { body.POOL_ID, body.FILTER,
    { name = "no-nodes", key = "noNodes", kind = "flag", help = "do not list each pool's nodes" } },
  run = function(ctx, o)
    if o.poolId and o.filter then return ctx:usage_error("give --pool-id or --filter, not both") end
    local c, status = ctx:connect()
    if not c then return status end
    local opts, ostatus = ctx:arm_opts()
    if not opts then return ostatus end
    local nodes
    if o.noNodes then nodes = false end
    local reports, why, e
    if o.poolId then
      local r
      r, why, e = c:pool_image(o.poolId, { arm = opts.arm, nodes = nodes })
      reports = r and { r }
    else
      reports, why, e = c:pool_images { arm = opts.arm, nodes = nodes, filter = o.filter }
    end
    if not reports then return ctx:fail(why, e) end
    for _, r in ipairs(reports) do
      r.findings = azbatch.json.array(r.findings or {})
      r.versions = azbatch.json.array(r.versions or {})
    end
    return ctx:emit(azbatch.json.array(plain(reports)), IMAGES_VIEW)
  end,
}

-- }==================================================================


M.commands = {
  PREFLIGHT,
  supported("supported-images"),
  supported("pool supported-images list"),
  {
    name = "image from-vhd", account = true,
    usage = "azbatch image from-vhd --blob URL --name NAME [--os-type linux|windows] [--resource-group RG]",
    summary = "Make a managed image from a generalized VHD blob. The older custom-image flow: the blob's "
      .. "storage account must be in the Batch account's subscription and region (checked first). Needs Entra ID.",
    flags = FROM_VHD,
    run = function(ctx, o)
      if not ctx:need(o, { FROM_VHD[1], FROM_VHD[2] }) then return 2 end
      return run_arm(ctx, o.name, function(c, opts)
        return c:image_from_vhd { blob = o.blob, name = o.name, os_type = o.osType, resource_group = o.resourceGroup,
          hyperv_generation = o.hypervGeneration, timeout = o.timeout, interval = o.interval, arm = opts.arm,
          account = opts.account, subscription = opts.subscription, on_progress = opts.on_progress }
      end)
    end,
  },
  {
    name = "image publish", account = true,
    usage = "azbatch image publish --source IMAGE_ID --gallery NAME --definition NAME --version X.Y.Z "
      .. "[--nodes N] [--regions REGION ...]",
    summary = "Publish a managed image as a Compute Gallery version. It gets the replicas a pool needs in the "
      .. "Batch account's region (one per 600 VMs). Needs Entra ID.",
    flags = PUBLISH,
    run = function(ctx, o)
      if not ctx:need(o, { PUBLISH[1], PUBLISH[2], PUBLISH[3], PUBLISH[4] }) then return 2 end
      return run_arm(ctx, o.version, function(c, opts)
        return c:publish_image { source = o.source, gallery = o.gallery, definition = o.definition,
          version = o.version, nodes = o.nodes, replicas = o.replicas, regions = o.regions,
          resource_group = o.resourceGroup, publisher = o.publisher, offer = o.offer, sku = o.sku,
          node_agent = o.nodeAgent, marketplace = o.marketplace, exclude_from_latest = o.excludeFromLatest,
          end_of_life = o.endOfLife, timeout = o.timeout, interval = o.interval, arm = opts.arm,
          account = opts.account,
          subscription = opts.subscription, on_progress = opts.on_progress }
      end)
    end,
  },
  {
    name = "image replicate", account = true,
    usage = "azbatch image replicate --image VERSION_ID --nodes N [--region REGION]",
    summary = "Raise a gallery version's replicas for a pool of N nodes. The region is the Batch account's "
      .. "unless given; waits until replication there is complete. Needs Entra ID.",
    flags = REPLICATE,
    run = function(ctx, o)
      if not ctx:need(o, { REPLICATE[1], REPLICATE[2] }) then return 2 end
      return run_arm(ctx, "replication", function(c, opts)
        return c:replicate_image { image = o.image, nodes = o.nodes, region = o.region, replicas = o.replicas,
          timeout = o.timeout, interval = o.interval, arm = opts.arm, account = opts.account,
          subscription = opts.subscription,
          on_progress = opts.on_progress }
      end)
    end,
  },
  POOL_IMAGES,
}

return M
