-- make bench-peers: the scenarios with azbatch's Lua API, one process per
-- scenario. The endpoint and Shared Key come from the environment
-- (AZURE_BATCH_ENDPOINT, AZURE_BATCH_ACCOUNT, AZURE_BATCH_ACCESS_KEY).
--   lua5.4 azbatch.lua SCENARIO ARGS...   (see run.py for each scenario's arguments)
-- Besides the measured scenarios, "setup" makes the pools the others read.
local azbatch = require "azbatch"

local scenario = arg[1]
local n = tonumber(arg[2])
local batch = assert(azbatch.client {})

local IMAGE, AGENT = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts:latest", "batch.node.ubuntu 22.04"
-- the blue pool's image, before the blue-green rollout to IMAGE
local OLD_IMAGE, OLD_AGENT = "Canonical:0001-com-ubuntu-server-focal:20_04-lts:latest", "batch.node.ubuntu 20.04"

local function spec(id, nodes, old)
  return { id = id, vmSize = "Standard_A1_v2", targetDedicatedNodes = nodes or 0,
    virtualMachineConfiguration = { imageReference = old and OLD_IMAGE or IMAGE,
      nodeAgentSKUId = old and OLD_AGENT or AGENT } }
end

-- Run fn(i) for i = 1..count on 'width' coroutines.
local function pool_of(width, count, fn)
  local next_i, workers = 1, {}
  for w = 1, width do
    workers[w] = function()
      while next_i <= count do
        local i = next_i
        next_i = next_i + 1
        fn(i)
      end
    end
  end
  azbatch.parallel(workers)
end

if scenario == "setup" then          -- setup COUNT NODES PREFIX [old]: COUNT pools of NODES nodes
  local nodes, prefix, old = tonumber(arg[3]), arg[4], arg[5] == "old"
  pool_of(16, n, function(i) assert(batch:create_pool(spec(("%s%04d"):format(prefix, i), nodes, old))) end)
elseif scenario == "show" then       -- show ID
  assert(batch:get_pool(arg[2]))
elseif scenario == "crud" then       -- crud N: create, show, delete N pools in sequence
  for i = 1, n do
    local id = ("crud-%04d"):format(i)
    assert(batch:create_pool(spec(id)))
    assert(batch:get_pool(id))
    assert(batch:delete_pool(id))
  end
elseif scenario == "list" then       -- list N PAGE: every pool, PAGE per page
  local pools = assert(azbatch.collect(batch:list_pools { maxresults = tonumber(arg[3]) }))
  assert(#pools == n, #pools)
elseif scenario == "gets" then       -- gets N C ID: N GETs of pool ID at concurrency C
  pool_of(tonumber(arg[3]), n, function() assert(batch:get_pool(arg[4])) end)
elseif scenario == "audit" then      -- audit POOLS NODES C: every pool, then every pool's nodes
  local pools = assert(azbatch.collect(batch:list_pools()))
  assert(#pools == n, #pools)
  local want = tonumber(arg[3])
  pool_of(tonumber(arg[4]), #pools, function(i)
    local nodes = assert(azbatch.collect(batch:list_nodes(pools[i].id)))
    assert(#nodes == want, #nodes)
  end)
elseif scenario == "bluegreen" then  -- bluegreen BLUE GREEN POLL: azbatch.rollout's blue-green to IMAGE
  local rollout = require "azbatch.rollout"
  local blue, green = arg[2], arg[3]
  local r = assert(rollout.new(batch, { strategy = "blue-green", pools = { blue }, image = IMAGE, node_agent = AGENT,
    names = { [blue] = green }, timeouts = { poll = tonumber(arg[4]) } }))
  assert(r:run())
else
  error("usage: azbatch.lua setup|show|crud|list|gets|audit|bluegreen ARGS...")
end
batch:close()
