--- The azbatch command line: az-style verbs over the azbatch library.
-- main(argv, out, err) returns the exit status: 0 success, 1 a validation or
-- service error (message on stderr), 2 bad usage.
local azbatch = require "azbatch"
local args = require "azbatch.args"

local M = {}

local EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

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

commands["pool create"] = {
  usage = "azbatch pool create [--json-file FILE] [--id ID --vm-size SIZE --image IMAGE "
    .. "--node-agent-sku-id SKU ...] [--dry-run]",
  summary = "Create a pool. The body is validated locally first; --dry-run prints the exact JSON "
    .. "body that would be sent and sends nothing. Flags override fields of --json-file.",
  flags = {
    { name = "id", key = "id", kind = "string", metavar = "ID", help = "pool id (1-64 letters, digits, - and _)" },
    { name = "vm-size", key = "vmSize", kind = "string", metavar = "SIZE", help = "VM size, e.g. Standard_D4s_v5" },
    { name = "target-dedicated-nodes", key = "targetDedicatedNodes", kind = "integer", metavar = "N",
      help = "dedicated compute nodes" },
    { name = "target-low-priority-nodes", key = "targetLowPriorityNodes", kind = "integer", metavar = "N",
      help = "Spot/low-priority compute nodes" },
    { name = "image", key = "image", kind = "string", metavar = "IMAGE",
      help = "URN publisher:offer:sku[:version] or an image resource id" },
    { name = "node-agent-sku-id", key = "nodeAgentSKUId", kind = "string", metavar = "SKU",
      help = "node agent SKU matching the image, e.g. 'batch.node.ubuntu 22.04'" },
    { name = "resize-timeout", key = "resizeTimeout", kind = "string", metavar = "DURATION",
      help = "ISO-8601 duration, e.g. PT30M" },
    { name = "json-file", key = "jsonFile", kind = "string", metavar = "FILE",
      help = "a pool body in the REST format (Pool - Add)" },
    { name = "dry-run", key = "dryRun", kind = "flag", help = "validate and print the request body; send nothing" },
  },
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
    return M.send_create and M.send_create(spec, o, out, err)
      or (err:write("error: sending requests needs a client; use --dry-run\n") and EXIT_FAIL)
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
    local output = o.output
    o.output = nil
    local p, msg = azbatch.plan(o)
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
  o._positional = positional
  return cmd.run(o, out, err)
end

return M
