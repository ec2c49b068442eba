--- The CLI's output formats: json (indented, like az), jsonc (json in
-- colour on a terminal), table (az's style: chosen columns per verb, or
-- every scalar field of what --query left), tsv (values, tab-separated, no
-- header) and none. Every string from the service that reaches a terminal
-- is cleaned: cells by azbatch.sanitize, JSON strings by escaping what a
-- terminal would act on (the value decodes the same).
local azbatch = require "azbatch"

local M = {}

M.FORMATS = { "json", "jsonc", "table", "tsv", "none" }

local CELL_MAX = 256

--- A number as people read it: decimal digits where it is integral (never
-- "2.0" or "1e+03"), otherwise the shortest text that reads back the same.
function M.number_text(v)
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
local number_text = M.number_text

-- Code points a terminal acts on that the encoder leaves as UTF-8: DEL,
-- the C1 controls (U+009B is a CSI), bidirectional overrides and the
-- Unicode line separators. Written as \u escapes they decode the same.
local function escape_unsafe(s)
  s = s:gsub("\127", "\\u007f")
  s = s:gsub("\194([\128-\159])", function(c) return ("\\u%04x"):format(c:byte()) end)
  s = s:gsub("\226\128([\168\169\170\171\172\173\174\142\143])", function(c)
    return ("\\u%04x"):format(0x2000 + c:byte() - 128)
  end)
  s = s:gsub("\226\129([\166\167\168\169])", function(c) return ("\\u%04x"):format(0x2040 + c:byte() - 128) end)
  return s
end

local COLOURS = { key = "\27[94m", string = "\27[32m", number = "\27[36m", literal = "\27[35m", reset = "\27[0m" }

--- Re-indent compact JSON for people (az prints indented JSON too), write
-- integral numbers as decimal integers (the encoder writes a float beyond
-- the integer range as "1e+20"), and with colour = true paint keys,
-- strings, numbers and literals.
function M.pretty(text, colour)
  local out, depth, i, n = {}, 0, 1, #text
  local function nl() out[#out + 1] = "\n" .. string.rep("  ", depth) end
  local function paint(kind, s)
    if colour then return COLOURS[kind] .. s .. COLOURS.reset end
    return s
  end
  while i <= n do
    local c = text:sub(i, i)
    if c == '"' then
      local j = i + 1
      while j <= n do
        local d = text:sub(j, j)
        if d == "\\" then j = j + 2 elseif d == '"' then break else j = j + 1 end
      end
      local is_key = text:sub(j + 1, j + 1) == ":"
      out[#out + 1] = paint(is_key and "key" or "string", escape_unsafe(text:sub(i, j)))
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
      out[#out + 1] = paint("number", v and number_text(v) or num)
      i = i + #num - 1
    elseif c:match("%a") then
      local word = text:match("^%a+", i)
      out[#out + 1] = paint("literal", word)
      i = i + #word - 1
    else
      out[#out + 1] = c
    end
    i = i + 1
  end
  return table.concat(out)
end

--- A table cell: empty for null, integral numbers as integers, text cleaned.
function M.cell_text(v)
  if v == nil or v == azbatch.null then return "" end
  if type(v) == "number" then return number_text(v) end
  if type(v) == "boolean" then return tostring(v) end
  if type(v) == "table" then return "" end
  return azbatch.sanitize(tostring(v), CELL_MAX)
end
local cell_text = M.cell_text

local function width(s) return utf8.len(s) or #s end

--- rows: array of tables; columns: { {"Heading", function(row) -> value}, ... }
function M.table_text(rows, columns)
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
    lines[#lines + 1] = (table.concat(parts, "  "):gsub(" +$", ""))
  end
  local head, rule = {}, {}
  for c, col in ipairs(columns) do head[c], rule[c] = col[1], string.rep("-", widths[c]) end
  line(head)
  line(rule)
  for _, row in ipairs(cells) do line(row) end
  return table.concat(lines, "\n") .. "\n"
end

--- rows and columns as tab-separated values, no header (tabs and line
-- ends inside a value are cleaned away).
function M.tsv_text(rows, columns)
  local lines = {}
  for _, row in ipairs(rows) do
    local parts = {}
    for c, col in ipairs(columns) do parts[c] = (cell_text(col[2](row)):gsub("\t", " ")) end
    lines[#lines + 1] = table.concat(parts, "\t")
  end
  return #lines > 0 and table.concat(lines, "\n") .. "\n" or ""
end

local ARRAY_MT = getmetatable(azbatch.json.array {})

--- Is t a JSON array (decoded, marked, or a non-empty sequence)?
function M.is_array(t)
  return type(t) == "table" and (getmetatable(t) == ARRAY_MT or (next(t) ~= nil and t[1] ~= nil))
end
local is_array = M.is_array

local function scalar(v)
  return v ~= nil and type(v) ~= "table"
end

--- The rows and columns az would show for any value (what --query left):
-- a list of objects gives one column per scalar field (first seen first,
-- each object's fields by name); scalars give one "Result" column.
function M.generic_view(value)
  local rows = is_array(value) and value or { value }
  local columns, seen = {}, {}
  for _, row in ipairs(rows) do
    if type(row) == "table" and not is_array(row) then
      local keys = {}
      for k, v in pairs(row) do
        if type(k) == "string" and scalar(v) then keys[#keys + 1] = k end
      end
      table.sort(keys)
      for _, k in ipairs(keys) do
        if not seen[k] then
          seen[k] = true
          columns[#columns + 1] = { k:sub(1, 1):upper() .. k:sub(2), function(r)
            return type(r) == "table" and r[k] or nil
          end }
        end
      end
    end
  end
  if #columns == 0 then
    columns[1] = { "Result", function(r) return scalar(r) and r or nil end }
  end
  return rows, columns
end

--- Print a value in the chosen format.
-- fmt: one of FORMATS; view (for table and tsv): {columns=, rows=function(value)}
-- or {text=function(value) -> string}; generic = true (after --query) uses
-- the generic view. Returns true, or nil and a message.
function M.write(w, value, fmt, view, opts)
  opts = opts or {}
  if fmt == "none" then return true end
  if fmt == "table" or fmt == "tsv" then
    if value == nil or value == azbatch.null then return true end
    local rows, columns
    if view and not opts.generic then
      if fmt == "table" and view.text then
        w:write(view.text(value))
        return true
      end
      rows, columns = view.rows and view.rows(value) or (is_array(value) and value or { value }), view.columns
    end
    if not columns then rows, columns = M.generic_view(value) end
    w:write((fmt == "table" and M.table_text or M.tsv_text)(rows, columns))
    return true
  end
  if value == nil then return true end          -- as az: a query that selects nothing prints nothing
  local text, why = azbatch.json.encode(value)
  if not text then return nil, "cannot print the answer as JSON: " .. why end
  w:write(M.pretty(text, fmt == "jsonc" and opts.terminal), "\n")
  return true
end

return M
