--- The azbatch command line: az-style verbs over the azbatch library.
-- main(argv, out, err [, env]) returns the exit status: 0 success, 1 a
-- validation or service error (one "error:" line on stderr), 2 bad usage.
-- This file is the dispatcher: the verb tables (cli_pool, cli_node,
-- cli_image, cli_rollout), the flags every verb takes (--output, --query,
-- --verbose, --debug, the account), the context a verb runs in, help and
-- the completion verb.
local azbatch = require "azbatch"
local core = require "azbatch.core"
local args = require "azbatch.args"
local output = require "azbatch.cli_output"
local getenv = azbatch.credential.getenv

local M = {}

local EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
local EXIT_INTERRUPTED = 130       -- 128 + SIGINT, as a shell reports it
M.EXIT_OK, M.EXIT_FAIL, M.EXIT_USAGE, M.EXIT_INTERRUPTED = EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED

local ERROR_MAX = 2048

-- Kept for callers of the earlier single-file CLI.
M.number_text, M.pretty, M.table_text = output.number_text, output.pretty, output.table_text

local function clean(s, max) return azbatch.sanitize(tostring(s), max or ERROR_MAX) end

-- {==================================================================
-- Flags every verb takes
-- ===================================================================

local GLOBAL = {
  { name = "output", short = "o", key = "output", kind = "string", choices = output.FORMATS, group = "global options",
    help = "json (indented), jsonc (json in colour on a terminal), table, tsv or none" },
  { name = "query", key = "query", kind = "string", metavar = "JMESPATH", group = "global options",
    help = "JMESPath query applied to the answer before it is printed" },
  { name = "verbose", key = "verbose", kind = "flag", group = "global options",
    help = "each request's method, URL, status and time on stderr (never a secret)" },
  { name = "debug", key = "debug", kind = "flag", group = "global options",
    help = "--verbose and libcurl's connection events (redacted)" },
  { name = "only-show-errors", key = "onlyShowErrors", kind = "flag", group = "global options",
    help = "no warnings, notes or progress on stderr" },
}

local ACCOUNT = {
  { name = "account-name", key = "accountName", kind = "string", metavar = "NAME", group = "account",
    help = "Batch account name (env AZURE_BATCH_ACCOUNT; else from the endpoint's host)" },
  { name = "account-key", key = "accountKey", kind = "string", metavar = "KEY", secret = true, group = "account",
    help = "Shared Key (env AZURE_BATCH_ACCESS_KEY); Entra ID is used without one" },
  { name = "account-endpoint", key = "accountEndpoint", kind = "string", metavar = "URL", group = "account",
    help = "https://{account}.{region}.batch.azure.com (env AZURE_BATCH_ENDPOINT)" },
}

-- Every flag of a verb: its own, the account's, the global ones.
local function all_flags(cmd)
  if cmd.all_flags then return cmd.all_flags end
  local flags = {}
  for _, f in ipairs(cmd.flags or {}) do flags[#flags + 1] = f end
  if cmd.account then for _, f in ipairs(ACCOUNT) do flags[#flags + 1] = f end end
  for _, f in ipairs(GLOBAL) do
    if f.name ~= "output" or cmd.output ~= false then flags[#flags + 1] = f end
  end
  cmd.all_flags = flags
  return flags
end
M.all_flags = all_flags

-- }==================================================================


-- {==================================================================
-- The account
-- ===================================================================

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

-- Query parameter names whose values are never printed.
local function secret_param(name)
  local n = name:lower()
  return n ~= "$skiptoken" and (n:find("sig", 1, true) or n:find("secret", 1, true) or n:find("token", 1, true)
    or n:find("key", 1, true) or n:find("password", 1, true) or n:find("code", 1, true)) ~= nil
end

--- The URL of a request for --verbose: query values that could be
-- secrets redacted (no Batch or ARM read carries one; a next link could).
function M.shown_url(base, path, opts, api_version)
  local url = opts and opts.url
  if not url then
    local q = {}
    for k, v in pairs(opts and opts.query or {}) do
      if v ~= nil and v ~= false then
        if type(v) == "table" then v = table.concat(v, ",") end
        q[#q + 1] = { k, tostring(v) }
      end
    end
    if api_version and not (opts and opts.query and opts.query["api-version"]) then
      q[#q + 1] = { "api-version", api_version }
    end
    table.sort(q, function(a, b) return a[1] < b[1] end)
    local parts = {}
    for i, kv in ipairs(q) do parts[i] = kv[1] .. "=" .. kv[2] end     -- readable, not as sent
    url = base .. path .. (#parts > 0 and ("?" .. table.concat(parts, "&")) or "")
  end
  url = url:gsub("([?&])([^=&#]+)=([^&#]*)", function(sep, k, v)
    if secret_param(core.url_decode(k) or k) then v = "REDACTED" end
    return sep .. k .. "=" .. v
  end)
  return clean(url, 1024)
end

-- Log every request of a client on stderr: method, URL, status, time.
local function log_requests(c, ctx)
  local real = c.request
  c.request = function(self, method, path, opts)
    local t0 = core.now()
    local r1, r2, r3 = real(self, method, path, opts)
    local ms = math.floor((core.now() - t0) * 1000 + 0.5)
    local url = M.shown_url(self.endpoint, path or "", opts, self.api_version)
    local what
    if r1 ~= nil then
      what = ("%d"):format(r2.status)
      if r2.request_id then what = what .. " request-id " .. r2.request_id end
    else
      local e = type(r3) == "table" and r3 or {}
      what = e.status and ("%d %s"):format(e.status, tostring(e.code)) or (tostring(e.kind or "failed") .. " error")
      if e.request_id then what = what .. " request-id " .. e.request_id end
    end
    local attempts = r1 ~= nil and r2.attempts or (type(r3) == "table" and r3.attempts)
    ctx.err:write(("verbose: %s %s -> %s (%d ms%s)\n"):format(method:upper(), url, clean(what, 256), ms,
      attempts and attempts > 1 and (", " .. attempts .. " attempts") or ""))
    return r1, r2, r3
  end
end

-- }==================================================================


-- {==================================================================
-- The context a verb runs in
-- ===================================================================

local Ctx = {}
Ctx.__index = Ctx

function Ctx:fail(msg, e)
  self.err:write("error: ", clean(msg), "\n")
  -- a validation error names every problem (the first is in msg)
  for i = 2, #(type(e) == "table" and e.errors or {}) do
    self.err:write("  ", clean(("%s: %s"):format(e.errors[i].field, e.errors[i].message)), "\n")
  end
  return EXIT_FAIL
end

function Ctx:usage_error(msg)
  self.err:write("error: ", clean(msg), "\n")
  if self.usage then self.err:write("usage: ", self.usage, "\n") end
  return EXIT_USAGE
end

--- ctx:need(o, flag | {flag, ...}, ...) -> true, or false after the usage
-- error naming the first required flag not given (an empty list counts as not).
function Ctx:need(o, ...)
  for i = 1, select("#", ...) do
    local x = select(i, ...)
    for _, f in ipairs(x.name and { x } or x) do
      local v = o[f.key]
      if v == nil or (type(v) == "table" and #v == 0) then
        self:usage_error(("--%s is required"):format(f.name))
        return false
      end
    end
  end
  return true
end

function Ctx:warn(msg)
  if not self.o.onlyShowErrors then self.err:write("warning: ", clean(msg), "\n") end
end

function Ctx:note(msg)
  if not self.o.onlyShowErrors then self.err:write("note: ", clean(msg), "\n") end
end

--- The validation warnings of a body ({field, message}...).
function Ctx:warnings(list)
  for _, w in ipairs(type(list) == "table" and list or {}) do
    self:warn(("%s: %s"):format(w.field, w.message))
  end
end

--- Is w a terminal?
function M.is_terminal(w)
  if type(w) == "table" then return w.terminal == true end
  local fd = (w == io.stdout and 1) or (w == io.stderr and 2)
  return fd ~= nil and require("azbatch.core").isatty(fd)
end

--- A progress display on stderr: a bar when stdout and stderr are terminals.
function Ctx:progress()
  local sink = self.err
  if self.o.onlyShowErrors then sink = { write = function() end } end
  -- loaded here: only the waiting verbs need it
  return require("azbatch.cli_progress").new(sink,
    { terminal = M.is_terminal(self.out) and M.is_terminal(self.err) })
end

--- The Batch client from the flags and the environment (one per run).
-- Returns client, or nil and the exit status (the message is written).
function Ctx:connect()
  if self.client then return self.client end
  local o, env = self.o, self.env
  local endpoint = o.accountEndpoint or getenv(env, "AZURE_BATCH_ENDPOINT")
  if not endpoint then
    return nil, self:usage_error("no Batch account endpoint: pass --account-endpoint or set AZURE_BATCH_ENDPOINT")
  end
  local cred, why, status = M.find_credential(o, endpoint, env)
  if not cred then
    self.err:write("error: ", clean(why), "\n")
    return nil, status
  end
  local c, msg = azbatch.client { endpoint = endpoint, credential = cred, verbose = o.debug or nil }
  if not c then return nil, self:fail(msg) end
  if o.verbose or o.debug then log_requests(c, self) end
  self.client = c
  return c
end

--- The ARM client (preflight, images, the audit): Entra ID on the Batch
-- client's transport; endpoint AZURE_RESOURCE_MANAGER_ENDPOINT or Azure's.
function Ctx:arm()
  if self.arm_client then return self.arm_client end
  local c, status = self:connect()
  if not c then return nil, status end
  if azbatch.credential.is_shared_key(c.credential) then
    return nil, self:fail("this needs Azure Resource Manager, which takes Microsoft Entra ID, not a Shared Key: "
      .. "leave out --account-key and AZURE_BATCH_ACCESS_KEY, and set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
      .. "AZURE_CLIENT_SECRET (or use a managed identity or az login)")
  end
  local arm, why = azbatch.arm { endpoint = getenv(self.env, "AZURE_RESOURCE_MANAGER_ENDPOINT"),
    credential = c.credential, http = c.http, verbose = self.o.debug or nil }
  if not arm then return nil, self:fail(why) end
  if self.o.verbose or self.o.debug then log_requests(arm, self) end
  self.arm_client = arm
  return arm
end

--- Options for the library's ARM-backed calls: the ARM client when one
-- can be had (nil with a Shared Key: the calls then say what they skip),
-- and the account's resource id and subscription from the environment.
function Ctx:arm_opts(required)
  local opts = { account = getenv(self.env, "AZURE_BATCH_ACCOUNT_RESOURCE_ID"),
    subscription = getenv(self.env, "AZURE_SUBSCRIPTION_ID") }
  local c, status = self:connect()
  if not c then return nil, status end
  if required or not azbatch.credential.is_shared_key(c.credential) then
    local arm, astatus = self:arm()
    if not arm then return nil, astatus end
    opts.arm = arm
  end
  return opts
end

--- Print the answer: --query first, then the chosen format.
-- view: {columns=, rows=} or {text=} for table and tsv (see cli_output).
function Ctx:emit(value, view)
  local generic = false
  if self.query then
    local result, why = self.query(value)
    if result == nil and why then return self:fail("--query: " .. why) end
    value, generic = result, true
  end
  local fmt = self.o.output or self.default_output
  -- only jsonc asks whether stdout is a terminal: the answer costs a process
  local terminal = fmt == "jsonc" and getenv(self.env, "NO_COLOR") == nil and M.is_terminal(self.out)
  local ok, why = output.write(self.out, value, fmt, view, { generic = generic, terminal = terminal })
  if not ok then return self:fail(why) end
  return EXIT_OK
end

--- Close what this run opened.
function Ctx:close()
  if self.arm_client then self.arm_client:close() end
  if self.client then self.client:close() end
end

-- }==================================================================


-- {==================================================================
-- The verbs
-- ===================================================================

-- The module that defines each verb: a call loads only its own (the others
-- cost 1.4M instructions of a cold call; lazy_load_spec checks this list
-- against the modules). Help, completion and an unknown verb load them all.
local VERB_MODULES = {
  ["azbatch.cli_pool"] = { "pool create", "pool show", "pool list", "pool delete", "pool resize", "pool wait",
    "pool set", "pool reset", "pool autoscale enable", "pool autoscale disable", "pool autoscale evaluate",
    "pool node-counts list", "pool exists", "plan" },
  ["azbatch.cli_node"] = { "node list", "node show", "node delete" },
  ["azbatch.cli_image"] = { "preflight", "supported-images", "pool supported-images list", "image from-vhd",
    "image publish", "image replicate", "pool images" },
  ["azbatch.cli_rollout"] = { "rollout start", "rollout status", "rollout resume", "rollout abort",
    "rollout forget", "run" },
}
M.VERB_MODULES = VERB_MODULES

local module_of = {}
for mod, names in pairs(VERB_MODULES) do
  for _, name in ipairs(names) do module_of[name] = mod end
end

local commands, order, loaded = {}, {}, {}

local function add(list)
  for _, cmd in ipairs(list) do
    assert(not rawget(commands, cmd.name), cmd.name)
    commands[cmd.name] = cmd
    order[#order + 1] = cmd.name
  end
end

local function load_verbs(mod)
  if not loaded[mod] then
    loaded[mod] = true
    add(require(mod).commands)
  end
end

-- (in any order: every listing of the verbs sorts them)
local function load_all_verbs()
  for mod in pairs(VERB_MODULES) do load_verbs(mod) end
end

-- commands[name] loads the verb's module; pairs(commands) loads them all
setmetatable(commands, {
  __index = function(t, name)
    local mod = module_of[name]
    if mod and not loaded[mod] then
      load_verbs(mod)
      return rawget(t, name)
    end
  end,
  __pairs = function(t)
    load_all_verbs()
    return next, t, nil
  end,
})
M.commands = commands

local function summary_line(cmd) return (cmd.summary:match("^[^.]*")) end

local function top_help()
  load_all_verbs()
  local names = {}
  for _, name in ipairs(order) do
    if not commands[name].hidden then names[#names + 1] = name end
  end
  table.sort(names)
  local lines = { "usage: azbatch <command> [options]", "", "Azure Batch pools from custom images.", "",
    "commands:" }
  for _, name in ipairs(names) do
    lines[#lines + 1] = ("  %-28s %s"):format(name, summary_line(commands[name]))
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Run 'azbatch <command> --help' for a command's options. Every command takes --output, "
    .. "--query, --verbose and --debug."
  return table.concat(lines, "\n") .. "\n"
end

local function is_help(a) return a == "-h" or a == "--help" end

-- The command named by the longest prefix of argv (up to three words).
local function find_command(argv)
  for n = math.min(3, #argv), 1, -1 do
    local name = table.concat(argv, " ", 1, n)
    if commands[name] then return commands[name], n end
  end
end

-- The words that may follow 'prefix' (a list of words) among the verbs.
local function next_words(prefix)
  local out, seen = {}, {}
  local p = table.concat(prefix, " ")
  load_all_verbs()
  for _, name in ipairs(order) do
    if not commands[name].hidden and (p == "" or name:sub(1, #p + 1) == p .. " ") then
      local rest = p == "" and name or name:sub(#p + 2)
      local word = rest:match("^%S+")
      if word and not seen[word] then
        seen[word] = true
        out[#out + 1] = word
      end
    end
  end
  table.sort(out)
  return out
end

--- Completion candidates for the words typed so far (the last one is the
-- word being completed). "__files__" asks the shell for file names.
function M.complete(words)
  local typed = table.move(words, 1, math.max(0, #words - 1), 1, {})
  local cmd, n = find_command(typed)
  if not cmd then return next_words(typed) end
  local flags = all_flags(cmd)
  local byname, byshort = args.index(flags)
  local function takes_value(w)
    local g = w:match("^%-%-([^=]+)$") and byname[w:sub(3)] or w:match("^%-(%a)$") and byshort[w:sub(2)]
    return g and g.kind ~= "flag"
  end
  if cmd.positional then
    local i = n + 1
    while i <= #typed do
      if takes_value(typed[i]) then i = i + 1
      elseif typed[i]:sub(1, 1) ~= "-" then return {} end      -- past the script: its own arguments
      i = i + 1
    end
  end
  local prev = typed[#typed]
  local f = prev and #typed > n and (prev:match("^%-%-(.+)$") and byname[prev:sub(3)]
    or prev:match("^%-(%a)$") and byshort[prev:sub(2)])
  if f and f.kind ~= "flag" then
    if f.kind == "bool" then return { "false", "true" } end
    if f.choices then return f.choices end
    if f.metavar == "FILE" or f.metavar == "SCRIPT" then return { "__files__" } end
    return {}
  end
  if cmd.positional == "SCRIPT" and not (words[#words] or ""):match("^%-") then return { "__files__" } end
  local out = {}
  for _, g in ipairs(flags) do
    if not g.hidden and not g.removed then out[#out + 1] = "--" .. g.name end
  end
  out[#out + 1] = "--help"
  table.sort(out)
  return out
end

add { {
  name = "__complete", hidden = true, output = false, flags = {},
  usage = "azbatch __complete WORD...", summary = "Completion candidates (for scripts/azbatch-completion.bash).",
  raw = true,
  run = function(ctx, argv)
    for _, w in ipairs(M.complete(argv)) do ctx.out:write(w, "\n") end
    return EXIT_OK
  end,
} }

-- }==================================================================


--- Run the CLI.
---@param argv string[]
---@param out? file* defaults to io.stdout
---@param err? file* defaults to io.stderr
---@param env? table<string,string> the environment (default: os.getenv)
---@return integer status
function M.main(argv, out, err, env)
  out, err = out or io.stdout, err or io.stderr
  -- keys and tokens live in this process: never in a core file
  core.disable_core_dumps()
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
  local cmd, n = find_command(argv)
  local ctx = setmetatable({ out = out, err = err, env = env, o = {} }, Ctx)
  if not cmd then
    local typed = {}
    for i = 1, #argv do
      if argv[i]:sub(1, 1) == "-" then break end
      typed[#typed + 1] = argv[i]
    end
    if #typed == 0 then
      return ctx:usage_error(("unknown option '%s' (try 'azbatch --help')"):format(argv[1]))
    end
    local subs = {}
    load_all_verbs()
    for _, name in ipairs(order) do
      if not commands[name].hidden and name:sub(1, #typed[1] + 1) == typed[1] .. " " then
        subs[#subs + 1] = name
      end
    end
    table.sort(subs)
    local group = table.concat(typed, " ")
    local asked = argv[#typed + 1] and is_help(argv[#typed + 1])
    if #subs > 0 and (#typed == #argv or asked) and #next_words(typed) > 0 then
      local w = asked and out or err
      w:write(("usage: azbatch %s <command>\n\ncommands:\n"):format(group))
      local p = group .. " "
      for _, s in ipairs(subs) do
        if s:sub(1, #p) == p then w:write(("  %-28s %s\n"):format(s, summary_line(commands[s]))) end
      end
      return asked and EXIT_OK or EXIT_USAGE
    end
    return ctx:usage_error(("unknown command '%s' (try 'azbatch --help')")
      :format(table.concat(argv, " ", 1, math.min(#typed > 0 and #typed or 1, 3))))
  end
  local rest = table.move(argv, n + 1, #argv, 1, {})
  if cmd.raw then return cmd.run(ctx, rest) end
  local flags = all_flags(cmd)
  for _, a in ipairs(rest) do
    if a == "--" or (cmd.positional and a:sub(1, 1) ~= "-") then break end
    if is_help(a) then
      out:write(args.help(cmd.usage, cmd.summary, flags))
      return EXIT_OK
    end
  end
  ctx.usage, ctx.default_output = cmd.usage, cmd.default_output or "json"
  local o, why, positional = args.parse(rest, flags, { stop_at_positional = cmd.positional ~= nil })
  if not o then return ctx:usage_error(why) end
  ctx.o = o
  if not cmd.positional and positional and #positional > 0 then
    return ctx:usage_error(("unexpected argument '%s'"):format(positional[1]))
  end
  if o.query then
    local q, qwhy = require("azbatch.cli_query").compile(o.query)     -- loaded only for a query
    if not q then return ctx:usage_error("--query: " .. qwhy) end
    ctx.query = q
  end
  local ok, status = xpcall(cmd.run, debug.traceback, ctx, o, positional)
  ctx:close()
  if not ok then
    -- a bug, here or in the library: one line, the trace only with --debug
    local first = tostring(status):match("^[^\n]*")
    if first:match("^interrupted!$") or first:match(":%d+: interrupted!$") then
      -- SIGINT (the launcher raises it at the next Lua instruction), not a bug
      err:write("error: interrupted: what the service did with a request in flight is unknown\n")
      return EXIT_INTERRUPTED
    end
    if o.debug then err:write(clean(status, 8192):gsub("\t", "  "), "\n") end
    return ctx:fail("internal error: " .. first)
  end
  return status
end

return M
