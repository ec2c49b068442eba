--- JSON for azbatch, both ways in the C core (see the README for why not lua-cjson).
-- Decoding keeps arrays apart from objects (arrays carry the azbatch.Array
-- metatable, so they encode as arrays again, even when empty) and integers
-- apart from floats; null is azbatch.null. Encoding a validated body
-- (a PoolSpec, a VmConfiguration, an ImageReference, or any value with a
-- kind) validates it again, as it is at that moment.
local core = require "azbatch.core"

local M = {}

M.null = core.null
M.array = core.array

local ARRAY_MT = getmetatable(core.array {})

--- Did this table come from a JSON array (or was it marked with array())?
function M.is_array(t)
  return type(t) == "table" and getmetatable(t) == ARRAY_MT
end

--- Encode a value (or a validated spec) to the exact REST JSON.
---@param value any
---@param kind? string descriptor to shape the JSON ("pool", "pool.resize", ...)
---@return string|nil json, string? message, table? err
function M.encode(value, kind)
  return core.json_encode(value, kind)
end

--- Decode JSON text (RFC 8259, strict).
---@param text string
---@return any|nil value, string? message, table? err
function M.decode(text)
  if type(text) ~= "string" then
    error(("bad argument #1 to 'decode' (string expected, got %s)"):format(type(text)), 2)
  end
  return core.json_decode(text)
end

return M
