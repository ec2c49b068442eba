--- Command-line flag parsing for the azbatch CLI.
-- Flags are declared per verb:
--   { name = "vm-size", key = "vmSize", kind = "string"|"integer"|"flag",
--     choices = {...}, secret = true (its value never appears in a message) }
-- A flag's value is the next argument or follows '=' (--name=VALUE). The next
-- argument is never taken when it starts with '-': "--pool-id --yes" is a
-- missing value, not a pool called "--yes". A value that starts with '-' is
-- written --name=VALUE.
local M = {}

local core = require "azbatch.core"

-- " (did you mean --NAME?)" for the closest flag, by the core's one edit distance.
local function suggest(name, flags)
  local names = {}
  for i, f in ipairs(flags) do names[i] = f.name end
  local best = core.suggest(name, names)
  return best and (" (did you mean --%s?)"):format(best) or ""
end

--- Is `a` something the parser reads as a flag: a known --name[=...], --, -h or --help?
local function known_flag(a, byname)
  if a == "--" or a == "-h" or a == "--help" then return true end
  local name = a:match("^%-%-([^=]+)")
  return name ~= nil and byname[name] ~= nil
end

-- A missing value, with what stood in its place.
local function missing_value(f, next_arg, byname)
  if next_arg == nil then return ("--%s expects a value"):format(f.name) end
  if next_arg == "" then return ("--%s expects a value, got an empty string"):format(f.name) end
  if known_flag(next_arg, byname) then
    return ("--%s expects a value, got the flag %s"):format(f.name, next_arg:match("^[^=]*"))
  end
  local shown = f.secret and "a value" or ("%q"):format(next_arg)
  return ("--%s expects a value, got %s, which starts with '-'; write a value that starts with '-' as --%s=VALUE")
    :format(f.name, shown, f.name)
end

local function convert(f, v)
  if v == "" then return nil, ("--%s expects a value, got an empty string"):format(f.name) end
  if f.kind == "integer" then
    -- Decimal digits only: "0x10", "1e3", "2.0" and " 5" are not what anyone types for a count.
    local n = v:match("^%-?%d+$") and math.tointeger(tonumber(v))
    if not n then return nil, ("--%s expects an integer, got %q"):format(f.name, v) end
    return n
  end
  if f.choices then
    for _, c in ipairs(f.choices) do
      if c == v then return v end
    end
    return nil, ("--%s must be one of: %s (got %s)"):format(f.name, table.concat(f.choices, ", "),
      f.secret and "another value" or ("%q"):format(v))
  end
  return v
end

--- Parse argv against a flag list.
---@param argv string[]
---@param flags table[]
---@return table|nil values, string? usage_error, string[]? positional
function M.parse(argv, flags)
  local byname = {}
  for _, f in ipairs(flags) do byname[f.name] = f end
  local values, positional = {}, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      table.move(argv, i + 1, #argv, #positional + 1, positional)
      break
    elseif a:sub(1, 2) == "--" then
      local name, inline = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local f = byname[name]
      if not f then
        return nil, ("unrecognized argument --%s%s"):format(name, suggest(name, flags))
      end
      if f.kind == "flag" then
        if inline then return nil, ("--%s takes no value"):format(name) end
        values[f.key] = true
      else
        local v = inline
        if v == nil then
          v = argv[i + 1]
          if v == nil or v == "" or v:sub(1, 1) == "-" then return nil, missing_value(f, v, byname) end
          i = i + 1
        end
        local why
        v, why = convert(f, v)
        if v == nil then return nil, why end
        values[f.key] = v
      end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      -- No verb has one-letter flags; -h is answered before parsing.
      return nil, ("unrecognized argument %s (azbatch flags are long, e.g. --output)"):format(a)
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  return values, nil, positional
end

--- Render a help text for a verb.
function M.help(usage, summary, flags)
  local lines = { "usage: " .. usage, "", summary, "", "options:" }
  for _, f in ipairs(flags) do
    local lhs = "  --" .. f.name .. (f.kind ~= "flag" and (" " .. (f.metavar or "VALUE")) or "")
    lines[#lines + 1] = ("%-38s %s"):format(lhs, f.help or "")
  end
  lines[#lines + 1] = ("%-38s %s"):format("  -h, --help", "show this help and exit")
  lines[#lines + 1] = ""
  lines[#lines + 1] = "A value may follow its flag or be attached with '=': --pool-id ID or --pool-id=ID."
  lines[#lines + 1] = "A value that starts with '-' must be attached: --filter=-x, --target-dedicated-nodes=-1."
  return table.concat(lines, "\n") .. "\n"
end

return M
