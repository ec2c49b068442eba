--- Preflight: gather the facts a pool spec depends on (the Batch account,
-- the gallery image, its replicas, quotas and the pools that already use
-- them, the VM size, the node agents the account supports), concurrently,
-- from ARM and the data plane; then the C core judges them (pure rules:
-- facts in, findings out). Also the node agent chosen for a spec that
-- leaves it out. Methods of azbatch.Client.
local core = require "azbatch.core"
local client = require "azbatch.client"
local check = require "azbatch.check"
local credential = require "azbatch.credential"
local parallel = require "azbatch.parallel"
local account = require "azbatch.account"

local Client = client.Client
local collect = client.collect

local M = {}

local NO_ARM = "no Microsoft Entra ID credential for Azure Resource Manager: the client uses a Shared Key "
  .. "(pass arm = azbatch.arm{...}, or use Entra ID)"

--- The ARM client preflight reads with: opts.arm, or one on this client's
-- Entra ID credential and transport. Returns arm, or nil and why not.
function Client:arm_client(opts)
  client.check_open(self)
  if opts and opts.arm then return opts.arm end
  if self.arm_cache then return self.arm_cache end
  if credential.is_shared_key(self.credential) then return nil, NO_ARM end
  local arm, why = client.new_arm { credential = self.credential, http = self.http,
    endpoint = opts and opts.arm_endpoint }
  if not arm then return nil, why end
  self.arm_cache = arm
  return arm
end

-- The image a spec names, as parts and kind, read from the spec as given
-- (a VHD, which no body can carry, included): parts, or nil and why.
local function image_of(spec)
  local vmc = type(spec.virtualMachineConfiguration) == "table" and spec.virtualMachineConfiguration or {}
  local raw = vmc.imageReference
  local uris = type(vmc.osDisk) == "table" and vmc.osDisk.imageUris
  local uri = type(raw) == "string" and raw or type(raw) == "table" and raw.virtualMachineImageId
  if type(uri) == "string" and core.is_vhd(uri) then return { kind = "vhd", uri = uri } end
  if type(uris) == "table" and type(uris[1]) == "string" and core.is_vhd(uris[1]) then
    return { kind = "vhd", uri = uris[1], legacy = true }
  end
  if raw == nil then return { kind = "none" } end
  local ref, why, err = core.image_reference(raw)
  if not ref then return nil, why, err end
  local image = ref:parts()
  image.id = ref.virtualMachineImageId or ref.sharedGalleryImageId or ref.communityGalleryImageId
  return image
end

-- A copy of the spec the validator can judge: the node agent chosen (or,
-- when none can be, one of the image's OS), and a VHD put aside (the rules
-- judge it from facts.image).
local function judgeable(spec, image, agent, os_type)
  local copy, vmc = {}, {}
  for k, v in pairs(spec) do copy[k] = v end
  for k, v in pairs(type(spec.virtualMachineConfiguration) == "table" and spec.virtualMachineConfiguration or {}) do
    vmc[k] = v
  end
  copy.virtualMachineConfiguration = vmc
  if agent == nil or agent == "auto" then
    vmc.nodeAgentSKUId = os_type == "windows" and "batch.node.windows amd64" or "batch.node.ubuntu 22.04"
  else
    vmc.nodeAgentSKUId = agent
  end
  if image.kind == "vhd" then
    vmc.imageReference = os_type == "windows" and "MicrosoftWindowsServer:WindowsServer:2022-datacenter"
      or "Canonical:0001-com-ubuntu-server-jammy:22_04-lts"
    if type(vmc.osDisk) == "table" then
      local disk = {}
      for k, v in pairs(vmc.osDisk) do if k ~= "imageUris" then disk[k] = v end end
      vmc.osDisk = disk
    end
  end
  return copy
end

-- The ARM id of a gallery image definition from image parts.
local function definition_id(image)
  return ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/%s/images/%s")
    :format(image.subscription, image.resourceGroup, image.gallery, image.image)
end

local PENDING = {}

-- fn's results, read once per cache and key: callers at once wait for the
-- one read in flight. Without a cache, fn is simply called.
local function memo(cache, key, fn)
  if not cache then return fn() end
  while cache[key] == PENDING do parallel.sleep(0.005) end
  local r = cache[key]
  if r == nil then
    cache[key] = PENDING
    r = table.pack(fn())
    cache[key] = r
  end
  return table.unpack(r, 1, r.n)
end

-- Run fns (name -> function returning value or fail) at once; fill
-- facts[name] with each value, facts.unread[name] with each failure.
local function gather(facts, fns)
  local names, list = {}, {}
  for name, fn in pairs(fns) do
    names[#names + 1] = name
    list[#list + 1] = fn
  end
  local results = parallel.run(list)
  for i, name in ipairs(names) do
    local value, why, err = table.unpack(results[i], 1, 3)
    if value ~= nil then
      facts[name] = value
    else
      err = type(err) == "table" and err or {}
      facts.unread[name] = { status = err.status, code = err.code, message = tostring(why) }
    end
  end
end

local function unread_all(facts, names, why)
  for _, n in ipairs(names) do facts.unread[n] = { message = why } end
end

-- vCPUs of a Resource SKU, or nil.
local function vcpus(sku)
  for _, c in ipairs(type(sku) == "table" and type(sku.capabilities) == "table" and sku.capabilities or {}) do
    if type(c) == "table" and c.name == "vCPUs" then return math.tointeger(tonumber(c.value)) end
  end
end

-- What the account's other pools use: pools, and cores by kind and family.
local function usage_of(pools, skus, own_id)
  local by_name = {}
  for _, s in ipairs(skus or {}) do
    if type(s) == "table" and type(s.name) == "string" then by_name[s.name:lower()] = s end
  end
  local u = { pools = 0, dedicatedCores = 0, lowPriorityCores = 0, dedicatedCoresByFamily = {} }
  for _, p in ipairs(pools) do
    if type(p) == "table" and p.id ~= own_id and p.state ~= "deleting" then
      u.pools = u.pools + 1
      local sku = type(p.vmSize) == "string" and by_name[p.vmSize:lower()]
      local cores = vcpus(sku) or 0
      -- a pool holds the larger of what it has and what it is heading for
      local d = math.max(math.tointeger(p.currentDedicatedNodes) or 0, math.tointeger(p.targetDedicatedNodes) or 0)
      local l = math.max(math.tointeger(p.currentLowPriorityNodes) or 0,
        math.tointeger(p.targetLowPriorityNodes) or 0)
      u.dedicatedCores = u.dedicatedCores + d * cores
      u.lowPriorityCores = u.lowPriorityCores + l * cores
      if sku and type(sku.family) == "string" then
        u.dedicatedCoresByFamily[sku.family] = (u.dedicatedCoresByFamily[sku.family] or 0) + d * cores
      end
    end
  end
  return u
end

-- The image's OS type as the facts say it ("linux", "windows"), or nil.
local function image_os(facts)
  local function os_of(props)
    if type(props) ~= "table" then return nil end
    local disk = type(props.storageProfile) == "table" and props.storageProfile.osDisk
    local t = props.osType or (type(disk) == "table" and disk.osType)
    return type(t) == "string" and t:lower() or nil
  end
  return os_of(facts.image_definition and facts.image_definition.properties)
    or os_of(facts.managed_image and facts.managed_image.properties)
end

local PREFLIGHT_OPTS = check.set { "arm", "arm_endpoint", "account", "subscription", "cache", "usage" }

--- client:preflight(spec [, {arm=, account=, subscription=, cache=, usage=}]) ->
--    {ok=, findings=, facts=, derived=} | fail
-- spec: a pool body (validated here). ok is false when any finding is an
-- error. A fact that cannot be read makes a warning saying which checks
-- were skipped; it never blocks on its own. Reads run concurrently.
-- cache: a table shared by the preflights of one audit or rollout, so that
-- each fact (the account, an image, the node agents) is read once;
-- usage = false leaves out the account's pools (and so the quota checks).
function Client:preflight(spec, opts)
  client.check_open(self)
  if type(spec) ~= "table" then
    error(("bad argument #1 to 'preflight' (table expected, got %s)"):format(type(spec)), 2)
  end
  opts = check.options(opts, 2, "preflight", PREFLIGHT_OPTS)
  local image, iwhy, ierr = image_of(spec)
  if not image then
    local vmc = spec.virtualMachineConfiguration
    iwhy = iwhy:gsub("^imageReference", "pool.virtualMachineConfiguration.imageReference", 1)
    ierr.field = "pool.virtualMachineConfiguration.imageReference"
    return nil, iwhy, vmc and ierr or ierr
  end
  -- nothing is read for a spec that cannot be right whatever the facts
  do
    local vmc = type(spec.virtualMachineConfiguration) == "table" and spec.virtualMachineConfiguration or {}
    local auto = vmc.nodeAgentSKUId == nil or vmc.nodeAgentSKUId == "auto"
    local ok, why, err = core.validate("pool", judgeable(spec, image, vmc.nodeAgentSKUId, nil))
    if not ok then
      local only_agent = auto
      for _, e in ipairs(err.errors or {}) do
        only_agent = only_agent and e.field:find("nodeAgentSKUId", 1, true) ~= nil
      end
      if not only_agent then return nil, why, err end
    end
  end
  local facts = { now = math.floor(core.time()), image = image, unread = {},
    credential = credential.is_shared_key(self.credential) and "shared_key" or "entra" }
  local arm, no_arm = self:arm_client(opts)
  local gallery = image.kind == "gallery_version" or image.kind == "gallery_latest"
  -- first: what needs nothing else
  local cache = opts.cache
  local first = {
    supported_images = function()
      return memo(cache, "supported_images", function() return collect(self:list_supported_images()) end)
    end,
  }
  if opts.usage ~= false then
    first.pools = function()
      return collect(self:list_pools { select = "id,state,vmSize,targetDedicatedNodes,targetLowPriorityNodes,"
        .. "currentDedicatedNodes,currentLowPriorityNodes" })
    end
  end
  if arm then
    first.account = function()
      return account.find(arm, { resource_id = opts.account, name = self.account, host = self.host,
        subscription = opts.subscription })
    end
    if gallery then
      local def = definition_id(image)
      first.image_definition = function()
        return memo(cache, "def " .. def, function() return arm:gallery_image(def) end)
      end
      if image.kind == "gallery_version" then
        first.image_version = function()
          return memo(cache, "ver " .. image.id, function() return arm:gallery_version(image.id) end)
        end
      else
        first.image_versions = function()
          return memo(cache, "vers " .. def, function() return collect(arm:gallery_versions(def)) end)
        end
      end
    elseif image.kind == "managed_image" then
      first.managed_image = function()
        return memo(cache, "mi " .. image.id, function() return arm:managed_image(image.id) end)
      end
    end
  else
    unread_all(facts, { "account" }, no_arm)
    if gallery then unread_all(facts, { "image_definition", "image_version" }, no_arm) end
    if image.kind == "managed_image" then unread_all(facts, { "managed_image" }, no_arm) end
  end
  gather(facts, first)
  -- then: what needs the account (its subscription and region)
  local acct = facts.account
  local props = type(acct) == "table" and type(acct.properties) == "table" and acct.properties or nil
  local sub = acct and account.subscription_of(acct.id)
  local second = {}
  if arm and sub and type(acct.location) == "string" then
    second.skus = function()
      return memo(cache, "skus", function() return collect(arm:vm_sizes(sub, acct.location)) end)
    end
  end
  if arm and image.kind == "gallery_latest" and facts.image_versions then
    -- which version "latest" is: the rules say, from the list
    facts.pool = judgeable(spec, image, nil, nil)
    local _, derived = core.preflight(facts)
    if derived.latest_version then
      local id = definition_id(image) .. "/versions/" .. derived.latest_version
      second.image_version = function()
        return memo(cache, "ver " .. id, function() return arm:gallery_version(id) end)
      end
    end
  end
  if arm and sub and image.kind == "vhd" and image.uri then
    second.storage_accounts = function() return collect(arm:storage_accounts(sub)) end
  end
  if next(second) then gather(facts, second) end
  if facts.skus then
    local want = type(spec.vmSize) == "string" and spec.vmSize:lower()
    for _, s in ipairs(facts.skus) do
      if type(s) == "table" and type(s.name) == "string" and s.name:lower() == want then facts.vm_size = s end
    end
    if not facts.vm_size then
      facts.unread.vm_size = { code = "NotFound", message = ("%s is not offered in %s"):format(
        tostring(spec.vmSize), tostring(acct.location)) }
    end
  elseif not facts.unread.skus then
    facts.unread.vm_size = { message = facts.unread.account and "the account could not be read"
      or "the VM sizes could not be read" }
  end
  if facts.storage_accounts then
    local host = image.uri:match("^https://([^/]+)")
    for _, a in ipairs(facts.storage_accounts) do
      local pr = type(a) == "table" and type(a.properties) == "table" and a.properties or {}
      local ep = type(pr.primaryEndpoints) == "table" and pr.primaryEndpoints.blob
      if type(ep) == "string" and host and ep:lower():find("//" .. host:lower(), 1, true) then
        facts.storage_account = a
      end
    end
  end
  if facts.pools then facts.usage = usage_of(facts.pools, facts.skus, spec.id) end
  facts.pools, facts.skus, facts.storage_accounts = nil, nil, nil
  if not props then facts.account = nil end
  -- the body, judged with a node agent even when the spec leaves it to azbatch
  local vmc = type(spec.virtualMachineConfiguration) == "table" and spec.virtualMachineConfiguration or {}
  local agent = vmc.nodeAgentSKUId
  local os_type = image_os(facts)
  local chosen = (agent == nil or agent == "auto") and core.choose_node_agent(facts) or nil
  local body, warnings, verr = core.validate("pool", judgeable(spec, image, chosen or agent, os_type))
  if not body then return nil, warnings, verr end
  if agent == nil or agent == "auto" then body.virtualMachineConfiguration.nodeAgentSKUId = nil end
  if image.kind == "vhd" then body.virtualMachineConfiguration.imageReference = nil end
  facts.pool = body
  local findings, derived = core.preflight(facts)
  local ok = true
  for _, f in ipairs(findings) do ok = ok and f.severity ~= "error" end
  return { ok = ok, findings = findings, facts = facts, derived = derived, warnings = warnings }
end

local CHOOSE_OPTS = check.set { "arm", "arm_endpoint" }

--- client:choose_node_agent(image [, {arm=}]) -> sku, reason | fail
-- image: an image reference (or what azbatch.image_reference takes). For
-- a gallery image the definition (and version) are read from ARM.
function Client:choose_node_agent(image, opts)
  client.check_open(self)
  opts = check.options(opts, 2, "choose_node_agent", CHOOSE_OPTS)
  local ref, why, err = core.image_reference(image)
  if not ref then return nil, why, err end
  local facts = { now = math.floor(core.time()), image = image_of { virtualMachineConfiguration =
    { imageReference = ref } }, unread = {} }
  local fns = { supported_images = function() return collect(self:list_supported_images()) end }
  local kind = facts.image.kind
  if kind == "gallery_version" or kind == "gallery_latest" then
    local arm, no_arm = self:arm_client(opts)
    if arm then
      fns.image_definition = function() return arm:gallery_image(definition_id(facts.image)) end
      if kind == "gallery_version" then
        fns.image_version = function() return arm:gallery_version(facts.image.id) end
      end
    else
      unread_all(facts, { "image_definition", "image_version" }, no_arm)
    end
  end
  gather(facts, fns)
  return core.choose_node_agent(facts)
end

return M
