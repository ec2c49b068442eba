--- The pool image audit: "is this pool on a custom image?" from the seed
-- document, and which image versions its nodes really run, with what is
-- wrong with them (end of life, no replica in the region, mixed versions).
-- Methods of azbatch.Client.
local core = require "azbatch.core"
local client = require "azbatch.client"
local check = require "azbatch.check"
local parallel = require "azbatch.parallel"

local Client = client.Client
local collect = client.collect

local M = {}

-- The preflight findings that say something about a pool that exists.
M.CODES = {
  IMAGE_END_OF_LIFE = true, NODE_AGENT_END_OF_LIFE = true, NODE_AGENT_RETIRED = true,
  IMAGE_NO_REPLICA_IN_REGION = true, IMAGE_REPLICATION_INCOMPLETE = true, IMAGE_REPLICATION_UNKNOWN = true,
  IMAGE_VERSION_NOT_FOUND = true, IMAGE_DEFINITION_NOT_FOUND = true, MANAGED_IMAGE_NOT_FOUND = true,
  MANAGED_IMAGE_REGION = true, IMAGE_ACCESS_DENIED = true, IMAGE_NOT_GENERALIZED = true, NODE_AGENT_OS = true,
}

-- What the portal's "Operating system" line would say.
local function portal_line(ref)
  if ref == nil then return "unknown" end
  if ref.virtualMachineImageId or ref.sharedGalleryImageId or ref.communityGalleryImageId then
    return "Custom VM image (" .. (ref.virtualMachineImageId or ref.sharedGalleryImageId
      or ref.communityGalleryImageId) .. ")"
  end
  return ("%s %s %s (%s)"):format(tostring(ref.publisher), tostring(ref.offer), tostring(ref.sku),
    tostring(ref.version or "latest"))
end

-- The version a node runs: the resolved one when the service says it.
local function node_version(node)
  local vmi = type(node.virtualMachineInfo) == "table" and node.virtualMachineInfo or {}
  local ref = type(vmi.imageReference) == "table" and vmi.imageReference or {}
  if type(ref.exactVersion) == "string" then return ref.exactVersion end
  local id = ref.virtualMachineImageId
  if type(id) == "string" then
    return id:match("/[Vv][Ee][Rr][Ss][Ii][Oo][Nn][Ss]/([^/]+)$") or "latest"
  end
  return type(ref.version) == "string" and ref.version or "unknown"
end

local POOL_IMAGE_OPTS = check.set { "arm", "nodes", "pool", "cache" }

--- client:pool_image(id [, {arm=, nodes=false}]) -> report | fail
-- report: {id, kind, custom, operating_system, image, node_agent, versions =
-- {{version=, nodes=}...}, findings = {...}}. With nodes = false the nodes
-- are not listed (versions is then what the pool names).
function Client:pool_image(id, opts)
  check.id(id, 1, "pool_image")
  opts = check.options(opts, 2, "pool_image", POOL_IMAGE_OPTS)
  local pool = opts.pool
  local why, err
  if not pool then
    pool, why, err = self:get_pool(id, { select = "id,state,vmSize,targetDedicatedNodes,targetLowPriorityNodes,"
      .. "enableAutoScale,resizeTimeout,virtualMachineConfiguration" })
    if not pool then return nil, why, err end
  end
  local vmc = type(pool.virtualMachineConfiguration) == "table" and pool.virtualMachineConfiguration or {}
  local raw = type(vmc.imageReference) == "table" and vmc.imageReference or nil
  local ref = raw and core.image_reference(raw)
  local report = { id = pool.id or id, kind = ref and ref:kind() or "unknown",
    custom = ref and ref:is_custom() or false,
    operating_system = portal_line(raw), image = raw, node_agent = vmc.nodeAgentSKUId, versions = {},
    findings = {} }
  local tasks = {}
  if opts.nodes ~= false then
    tasks[1] = function()
      return collect(self:list_nodes(report.id, { select = "id,state,virtualMachineInfo" }))
    end
  end
  tasks[#tasks + 1] = function()
    -- the image's facts, judged by the preflight rules that apply to a pool that exists
    local spec = { id = report.id, vmSize = pool.vmSize or "Standard_D2s_v3", virtualMachineConfiguration = vmc,
      targetDedicatedNodes = pool.targetDedicatedNodes or 0, targetLowPriorityNodes = pool.targetLowPriorityNodes,
      enableAutoScale = pool.enableAutoScale, resizeTimeout = pool.resizeTimeout }
    if pool.enableAutoScale then spec.targetDedicatedNodes, spec.autoScaleFormula = nil, "$TargetDedicatedNodes=0;" end
    return self:preflight(spec, { arm = opts.arm, cache = opts.cache or {}, usage = false })
  end
  local results = parallel.run(tasks)
  local nodes = opts.nodes ~= false and results[1][1] or nil
  local pre = results[#results][1]
  if nodes then
    local count, order = {}, {}
    for _, n in ipairs(nodes) do
      local v = node_version(n)
      if not count[v] then order[#order + 1] = v end
      count[v] = (count[v] or 0) + 1
    end
    table.sort(order)
    for _, v in ipairs(order) do report.versions[#report.versions + 1] = { version = v, nodes = count[v] } end
    if #order > 1 then
      report.findings[#report.findings + 1] = { severity = "warning", code = "POOL_MIXED_VERSIONS",
        message = ("the pool's nodes run %d image versions (%s)"):format(#order, table.concat(order, ", ")),
        fix = "resize to zero and back, or roll the pool to one version (azbatch rollout start --strategy in-place)" }
    end
  elseif results[1] and results[1][1] == nil and opts.nodes ~= false then
    report.findings[#report.findings + 1] = { severity = "warning", code = "CHECK_SKIPPED",
      message = "the pool's nodes could not be listed: " .. tostring(results[1][2]) }
  end
  if pre then
    for _, f in ipairs(pre.findings) do
      if M.CODES[f.code] then report.findings[#report.findings + 1] = f end
    end
  end
  return report
end

local POOL_IMAGES_OPTS = check.set { "arm", "nodes", "filter", "concurrency" }

--- client:pool_images([{filter=, nodes=, concurrency=16}]) -> {report...} | fail
-- Every pool of the account (or those the OData filter keeps), audited
-- concurrently, at most 'concurrency' pools at once.
function Client:pool_images(opts)
  client.check_open(self)
  opts = check.options(opts, 1, "pool_images", POOL_IMAGES_OPTS)
  local pools, why, err = collect(self:list_pools { filter = opts.filter,
    select = "id,state,vmSize,targetDedicatedNodes,targetLowPriorityNodes,enableAutoScale,resizeTimeout,"
      .. "virtualMachineConfiguration" })
  if not pools then return nil, why, err end
  local reports, next_i = {}, 1
  local cache = {}                 -- the account, images and node agents, read once for all pools
  local width = math.min(opts.concurrency or 16, math.max(1, #pools))
  local workers = {}
  for w = 1, width do
    workers[w] = function()
      while next_i <= #pools do
        local i = next_i
        next_i = next_i + 1
        local r, rwhy = self:pool_image(pools[i].id, { arm = opts.arm, nodes = opts.nodes, pool = pools[i],
          cache = cache })
        reports[i] = r or { id = pools[i].id, kind = "unknown", findings = { { severity = "warning",
          code = "CHECK_SKIPPED", message = tostring(rwhy) } }, versions = {} }
      end
    end
  end
  parallel.run(workers)
  return reports
end

return M
