--- Command-line flag parsing for the azbatch CLI.
-- Flags are declared per verb:
--   { name = "vm-size", key = "vmSize", kind = "string"|"integer"|"number"|"flag"|"bool"|"list",
--     choices = {...}, secret = true (its value never appears in a message),
--     short = "o" (-o), aliases = {...}, hidden = true (not in help or completion),
--     removed = "why" (parsed only to say why it cannot be used), group = "Start task" }
-- A flag's value is the next argument or follows '=' (--name=VALUE). The next
-- argument is never taken when it starts with '-': "--pool-id --yes" is a
-- missing value, not a pool called "--yes". A value that starts with '-' is
-- written --name=VALUE.
-- Kinds: "number" takes a plain decimal (0.5); "flag" takes no value (true when given); "bool" takes true or false
-- (az's three-state flags); "list" takes one or more values, as az's
-- space-separated lists do (--metadata a=b c=d), and may be repeated.
local M = {}

local core = require "azbatch.core"

-- " (did you mean --NAME?)" for the closest flag, by the core's one edit distance.
local function suggest(name, flags)
  local names = {}
  for _, f in ipairs(flags) do
    if not f.hidden then names[#names + 1] = f.name end
  end
  local best = core.suggest(name, names)
  return best and (" (did you mean --%s?)"):format(best) or ""
end

--- name (and aliases, and short letter) -> flag
local function index(flags)
  local byname, byshort = {}, {}
  for _, f in ipairs(flags) do
    byname[f.name] = f
    for _, a in ipairs(f.aliases or {}) do byname[a] = f end
    if f.short then byshort[f.short] = f end
  end
  return byname, byshort
end
M.index = index

--- with(list, flag | {flag, ...}, ...) -> a new list: list's flags, then the others
function M.with(list, ...)
  local out = table.move(list, 1, #list, 1, {})
  for i = 1, select("#", ...) do
    local x = select(i, ...)
    if x.name then out[#out + 1] = x else table.move(x, 1, #x, #out + 1, out) end
  end
  return out
end

--- Is `a` something the parser reads as a flag: a known --name[=...], -x, --, -h or --help?
local function known_flag(a, byname, byshort)
  if a == "--" or a == "-h" or a == "--help" then return true end
  local name = a:match("^%-%-([^=]+)")
  if name then return byname[name] ~= nil end
  local letter = a:match("^%-(%a)$")
  return letter ~= nil and byshort[letter] ~= nil
end

-- A missing value, with what stood in its place.
local function missing_value(f, next_arg, byname, byshort)
  if next_arg == nil then return ("--%s expects a value"):format(f.name) end
  if next_arg == "" then return ("--%s expects a value, got an empty string"):format(f.name) end
  if known_flag(next_arg, byname, byshort) then
    return ("--%s expects a value, got the flag %s"):format(f.name, next_arg:match("^[^=]*"))
  end
  local shown = f.secret and "a value" or ("%q"):format(next_arg)
  return ("--%s expects a value, got %s, which starts with '-'; write a value that starts with '-' as --%s=VALUE")
    :format(f.name, shown, f.name)
end

local function one_of(f, v)
  local want = v:lower()
  for _, c in ipairs(f.choices) do
    if c:lower() == want then return c end      -- az's enums take any case
  end
  return nil, ("--%s must be one of: %s (got %s)"):format(f.name, table.concat(f.choices, ", "),
    f.secret and "another value" or ("%q"):format(v))
end

local function convert(f, v)
  if v == "" then return nil, ("--%s expects a value, got an empty string"):format(f.name) end
  if f.kind == "integer" then
    -- Decimal digits only: "0x10", "1e3", "2.0" and " 5" are not what anyone types for a count.
    local n = v:match("^%-?%d+$") and math.tointeger(tonumber(v))
    if not n then return nil, ("--%s expects an integer, got %q"):format(f.name, v) end
    return n
  end
  if f.kind == "number" then
    -- seconds: plain decimals ("0.5", "30"), nothing a shell would mangle
    local x = v:match("^%d+%.?%d*$") and tonumber(v)
    if not x then return nil, ("--%s expects a number, got %q"):format(f.name, v) end
    return x
  end
  if f.kind == "bool" then
    local b = ({ ["true"] = true, ["false"] = false })[v:lower()]
    if b == nil then return nil, ("--%s expects true or false, got %q"):format(f.name, v) end
    return b
  end
  if f.choices then return one_of(f, v) end
  return v
end

local function store(values, f, v)
  if f.kind == "list" then
    local list = values[f.key] or {}
    list[#list + 1] = v
    values[f.key] = list
  else
    values[f.key] = v
  end
end

--- Parse argv against a flag list.
-- opts.stop_at_positional: the first positional argument and everything
-- after it are returned untouched (run SCRIPT ARGS...).
---@param argv string[]
---@param flags table[]
---@param opts? {stop_at_positional?: boolean}
---@return table|nil values, string? usage_error, string[]? positional
function M.parse(argv, flags, opts)
  local byname, byshort = index(flags)
  local stop = opts and opts.stop_at_positional
  local values, positional = {}, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local f, inline, shown
    if a == "--" then
      table.move(argv, i + 1, #argv, #positional + 1, positional)
      break
    elseif a:sub(1, 2) == "--" then
      local name
      name, inline = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      f = byname[name]
      if not f then
        return nil, ("unrecognized argument --%s%s"):format(name, suggest(name, flags))
      end
      shown = "--" .. name
    elseif a:sub(1, 1) == "-" and #a > 1 then
      f = #a == 2 and byshort[a:sub(2)]
      if not f then
        local short = {}
        for _, g in ipairs(flags) do if g.short then short[#short + 1] = "-" .. g.short end end
        table.sort(short)
        return nil, ("unrecognized argument %s (azbatch flags are long, e.g. --output%s)"):format(a,
          #short > 0 and ("; the short ones are " .. table.concat(short, ", ")) or "")
      end
      shown = a
    elseif stop then
      table.move(argv, i, #argv, #positional + 1, positional)
      break
    else
      positional[#positional + 1] = a
    end
    if f then
      if f.removed then return nil, ("%s: %s"):format(shown, f.removed) end
      if f.kind == "flag" then
        if inline then return nil, ("%s takes no value"):format(shown) end
        values[f.key] = true
      else
        local v = inline
        if v == nil then
          v = argv[i + 1]
          if v == nil or v == "" or v:sub(1, 1) == "-" then return nil, missing_value(f, v, byname, byshort) end
          i = i + 1
        end
        local why
        v, why = convert(f, v)
        if v == nil then return nil, why end
        store(values, f, v)
        -- a list takes the words that follow, up to the next flag
        while f.kind == "list" and not inline and argv[i + 1] and argv[i + 1] ~= ""
          and argv[i + 1]:sub(1, 1) ~= "-" do
          i = i + 1
          v, why = convert(f, argv[i])
          if v == nil then return nil, why end
          store(values, f, v)
        end
      end
    end
    i = i + 1
  end
  return values, nil, positional
end

local function lhs(f)
  local s = "  --" .. f.name
  if f.short then s = "  -" .. f.short .. ", --" .. f.name end
  if f.kind == "bool" then return s .. " {true,false}" end
  if f.kind == "flag" then return s end
  local meta = f.metavar or (f.choices and "{" .. table.concat(f.choices, ",") .. "}") or "VALUE"
  if f.kind == "list" then return s .. " " .. meta .. " [" .. meta .. " ...]" end
  return s .. " " .. meta
end

--- Render a help text for a verb: its flags by group, then the global ones.
function M.help(usage, summary, flags)
  local lines = { "usage: " .. usage, "", summary }
  local groups, order = {}, {}
  for _, f in ipairs(flags) do
    if not f.hidden and not f.removed then
      local g = f.group or "options"
      if not groups[g] then
        groups[g] = {}
        order[#order + 1] = g
      end
      table.insert(groups[g], f)
    end
  end
  for _, g in ipairs(order) do
    lines[#lines + 1] = ""
    lines[#lines + 1] = g .. ":"
    for _, f in ipairs(groups[g]) do
      local left = lhs(f)
      local help = f.help or ""
      if f.aliases and #f.aliases > 0 then help = help .. " (also --" .. table.concat(f.aliases, ", --") .. ")" end
      if #left > 37 then
        lines[#lines + 1] = left
        lines[#lines + 1] = ("%-38s %s"):format("", help)
      else
        lines[#lines + 1] = (("%-38s %s"):format(left, help):gsub(" +$", ""))
      end
    end
  end
  lines[#lines + 1] = ("%-38s %s"):format("  -h, --help", "show this help and exit")
  local removed = {}
  for _, f in ipairs(flags) do
    if f.removed then removed[#removed + 1] = "--" .. f.name end
  end
  if #removed > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Not in Batch API 2025-06-01 (refused with the reason): " .. table.concat(removed, ", ") .. "."
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "A value may follow its flag or be attached with '=': --pool-id ID or --pool-id=ID."
  lines[#lines + 1] = "A value that starts with '-' must be attached: --filter=-x, --target-dedicated-nodes=-1."
  return table.concat(lines, "\n") .. "\n"
end

return M
