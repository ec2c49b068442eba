--- Command-line flag parsing for the azbatch CLI.
-- Flags are declared per verb: { name = "vm-size", key = "vmSize", kind = "string"|"integer"|"flag" }.
local M = {}

local function distance(a, b)
  -- Levenshtein distance, small strings only: used for "did you mean".
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function suggest(name, flags)
  local best, bestd
  for _, f in ipairs(flags) do
    local d = distance(name, f.name)
    if d <= 2 and (not bestd or d < bestd) then best, bestd = f.name, d end
  end
  return best and (" (did you mean --%s?)"):format(best) or ""
end

--- Parse argv against a flag list.
---@return table|nil values, string? usage_error
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
        if not v then
          i = i + 1
          v = argv[i]
          if v == nil then return nil, ("--%s expects a value"):format(name) end
        end
        if f.kind == "integer" then
          local n = math.tointeger(tonumber(v))
          if not n then return nil, ("--%s expects an integer, got %q"):format(name, v) end
          v = n
        elseif f.choices then
          local ok = false
          for _, c in ipairs(f.choices) do ok = ok or c == v end
          if not ok then
            return nil, ("--%s must be one of: %s"):format(name, table.concat(f.choices, ", "))
          end
        end
        values[f.key] = v
      end
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
  return table.concat(lines, "\n") .. "\n"
end

return M
