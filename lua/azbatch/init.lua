--- azbatch: Azure Batch pools from custom images.
-- The public table is a deliberate list (see azbatch.meta.lua for editors):
-- validation, JSON shaping, signing and transport come from the C core
-- (azbatch.core, private), policy from the Lua modules.
local core = require "azbatch.core"
local client = require "azbatch.client"
require "azbatch.pool"          -- adds the pool operations to azbatch.Client
-- wait, arm, preflight, images, audit and jobs add their methods when one
-- is first called (client.LAZY_METHODS)
local parallel = require "azbatch.parallel"

local M = {
  _VERSION = core._VERSION,
  API_VERSION = core.API_VERSION,

  -- offline: specs, images, plans, durations (C)
  image_reference = core.image_reference,
  vm_configuration = core.vm_configuration,
  pool_spec = core.pool_spec,
  validate = core.validate,
  check_node_agent = core.check_node_agent,
  plan = core.plan,
  parse_duration = core.parse_duration,
  format_duration = core.format_duration,
  sanitize = core.sanitize,
  json = require "azbatch.json",

  -- the service
  client = client.new,
  arm = client.new_arm,
  collect = client.collect,
  credential = require "azbatch.credential",
  http = core.http,
  parallel = parallel.run,
  sleep = parallel.sleep,
  now = core.now,
}

return M
