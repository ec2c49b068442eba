--- azbatch: Azure Batch pools from custom images.
-- The facade extends the C core's table (as LuaSocket's socket.lua does):
-- validation, JSON shaping and the planner come from C, policy from Lua.
local core = require "azbatch.core"

local M = core

M.json = require "azbatch.json"

return M
