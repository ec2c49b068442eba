--- JSON for azbatch: lua-cjson decodes, the C core encodes.
-- Debian's lua-cjson 2.1.0 decodes every number as a float and escapes '/';
-- decoding is fixed up by core.json_normalize, encoding is done in C.
local cjson = require "cjson"
local core = require "azbatch.core"

local M = {}

M.null = core.null
M.array = core.array

--- Encode a value (or a validated spec) to the exact REST JSON.
---@param value any
---@param kind? string descriptor to shape the JSON ("pool", "pool.resize", ...)
---@return string|nil json, string? message, table? err
function M.encode(value, kind)
  return core.json_encode(value, kind)
end

--- Decode JSON text; integral numbers come back as Lua integers.
---@param text string
---@return any|nil value, string? message, table? err
function M.decode(text)
  if type(text) ~= "string" then
    error(("bad argument #1 to 'decode' (string expected, got %s)"):format(type(text)), 2)
  end
  local ok, value = pcall(cjson.decode, text)
  if not ok then
    local why = tostring(value):gsub("^.-: ", "", 1)
    return nil, "json: " .. why, { kind = "validation", field = "json" }
  end
  if type(value) == "table" then core.json_normalize(value) end
  return value
end

return M
