-- A rollout policy for azbatch-host (docs/embedding.md): a canary of POOL on
-- IMAGE, then blue-green. The host gets every event, answers the approvals
-- (--approve) and turns the outcome into its exit status.
--
--   azbatch-host [--events FILE] [--approve=all|none|ask] policy.lua POOL IMAGE [CANARY_NODES]
--
-- The client comes from the environment (AZURE_BATCH_ENDPOINT, and Shared
-- Key or Entra ID variables), as for the CLI.
-- luacheck: read globals host
local azbatch = require "azbatch"
local rollout = require "azbatch.rollout"

local pool, image, nodes = table.unpack(host.args)
if not (pool and image) then error("usage: policy.lua POOL IMAGE [CANARY_NODES]", 0) end

local batch <close> = assert(azbatch.client {})
local r = assert(rollout.new(batch, {
  strategy = "canary", canary = { nodes = tonumber(nodes) or 1, ["then"] = "blue-green" },
  pools = { pool }, image = image,
  timeouts = { poll = tonumber(os.getenv("ROLLOUT_POLL") or "") or 2 },
  -- after SIGINT or SIGTERM host.approve says no: the rollout rolls back
  hooks = { notify = host.emit, on_step = host.emit, approve = host.approve },
}))
return r:run()   -- the report, or nil, why, err: the host prints why
