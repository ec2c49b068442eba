--- azbatch: Azure Batch pools from custom images.
-- The facade extends the C core's table (as LuaSocket's socket.lua does):
-- validation, JSON shaping, signing and transport come from C, policy from Lua.
local core = require "azbatch.core"

local M = core

M.json = require "azbatch.json"
M.credential = require "azbatch.credential"

local client = require "azbatch.client"
require "azbatch.pool"          -- adds the pool operations to azbatch.Client

local parallel = require "azbatch.parallel"

--- azbatch.client{endpoint=, credential=, ...} -> Client | fail
M.client = client.new
--- azbatch.collect(iterator) -> array | fail
M.collect = client.collect
--- azbatch.parallel{fn, ...} -> {results...}
M.parallel = parallel.run
--- azbatch.sleep(seconds): yields inside azbatch.parallel, blocks outside
M.sleep = function(seconds) return parallel.sleep(seconds) end

return M
