--- Custom images end to end: a managed image made from a VHD blob, a
-- Compute Gallery version published from it (with the replicas a pool
-- needs and azbatch's provenance in its tags), replication raised for a
-- bigger pool, and the audit of what each pool and its nodes run.
-- Methods of azbatch.Client (reads and writes go through its ARM client).
local core = require "azbatch.core"
local client = require "azbatch.client"
local check = require "azbatch.check"
local parallel = require "azbatch.parallel"
local account = require "azbatch.account"
local API = require("azbatch.arm").API

local Client = client.Client
local collect = client.collect
local set = check.set

local M = {}

-- Tags a published version carries, so that a later pool on it can have
-- its node agent chosen (preflight reads them back).
M.TAG_SOURCE = "azbatch.source"
M.TAG_AGENT = "azbatch.nodeAgentSKUId"
M.TAG_MARKETPLACE = "azbatch.marketplace"

local function arm_of(self, opts)
  local arm, why = self:arm_client(opts)
  if not arm then return nil, why, { kind = "auth", field = "arm" } end
  return arm
end

-- The Batch account resource, its subscription and region, or fail.
local function account_of(self, arm, opts)
  local acct, why, err = account.find(arm, { resource_id = opts.account, name = self.account, host = self.host,
    subscription = opts.subscription })
  if not acct then return nil, why, err end
  local sub = account.subscription_of(acct.id)
  if not sub or type(acct.location) ~= "string" then
    return nil, "account: the Batch account resource has no subscription id or location",
      { kind = "api", code = "InvalidResponse" }
  end
  return acct, sub, acct.location
end

local function rg_of(id)
  return type(id) == "string" and id:match("/[Rr][Ee][Ss][Oo][Uu][Rr][Cc][Ee][Gg][Rr][Oo][Uu][Pp][Ss]/([^/]+)")
end

local NAME = "^[%w][%w._-]*$"

local FROM_VHD_OPTS = set { "blob", "name", "os_type", "resource_group", "hyperv_generation", "arm", "account",
  "subscription", "timeout", "interval", "on_progress" }

--- client:image_from_vhd{blob=, name=, os_type=, resource_group=, hyperv_generation=, on_progress=}
--    -> managed image resource | fail
-- Checks the rules of the older VHD flow first: the storage account is in
-- the Batch account's subscription and region. The image goes into the
-- Batch account's resource group (or resource_group), in its region.
function Client:image_from_vhd(opts)
  client.check_open(self)
  opts = check.options(opts, 1, "image_from_vhd", FROM_VHD_OPTS)
  if type(opts.blob) ~= "string" or not core.is_vhd(opts.blob) then
    return nil, "image_from_vhd.blob: expected the URL of a .vhd blob, got " .. core.sanitize(tostring(opts.blob), 200),
      { kind = "validation", field = "image_from_vhd.blob" }
  end
  if type(opts.name) ~= "string" or not opts.name:match(NAME) or #opts.name > 80 then
    return nil, "image_from_vhd.name: expected an image name of letters, digits, '.', '_' and '-'",
      { kind = "validation", field = "image_from_vhd.name" }
  end
  local os_type = (opts.os_type or "linux"):lower()
  if os_type ~= "linux" and os_type ~= "windows" then
    return nil, "image_from_vhd.os_type: must be one of 'linux', 'windows'",
      { kind = "validation", field = "image_from_vhd.os_type" }
  end
  local arm, why, err = arm_of(self, opts)
  if not arm then return nil, why, err end
  local acct, sub, location = account_of(self, arm, opts)
  if not acct then return nil, sub, location end
  -- the storage account of the blob: same subscription and region
  local host = opts.blob:match("^https?://([^/]+)"):lower()
  local stores, swhy, serr = collect(arm:storage_accounts(sub))
  if not stores then return nil, swhy, serr end
  local store
  for _, a in ipairs(stores) do
    local ep = type(a) == "table" and type(a.properties) == "table" and type(a.properties.primaryEndpoints) == "table"
      and a.properties.primaryEndpoints.blob
    if type(ep) == "string" and ep:lower():find("//" .. host, 1, true) then store = a end
  end
  if not store then
    return nil, ("image_from_vhd.blob: the storage account %s is not in the Batch account's subscription %s "
      .. "(the VHD must be in the same subscription and region)"):format(host, sub),
      { kind = "validation", field = "image_from_vhd.blob", code = "StorageAccountNotInSubscription" }
  end
  if type(store.location) == "string" and store.location:lower() ~= location:lower() then
    return nil, ("image_from_vhd.blob: the storage account is in %s, the Batch account in %s (they must be in "
      .. "one region; copy the VHD first)"):format(store.location, location),
      { kind = "validation", field = "image_from_vhd.blob", code = "StorageAccountInOtherRegion" }
  end
  local rg = opts.resource_group or rg_of(acct.id)
  local id = ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/images/%s"):format(sub, rg, opts.name)
  return arm:put(id, API.image, {
    location = location,
    properties = {
      hyperVGeneration = opts.hyperv_generation or "V1",
      storageProfile = { osDisk = { osType = os_type == "linux" and "Linux" or "Windows", osState = "Generalized",
        blobUri = opts.blob, caching = "ReadWrite" } },
    },
  }, { timeout = opts.timeout, interval = opts.interval, on_progress = opts.on_progress })
end

-- ceil(nodes / 600), never below asked or 1.
local function replicas_for(nodes, asked)
  local need = nodes and core.plan { nodes = nodes }.replicas or 1
  return math.max(need, asked or 1)
end

local PUBLISH_OPTS = set { "source", "gallery", "definition", "version", "nodes", "replicas", "regions",
  "resource_group", "publisher", "offer", "sku", "node_agent", "marketplace", "exclude_from_latest",
  "end_of_life", "arm", "account", "subscription", "timeout", "interval", "on_progress" }

--- client:publish_image{source=, gallery=, definition=, version=, nodes=, replicas=, regions=, ...}
--    -> gallery image version resource | fail
-- source: a managed image id (or a gallery version id). The definition is
-- made when missing (OS type, state and Hyper-V generation from the
-- source; identifier publisher/offer/sku as given, or azbatch/<definition>).
-- Replicas in the Batch account's region: ceil(nodes/600), never fewer
-- than 'replicas'; other 'regions' get one each. Tags record the source,
-- and the node agent SKU and marketplace base when given, so that pools on
-- the version get their node agent chosen.
function Client:publish_image(opts)
  client.check_open(self)
  opts = check.options(opts, 1, "publish_image", PUBLISH_OPTS)
  for _, k in ipairs { "gallery", "definition", "version" } do
    if type(opts[k]) ~= "string" or not opts[k]:match(NAME) then
      return nil, ("publish_image.%s: required, letters, digits, '.', '_' and '-'"):format(k),
        { kind = "validation", field = "publish_image." .. k }
    end
  end
  if not opts.version:match("^%d+%.%d+%.%d+$") then
    return nil, "publish_image.version: expected major.minor.patch, got " .. core.sanitize(opts.version, 64),
      { kind = "validation", field = "publish_image.version" }
  end
  if type(opts.source) ~= "string" or opts.source:sub(1, 1) ~= "/" then
    return nil, "publish_image.source: expected a managed image or gallery version id",
      { kind = "validation", field = "publish_image.source" }
  end
  local arm, why, err = arm_of(self, opts)
  if not arm then return nil, why, err end
  local acct, sub, location = account_of(self, arm, opts)
  if not acct then return nil, sub, location end
  local rg = opts.resource_group or rg_of(acct.id)
  local gallery_id = ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/%s")
    :format(sub, rg, opts.gallery)
  local gallery, gwhy, gerr = arm:get(gallery_id, API.gallery)
  if not gallery then return nil, gwhy, gerr end
  local source, swhy, serr = arm:get(opts.source, opts.source:lower():find("/galleries/", 1, true) and API.gallery
    or API.image)
  if not source then return nil, swhy, serr end
  local sprops = type(source.properties) == "table" and source.properties or {}
  local osdisk = type(sprops.storageProfile) == "table" and type(sprops.storageProfile.osDisk) == "table"
    and sprops.storageProfile.osDisk or {}
  local def_id = gallery_id .. "/images/" .. opts.definition
  local def, dwhy, derr = arm:gallery_image(def_id)
  if not def and derr and derr.status == 404 then
    def, dwhy, derr = arm:put(def_id, API.gallery, {
      location = gallery.location,
      properties = {
        osType = osdisk.osType or "Linux",
        osState = osdisk.osState or "Generalized",
        hyperVGeneration = sprops.hyperVGeneration or "V1",
        identifier = { publisher = opts.publisher or "azbatch", offer = opts.offer or opts.definition,
          sku = opts.sku or opts.definition },
      },
    }, { timeout = opts.timeout })
  end
  if not def then return nil, dwhy, derr end
  local replicas = replicas_for(opts.nodes, opts.replicas)
  local targets, seen = {}, {}
  local function add(region, count)
    local k = region:lower():gsub("%s", "")
    if seen[k] then seen[k].regionalReplicaCount = math.max(seen[k].regionalReplicaCount, count) return end
    seen[k] = { name = region, regionalReplicaCount = count, storageAccountType = "Standard_LRS" }
    targets[#targets + 1] = seen[k]
  end
  add(location, replicas)
  add(gallery.location, 1)                   -- the home region always holds a copy
  for _, r in ipairs(opts.regions or {}) do add(r, 1) end
  local tags = { [M.TAG_SOURCE] = opts.source, [M.TAG_AGENT] = opts.node_agent, [M.TAG_MARKETPLACE] = opts.marketplace }
  return arm:put(def_id .. "/versions/" .. opts.version, API.gallery, {
    location = gallery.location,
    tags = tags,
    properties = {
      publishingProfile = { targetRegions = targets, excludeFromLatest = opts.exclude_from_latest or false,
        endOfLifeDate = opts.end_of_life },
      storageProfile = { source = { id = opts.source } },
    },
  }, { timeout = opts.timeout, interval = opts.interval, on_progress = opts.on_progress })
end

-- The replication state of a version in one region, from its replicationStatus.
local function region_state(version, region)
  local rs = type(version.properties) == "table" and type(version.properties.replicationStatus) == "table"
    and version.properties.replicationStatus or {}
  local want = region:lower():gsub("%s", "")
  for _, s in ipairs(type(rs.summary) == "table" and rs.summary or {}) do
    if type(s) == "table" and type(s.region) == "string" and s.region:lower():gsub("%s", "") == want then
      return s.state, math.tointeger(s.progress) or s.progress, s.details
    end
  end
end

local REPLICATE_OPTS = set { "image", "nodes", "replicas", "region", "arm", "account", "subscription",
  "timeout", "interval", "on_progress" }

--- client:replicate_image{image=, nodes=, region=} -> version resource | fail
-- Raises the version's replica count in the region (default: the Batch
-- account's) to what a pool of 'nodes' needs (never lowers it) and waits
-- until replication there is complete, reporting progress.
function Client:replicate_image(opts)
  client.check_open(self)
  opts = check.options(opts, 1, "replicate_image", REPLICATE_OPTS)
  check.seconds(opts.timeout, "timeout", "replicate_image")
  check.seconds(opts.interval, "interval", "replicate_image")
  check.type(opts.on_progress, "function", "on_progress", "replicate_image")
  local ref, why, err = core.image_reference(opts.image)
  if not ref then return nil, why, err end
  if ref:kind() ~= "gallery_version" then
    return nil, "replicate_image.image: expected a gallery image version id (.../images/{def}/versions/{v})",
      { kind = "validation", field = "replicate_image.image" }
  end
  local id = ref.virtualMachineImageId
  local arm, awhy, aerr = arm_of(self, opts)
  if not arm then return nil, awhy, aerr end
  local region = opts.region
  if not region then
    local acct, loc_or_why, lerr = account_of(self, arm, opts)
    if not acct then return nil, loc_or_why, lerr end
    region = acct.location
  end
  local version, vwhy, verr = arm:gallery_version(id)
  if not version then return nil, vwhy, verr end
  local pp = type(version.properties) == "table" and type(version.properties.publishingProfile) == "table"
    and version.properties.publishingProfile or {}
  local targets, found = {}, false
  local need = replicas_for(opts.nodes, opts.replicas)
  local changed = false
  for _, t in ipairs(type(pp.targetRegions) == "table" and pp.targetRegions or {}) do
    local copy = { name = t.name, regionalReplicaCount = t.regionalReplicaCount,
      storageAccountType = t.storageAccountType }
    if type(t.name) == "string" and t.name:lower():gsub("%s", "") == region:lower():gsub("%s", "") then
      found = true
      if (math.tointeger(t.regionalReplicaCount) or 1) < need then
        copy.regionalReplicaCount, changed = need, true
      end
    end
    targets[#targets + 1] = copy
  end
  if not found then
    targets[#targets + 1] = { name = region, regionalReplicaCount = need, storageAccountType = "Standard_LRS" }
    changed = true
  end
  if changed then
    local res, pwhy, perr = arm:patch(id, API.gallery,
      { properties = { publishingProfile = { targetRegions = targets } } }, { wait = false })
    if not res then return nil, pwhy, perr end
  end
  -- wait until the region's replication is complete
  local deadline = core.now() + (opts.timeout or 3600)
  while true do
    version, vwhy, verr = arm:gallery_version(id)
    if not version then return nil, vwhy, verr end
    local state, progress, details = region_state(version, region)
    if opts.on_progress then
      opts.on_progress { region = region, state = state, progress = progress, replicas = need }
    end
    if state == "Completed" then return version end
    if state == "Failed" then
      return nil, ("%s: replication to %s failed: %s"):format(id, region, core.sanitize(tostring(details or "?"))),
        { kind = "api", code = "ReplicationFailed", region = region }
    end
    if core.now() >= deadline then
      return nil, ("%s: replication to %s still %s after %gs (it goes on)"):format(id, region, tostring(state),
        opts.timeout or 3600), { kind = "timeout", accepted = true }
    end
    parallel.sleep(math.min(opts.interval or 5, math.max(0, deadline - core.now())))
  end
end

return M
