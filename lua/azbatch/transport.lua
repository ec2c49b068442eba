--- The transport every client shares unless it is given its own: one curl
-- multi handle per Lua state, so that every request of every client (and
-- every token request) waits in one place inside azbatch.parallel and
-- reuses the same kept-alive connections.
local core = require "azbatch.core"

local M = {}

local shared

--- The shared azbatch.Http, made on first use (and again if closed).
function M.shared()
  if shared == nil or shared:closed() then shared = core.http() end
  return shared
end

return M
