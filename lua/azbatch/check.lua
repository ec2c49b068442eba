--- Checks of a call's arguments. A wrong one is a bug in the calling
-- script, so each of these raises, pointing at the caller's caller (the
-- user's line), in Lua's own wording. Unknown option keys are checked by
-- the C core's one checker (core.check_options), with a suggestion.
local core = require "azbatch.core"

local M = {}

--- A set {name = true} from a list of names.
function M.set(names)
  local s = {}
  for _, n in ipairs(names) do s[n] = true end
  return s
end

--- options(opts, arg, fname, allowed): opts must be nil or a table whose
-- keys are all in 'allowed' (a set). Returns opts, or an empty table for
-- nil. (The C function itself, so that its error points at the caller's
-- caller.)
M.options = core.check_options

--- A resource id: a non-empty string.
function M.id(id, arg, fname)
  if type(id) ~= "string" then
    error(("bad argument #%d to '%s' (string expected, got %s)"):format(arg, fname, type(id)), 3)
  end
  if id == "" then
    error(("bad argument #%d to '%s' (the id is empty)"):format(arg, fname), 3)
  end
  return id
end

--- nil, or a finite number of seconds >= 0.
function M.seconds(v, name, fname)
  if v == nil then return nil end
  if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
    error(("bad argument to '%s' (option '%s' must be a finite number of seconds >= 0, got %s)")
      :format(fname, name, type(v) == "number" and tostring(v) or type(v)), 3)
  end
  return v
end

--- nil, or a value of Lua type 'ty'.
function M.type(v, ty, name, fname)
  if v ~= nil and type(v) ~= ty then
    error(("bad argument to '%s' (option '%s' must be a %s, got %s)"):format(fname, name, ty, type(v)), 3)
  end
  return v
end

return M
