--- Rollout scripts: run SCRIPT.lua [args] gives a script azbatch, a ready
-- client (from the environment and the account flags) and arg.
local azbatch = require "azbatch"

local M = {}

local RUN = {
  name = "run", account = true, output = false, positional = "SCRIPT",
  usage = "azbatch run [--account-endpoint URL ...] [--verbose] SCRIPT.lua [ARG ...]",
  summary = "Run a Lua rollout script with a ready client. The script sees the globals azbatch, client "
    .. "(the account's, from the flags and the environment) and arg (arg[0] the script, arg[1..] its "
    .. "arguments, also its '...'). Exit status: 0 when it returns nothing or true, 1 when it returns false "
    .. "or fail (nil, message) or raises, N when it returns the integer N. Flags before SCRIPT are azbatch's; "
    .. "everything after it is the script's.",
  flags = {},
  run = function(ctx, _, positional)
    local path = positional[1]
    if not path then return ctx:usage_error("run needs a script: azbatch run SCRIPT.lua [ARG ...]") end
    local script_args = table.move(positional, 2, #positional, 1, {})
    local f = io.open(path, "rb")
    if not f then return ctx:fail(("%s: cannot open the script"):format(path)) end
    f:close()
    local c, status = ctx:connect()
    if not c then return status end
    local arg = { [0] = path }
    for i, a in ipairs(script_args) do arg[i] = a end
    local env = setmetatable({ azbatch = azbatch, client = c, arg = arg }, { __index = _G })
    local chunk, why = loadfile(path, "t", env)
    if not chunk then return ctx:fail(why) end
    local r = table.pack(xpcall(chunk, function(e)
      if type(e) == "table" then return e end
      return tostring(e)
    end, table.unpack(script_args)))
    if not r[1] then
      local e = r[2]
      if type(e) == "table" then e = e.message or e.msg or azbatch.json.encode(e) or tostring(e) end
      return ctx:fail(tostring(e))
    end
    local first, second = r[2], r[3]
    if r.n < 2 or first == true then return 0 end
    if first == nil and second ~= nil then return ctx:fail(tostring(second)) end
    if first == nil then return 0 end
    if first == false then return 1 end
    if math.type(first) == "integer" then return math.max(0, math.min(255, first)) end
    return 0
  end,
}

M.commands = { RUN }

return M
