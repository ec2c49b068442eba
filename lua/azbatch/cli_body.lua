--- Request bodies from the command line: --json-file (the data-plane body,
-- or the ARM/portal pool resource, converted and said so) and az's flags,
-- each mapped to the REST field it sets. Flags only build the body; the C
-- core validates it.
local azbatch = require "azbatch"

local M = {}

local array = azbatch.json.array

-- {==================================================================
-- Values in az's forms: KEY=VALUE, id[#version], filename=httpurl
-- ===================================================================

local function pair(flag, what)
  return function(v)
    local k, val = v:match("^([^=]+)=(.*)$")
    if not k then return nil, ("--%s expects %s, got %q"):format(flag, what, v) end
    return { name = k, value = val }
  end
end

local function resource_file(v)
  local path, url = v:match("^([^=]+)=(.+)$")
  if not path then return nil, ("--start-task-resource-files expects FILE=HTTPURL, got %q"):format(v) end
  return { filePath = path, httpUrl = url }
end

local function package_ref(v)
  local id, version = v:match("^([^#]+)#(.+)$")
  return { applicationId = id or v, version = version }
end

-- Each value of a list flag converted; an array.
local function each(convert)
  return function(list)
    local out = array {}
    for _, v in ipairs(list) do
      local item, why = convert(v)
      if item == nil then return nil, why end
      out[#out + 1] = item
    end
    return out
  end
end

-- "OsDisk TemporaryDisk" (az takes one quoted word list) or several words.
local function words(list)
  local out = array {}
  for _, v in ipairs(list) do
    for w in v:gmatch("[^%s,]+") do out[#out + 1] = w end
  end
  return out
end

-- }==================================================================


-- {==================================================================
-- The flags and the REST field each sets
-- ===================================================================

local G_POOL, G_START, G_VM, G_OS, G_SEC, G_NET, G_UPGRADE = "pool", "start task", "virtual machine configuration",
  "OS disk", "security profile", "network configuration", "upgrade policy"

local REMOVED = "the Batch API 2025-06-01 has no %s (%s)"
local function removed(name, field, why)
  return { name = name, key = name, kind = "string", removed = REMOVED:format(field, why), hidden = true }
end

local F = {}
F.id = { name = "id", key = "id", kind = "string", metavar = "ID", group = G_POOL, path = "id",
  help = "pool id (1-64 letters, digits, - and _)" }
F.vm_size = { name = "vm-size", key = "vmSize", kind = "string", metavar = "SIZE", group = G_POOL, path = "vmSize",
  help = "VM size, e.g. Standard_D4s_v5" }
F.display_name = { name = "display-name", key = "displayName", kind = "string", metavar = "NAME", group = G_POOL,
  path = "displayName", help = "display name (up to 1024 characters)" }
F.dedicated = { name = "target-dedicated-nodes", key = "targetDedicatedNodes", kind = "integer", metavar = "N",
  group = G_POOL, path = "targetDedicatedNodes", help = "dedicated compute nodes" }
F.low_priority = { name = "target-low-priority-nodes", key = "targetLowPriorityNodes", kind = "integer",
  metavar = "N", group = G_POOL, path = "targetLowPriorityNodes", help = "Spot/low-priority compute nodes" }
F.resize_timeout = { name = "resize-timeout", key = "resizeTimeout", kind = "string", metavar = "DURATION",
  group = G_POOL, path = "resizeTimeout", help = "ISO-8601 duration, e.g. PT30M" }
F.formula = { name = "auto-scale-formula", key = "autoScaleFormula", kind = "string", metavar = "FORMULA",
  group = G_POOL, path = "autoScaleFormula", also = { enableAutoScale = true },
  help = "autoscale formula (turns autoscale on)" }
F.interval = { name = "auto-scale-evaluation-interval", key = "autoScaleEvaluationInterval", kind = "string",
  metavar = "DURATION", group = G_POOL, path = "autoScaleEvaluationInterval",
  help = "how often the formula runs (PT5M to PT168H, default PT15M)" }
F.inter_node = { name = "enable-inter-node-communication", key = "enableInterNodeCommunication", kind = "flag",
  group = G_POOL, path = "enableInterNodeCommunication", help = "let nodes talk to each other directly" }
F.slots = { name = "task-slots-per-node", key = "taskSlotsPerNode", kind = "integer", metavar = "N", group = G_POOL,
  path = "taskSlotsPerNode", help = "task slots on each node (default 1)" }
F.metadata = { name = "metadata", key = "metadata", kind = "list", metavar = "KEY=VALUE", group = G_POOL,
  path = "metadata", convert = each(pair("metadata", "KEY=VALUE")), help = "pool metadata" }
F.packages = { name = "application-package-references", key = "applicationPackageReferences", kind = "list",
  metavar = "ID[#VERSION]", group = G_POOL, path = "applicationPackageReferences", convert = each(package_ref),
  help = "application packages to install on each node" }
F.start_cmd = { name = "start-task-command-line", key = "startTaskCommandLine", kind = "string", metavar = "CMD",
  group = G_START, path = "startTask.commandLine", help = "the start task's command line (not run in a shell)" }
F.start_files = { name = "start-task-resource-files", key = "startTaskResourceFiles", kind = "list",
  metavar = "FILE=HTTPURL", group = G_START, path = "startTask.resourceFiles", convert = each(resource_file),
  help = "files downloaded before the start task runs" }
F.start_env = { name = "start-task-environment-settings", key = "startTaskEnvironmentSettings", kind = "list",
  metavar = "KEY=VALUE", group = G_START, path = "startTask.environmentSettings",
  convert = each(pair("start-task-environment-settings", "KEY=VALUE")), help = "the start task's environment" }
F.start_retries = { name = "start-task-max-task-retry-count", key = "startTaskMaxTaskRetryCount", kind = "integer",
  metavar = "N", group = G_START, path = "startTask.maxTaskRetryCount",
  help = "retries of the start task (-1: no limit)" }
F.start_wait = { name = "start-task-wait-for-success", key = "startTaskWaitForSuccess", kind = "flag",
  group = G_START, path = "startTask.waitForSuccess", help = "schedule tasks only after the start task succeeds" }
F.image = { name = "image", key = "image", kind = "string", metavar = "IMAGE", group = G_VM,
  path = "virtualMachineConfiguration.imageReference",
  help = "publisher:offer:sku[:version], or a gallery, managed, shared or community image id" }
F.agent = { name = "node-agent-sku-id", key = "nodeAgentSKUId", kind = "string", metavar = "SKU", group = G_VM,
  path = "virtualMachineConfiguration.nodeAgentSKUId",
  help = "node agent matching the image, e.g. 'batch.node.ubuntu 22.04' (chosen when left out or 'auto')" }
F.targets = { name = "disk-encryption-targets", key = "diskEncryptionTargets", kind = "list", metavar = "TARGET",
  aliases = { "targets" }, group = G_VM, path = "virtualMachineConfiguration.diskEncryptionConfiguration.targets",
  convert = words, help = "disks to encrypt: OsDisk, TemporaryDisk" }
F.policy = { name = "policy", key = "nodePlacementPolicy", kind = "string", choices = { "regional", "zonal" },
  group = G_VM, path = "virtualMachineConfiguration.nodePlacementConfiguration.policy", help = "node placement" }
F.caching = { name = "os-disk-caching", key = "osDiskCaching", kind = "string",
  choices = { "none", "readonly", "readwrite" }, group = G_OS, path = "virtualMachineConfiguration.osDisk.caching",
  help = "OS disk caching" }
F.disk_size = { name = "os-disk-size", key = "osDiskSize", kind = "integer", metavar = "GB", group = G_OS,
  path = "virtualMachineConfiguration.osDisk.diskSizeGB", help = "OS disk size in GB" }
F.storage = { name = "storage-account-type", key = "storageAccountType", kind = "string",
  choices = { "standard_lrs", "premium_lrs", "standardssd_lrs" }, group = G_OS,
  path = "virtualMachineConfiguration.osDisk.managedDisk.storageAccountType", help = "OS disk storage type" }
F.write_accel = { name = "enable-write-accel", key = "writeAcceleratorEnabled", kind = "bool", group = G_OS,
  path = "virtualMachineConfiguration.osDisk.writeAcceleratorEnabled", help = "write accelerator on the OS disk" }
F.placement = { name = "placement", key = "ephemeralPlacement", kind = "string", choices = { "cachedisk" },
  group = G_OS, path = "virtualMachineConfiguration.osDisk.ephemeralOSDiskSettings.placement",
  help = "ephemeral OS disk placement" }
F.host_encryption = { name = "encryption-at-host", key = "encryptionAtHost", kind = "bool", group = G_SEC,
  path = "virtualMachineConfiguration.securityProfile.encryptionAtHost", help = "encrypt every disk at the host" }
F.security_type = { name = "security-type", key = "securityType", kind = "string",
  choices = { "trustedLaunch", "confidentialVM" }, group = G_SEC,
  path = "virtualMachineConfiguration.securityProfile.securityType", help = "trusted launch or confidential VM" }
F.secure_boot = { name = "enable-secure-boot", key = "secureBootEnabled", kind = "bool", group = G_SEC,
  path = "virtualMachineConfiguration.securityProfile.uefiSettings.secureBootEnabled", help = "UEFI secure boot" }
F.vtpm = { name = "enable-vtpm", key = "vTpmEnabled", kind = "bool", group = G_SEC,
  path = "virtualMachineConfiguration.securityProfile.uefiSettings.vTpmEnabled", help = "virtual TPM" }
F.accel_net = { name = "accelerated-networking", key = "enableAcceleratedNetworking", kind = "bool", group = G_NET,
  path = "networkConfiguration.enableAcceleratedNetworking", help = "SR-IOV accelerated networking" }
F.subnet = { name = "subnet-id", key = "subnetId", kind = "string", metavar = "ID", group = G_NET,
  path = "networkConfiguration.subnetId", help = "ARM id of the virtual network subnet the nodes join" }
F.upgrade_mode = { name = "upgrade-policy-mode", key = "upgradeMode", kind = "string",
  choices = { "automatic", "manual", "rolling" }, aliases = { "upgrade-mode" }, group = G_UPGRADE,
  path = "upgradePolicy.mode", help = "how OS image upgrades reach the nodes" }
local AUTO, ROLL = "upgradePolicy.automaticOSUpgradePolicy.", "upgradePolicy.rollingUpgradePolicy."
F.no_rollback = { name = "disable-auto-rollback", key = "disableAutomaticRollback", kind = "bool",
  group = G_UPGRADE, path = AUTO .. "disableAutomaticRollback", help = "no rollback of a failed OS upgrade" }
F.auto_upgrade = { name = "enable-auto-os-upgrade", key = "enableAutomaticOSUpgrade", kind = "bool",
  group = G_UPGRADE, path = AUTO .. "enableAutomaticOSUpgrade", help = "upgrade the OS image automatically" }
F.defer = { name = "defer-os-rolling-upgrade", key = "osRollingUpgradeDeferral", kind = "bool", group = G_UPGRADE,
  path = AUTO .. "osRollingUpgradeDeferral", help = "defer upgrades of nodes running tasks" }
F.use_rolling = { name = "use-rolling-upgrade-policy", key = "useRollingUpgradePolicy", kind = "bool",
  group = G_UPGRADE, path = AUTO .. "useRollingUpgradePolicy", help = "automatic upgrades follow the rolling policy" }
F.cross_zone = { name = "enable-cross-zone-upgrade", key = "enableCrossZoneUpgrade", kind = "bool",
  group = G_UPGRADE, path = ROLL .. "enableCrossZoneUpgrade", help = "upgrade across zones in one batch" }
F.max_batch = { name = "max-batch-instance-percent", key = "maxBatchInstancePercent", kind = "integer",
  metavar = "PERCENT", group = G_UPGRADE, path = ROLL .. "maxBatchInstancePercent", help = "nodes per batch" }
F.max_unhealthy = { name = "max-unhealthy-instance-percent", key = "maxUnhealthyInstancePercent", kind = "integer",
  metavar = "PERCENT", group = G_UPGRADE, path = ROLL .. "maxUnhealthyInstancePercent",
  help = "unhealthy nodes tolerated" }
F.max_unhealthy_upgraded = { name = "max-unhealthy-upgraded-instance-percent",
  key = "maxUnhealthyUpgradedInstancePercent", kind = "integer", metavar = "PERCENT", group = G_UPGRADE,
  path = ROLL .. "maxUnhealthyUpgradedInstancePercent", help = "upgraded nodes found unhealthy, tolerated" }
F.pause = { name = "pause-time-between-batches", key = "pauseTimeBetweenBatches", kind = "string",
  metavar = "DURATION", group = G_UPGRADE, path = ROLL .. "pauseTimeBetweenBatches", help = "e.g. PT0S" }
F.prioritize = { name = "prioritize-unhealthy-instances", key = "prioritizeUnhealthyInstances", kind = "bool",
  group = G_UPGRADE, path = ROLL .. "prioritizeUnhealthyInstances", help = "upgrade unhealthy nodes first" }
F.rollback = { name = "rollback-failed-instances-on-policy-breach", key = "rollbackFailedInstancesOnPolicyBreach",
  kind = "bool", group = G_UPGRADE, path = ROLL .. "rollbackFailedInstancesOnPolicyBreach",
  help = "roll failed nodes back when the policy is breached" }
M.FLAG = F

M.REMOVED_FLAGS = {
  removed("certificate-references", "certificateReferences",
    "certificates were retired; use the Key Vault VM extension"),
  removed("application-licenses", "applicationLicenses", "it was removed from pools"),
  removed("resource-tags", "resourceTags", "set tags on the Batch account's resources through ARM"),
  removed("target-communication", "targetNodeCommunicationMode", "every pool uses simplified communication"),
  removed("os-family", "cloudServiceConfiguration", "Cloud Services pools were retired; use --image"),
  removed("os-version", "cloudServiceConfiguration", "Cloud Services pools were retired; use --image"),
}

-- Flags of several verbs that name or condition a request, not a body field.
M.POOL_ID = { name = "pool-id", key = "poolId", kind = "string", metavar = "ID", help = "the pool id (required)" }
M.IF_MATCH = { name = "if-match", key = "ifMatch", kind = "string", metavar = "ETAG",
  help = "only if the pool has this ETag" }
M.FILTER = { name = "filter", key = "filter", kind = "string", metavar = "ODATA", help = "OData $filter clause" }
M.SELECT = { name = "select", key = "select", kind = "string", metavar = "FIELDS", help = "OData $select clause" }
M.EXPAND = { name = "expand", key = "expand", kind = "string", metavar = "FIELDS", help = "OData $expand clause" }
M.DEALLOCATION = { name = "node-deallocation-option", key = "nodeDeallocationOption", kind = "string",
  choices = { "requeue", "terminate", "taskcompletion", "retaineddata" },
  help = "what happens to running tasks on nodes that leave" }
M.WAIT_FLAGS = {
  { name = "timeout", key = "timeout", kind = "number", metavar = "SECONDS", group = "waiting",
    help = "how long to wait (default 1800)" },
  { name = "interval", key = "interval", kind = "number", metavar = "SECONDS", group = "waiting",
    help = "seconds between polls (default 2, backing off to 30 while nothing changes)" },
  { name = "nodes", key = "nodes", kind = "string", choices = { "ready", "allocated" }, group = "waiting",
    help = "ready (default: every node idle or running) or allocated (steady with its targets)" },
  { name = "max-unusable", key = "maxUnusable", kind = "integer", metavar = "N", group = "waiting",
    help = "unusable nodes tolerated before failing (default 0)" },
  { name = "max-start-task-failed", key = "maxStartTaskFailed", kind = "integer", metavar = "N", group = "waiting",
    help = "nodes whose start task failed, tolerated (default 0)" },
}
M.WAIT = { name = "wait", key = "wait", kind = "flag", group = "waiting",
  help = "wait until the pool is ready, showing progress" }

M.JSON_FILE = { name = "json-file", key = "jsonFile", kind = "string", metavar = "FILE",
  help = "the request body as JSON (the REST body; for pool create also the ARM/portal pool resource); "
    .. "flags override its fields" }

--- The flags of pool create (and preflight), in help order.
M.CREATE = { F.id, F.vm_size, F.dedicated, F.low_priority, F.resize_timeout, F.formula, F.interval, F.inter_node,
  F.slots, F.metadata, F.packages, F.display_name,
  F.start_cmd, F.start_files, F.start_env, F.start_retries, F.start_wait,
  F.image, F.agent, F.targets, F.policy,
  F.caching, F.disk_size, F.storage, F.write_accel, F.placement,
  F.host_encryption, F.security_type, F.secure_boot, F.vtpm,
  F.accel_net, F.subnet,
  F.upgrade_mode, F.no_rollback, F.auto_upgrade, F.defer, F.use_rolling, F.cross_zone, F.max_batch, F.max_unhealthy,
  F.max_unhealthy_upgraded, F.pause, F.prioritize, F.rollback }

-- pool set: what a PATCH takes; a bool for the start task's wait (az's form).
local SET_WAIT = { name = "start-task-wait-for-success", key = "startTaskWaitForSuccess", kind = "bool",
  group = G_START, path = "startTask.waitForSuccess", help = "schedule tasks only after the start task succeeds" }
local SET_INTER_NODE = { name = "enable-inter-node-communication", key = "enableInterNodeCommunication",
  kind = "bool", group = G_POOL, path = "enableInterNodeCommunication",
  help = "let nodes talk to each other directly (only on an empty pool)" }
M.SET = { F.metadata, F.packages, F.start_cmd, F.start_files, F.start_env, F.start_retries, SET_WAIT,
  F.display_name, F.vm_size, F.slots, SET_INTER_NODE, F.image, F.agent,
  F.upgrade_mode, F.no_rollback, F.auto_upgrade, F.defer, F.use_rolling }

-- pool reset: the replace body (metadata and packages are required: empty when not given).
M.RESET = { F.metadata, F.packages, F.start_cmd, F.start_files, F.start_env, F.start_retries, F.start_wait }

-- }==================================================================


-- {==================================================================
-- --json-file
-- ===================================================================

local function line_column(text, at)
  local line, col = 1, at
  for nl in text:sub(1, at - 1):gmatch("()\n") do line, col = line + 1, at - nl end
  return line, col
end

local TOP_KINDS = { ["["] = "an array", ['"'] = "a string", t = "true", f = "false", n = "null" }

--- Read a JSON object from a file. what: "the pool body" etc.
-- Returns the object, or nil and a message naming the file.
function M.load_json(path, what)
  local where = "--json-file " .. path
  local f, why = io.open(path, "rb")
  if not f then
    return nil, ("%s: cannot open it (%s)"):format(where, (why:gsub("^.*: ", "")))
  end
  local text, rwhy, code = f:read("a")
  f:close()
  if not text then
    if code == 21 then return nil, where .. ": is a directory, not a JSON file" end
    return nil, ("%s: cannot read it (%s)"):format(where, rwhy)
  end
  local bom = text:sub(1, 3) == "\239\187\191" and 3 or 0   -- a UTF-8 byte order mark, as some editors write
  if bom > 0 then text = text:sub(4) end
  if text:match("^%s*$") then
    return nil, ("%s: the file is empty; expected a JSON object (%s)"):format(where, what)
  end
  local body, msg, jerr = azbatch.json.decode(text)
  if body == nil then
    local problem = msg:gsub("^json: ", ""):gsub(" at byte %d+$", "")
      :gsub("unexpected end of input", "reached the end of the file too soon")
    local at = jerr and math.tointeger(jerr.offset)
    if not at then return nil, ("%s: invalid JSON: %s"):format(where, problem) end
    local line, col = line_column(text, at)
    return nil, ("%s: invalid JSON at line %d, column %d (byte %d): %s"):format(where, line, col, at + bom, problem)
  end
  local first = text:match("^%s*(.)")
  if first ~= "{" then
    return nil, ("%s: expected a JSON object (%s), got %s"):format(where, what, TOP_KINDS[first] or "a number")
  end
  return body
end

-- The ARM pool resource's read-only state: not part of a spec.
local ARM_READ_ONLY = { "provisioningState", "provisioningStateTransitionTime", "allocationState",
  "allocationStateTransitionTime", "creationTime", "lastModified", "currentDedicatedNodes",
  "currentLowPriorityNodes", "resizeOperationStatus", "autoScaleRun", "currentNodeCommunicationMode", "etag" }

local function empty(v)
  return v == nil or v == azbatch.json.null or (type(v) == "table" and next(v) == nil)
end

local function rename(t, from, to)
  if type(t) == "table" and t[from] ~= nil then
    t[to], t[from] = t[from], nil
  end
end

--- Is this body the ARM (management-plane) pool resource, or a template
-- resource, rather than the data-plane body?
function M.is_arm(body)
  return type(body.properties) == "table" and body.vmSize == nil
end

--- The data-plane body from the ARM pool resource (what the portal shows
-- and templates hold; Azure/Batch#162). Returns body, notes; or nil and
-- why, naming the field that has no data-plane equivalent.
function M.from_arm(res, where)
  local p = {}
  for k, v in pairs(res.properties) do p[k] = v end
  local notes, dropped = {}, {}
  local body = {}
  local function refuse(field, why)
    return nil, ("%s: properties.%s cannot be converted: %s"):format(where, field, why)
  end
  if type(res.identity) == "table" and res.identity.type ~= nil and tostring(res.identity.type):lower() ~= "none" then
    return nil, ("%s: identity: pool managed identities are set through ARM only; the Batch data plane has no "
      .. "pool identity"):format(where)
  end
  -- the pool id: the resource name (a template names it account/pool)
  local name = type(res.name) == "string" and res.name or
    (type(res.id) == "string" and res.id:match("/pools/([^/]+)$"))
  if name then body.id = name:match("([^/]+)$") end
  for _, k in ipairs(ARM_READ_ONLY) do
    if p[k] ~= nil then dropped[#dropped + 1] = k; p[k] = nil end
  end
  for _, k in ipairs { "certificates", "applicationLicenses", "resourceTags" } do
    if not empty(p[k]) then return refuse(k, "the Batch API 2025-06-01 has no such pool field") end
    p[k] = nil
  end
  local mode = p.targetNodeCommunicationMode
  if mode ~= nil and tostring(mode):lower() ~= "default" and tostring(mode):lower() ~= "simplified" then
    return refuse("targetNodeCommunicationMode", "the Batch API 2025-06-01 has no such pool field")
  end
  p.targetNodeCommunicationMode = nil
  local dc = p.deploymentConfiguration
  p.deploymentConfiguration = nil
  if type(dc) == "table" then
    if dc.cloudServiceConfiguration ~= nil then
      return refuse("deploymentConfiguration.cloudServiceConfiguration", "Cloud Services pools were retired")
    end
    local vmc = dc.virtualMachineConfiguration
    if type(vmc) == "table" then
      rename(vmc, "nodeAgentSkuId", "nodeAgentSKUId")
      local ref = vmc.imageReference
      if type(ref) == "table" and ref.id ~= nil then rename(ref, "id", "virtualMachineImageId") end
      body.virtualMachineConfiguration = vmc
    end
  end
  local scale = p.scaleSettings
  p.scaleSettings = nil
  if type(scale) == "table" then
    local fixed, auto = scale.fixedScale, scale.autoScale
    if type(fixed) == "table" then
      body.targetDedicatedNodes = fixed.targetDedicatedNodes
      body.targetLowPriorityNodes = fixed.targetLowPriorityNodes
      body.resizeTimeout = fixed.resizeTimeout
      if fixed.nodeDeallocationOption ~= nil then
        notes[#notes + 1] = "scaleSettings.fixedScale.nodeDeallocationOption applies to resizes, not to a create: "
          .. "dropped"
      end
    end
    if type(auto) == "table" then
      body.enableAutoScale = true
      body.autoScaleFormula = auto.formula
      body.autoScaleEvaluationInterval = auto.evaluationInterval
    end
  end
  local inc = p.interNodeCommunication
  p.interNodeCommunication = nil
  if inc ~= nil then body.enableInterNodeCommunication = tostring(inc):lower() == "enabled" end
  local packages = p.applicationPackages
  p.applicationPackages = nil
  if type(packages) == "table" then
    local refs = array {}
    for i, ap in ipairs(packages) do
      refs[i] = type(ap) == "table" and { applicationId = ap.id, version = ap.version } or ap
    end
    body.applicationPackageReferences = refs
  end
  local net = p.networkConfiguration
  if type(net) == "table" then
    rename(net, "dynamicVnetAssignmentScope", "dynamicVNetAssignmentScope")
    if type(net.endpointConfiguration) == "table" then
      rename(net.endpointConfiguration, "inboundNatPools", "inboundNATPools")
    end
  end
  if type(p.startTask) == "table" then rename(p.startTask.userIdentity, "userName", "username") end
  for _, m in ipairs(type(p.mountConfiguration) == "table" and p.mountConfiguration or {}) do
    if type(m) == "table" then rename(m.cifsMountConfiguration, "userName", "username") end
  end
  -- the rest has the same names in both planes
  for k, v in pairs(p) do body[k] = v end
  local said = "converted from the ARM pool resource (properties.deploymentConfiguration.virtualMachineConfiguration, "
    .. "imageReference.id, scaleSettings) to the Batch data-plane body"
  if #dropped > 0 then
    table.sort(dropped)
    said = said .. "; read-only fields ignored: " .. table.concat(dropped, ", ")
  end
  table.insert(notes, 1, said)
  return body, notes
end

-- }==================================================================


-- {==================================================================
-- Building a body
-- ===================================================================

local function set_path(body, path, value)
  local t = body
  local parts = {}
  for part in path:gmatch("[^.]+") do parts[#parts + 1] = part end
  for i = 1, #parts - 1 do
    local k = parts[i]
    if type(t[k]) ~= "table" then t[k] = {} end
    t = t[k]
  end
  t[parts[#parts]] = value
end

--- Set the fields the given flags name on body. Returns body, or nil and why.
function M.apply(body, flags, o)
  for _, f in ipairs(flags) do
    local v = f.path and o[f.key]
    if v ~= nil then
      if f.convert then
        local why
        v, why = f.convert(v)
        if v == nil then return nil, why end
      end
      local vmc = body.virtualMachineConfiguration
      if f.path == "virtualMachineConfiguration.imageReference" and type(vmc) == "table" then
        vmc.imageReference = nil      -- a new image replaces the file's whole
      end
      set_path(body, f.path, v)
      for k, also in pairs(f.also or {}) do body[k] = also end
    end
  end
  return body
end

--- The body from --json-file (when given) and the flags.
-- opts.what names the body in messages; opts.arm = true converts the ARM
-- pool resource. Returns body, notes; or nil and why.
function M.build(o, flags, opts)
  local body, notes = {}, {}
  if o.jsonFile then
    local b, why = M.load_json(o.jsonFile, opts.what)
    if not b then return nil, why end
    if opts.arm and M.is_arm(b) then
      local converted, n = M.from_arm(b, "--json-file " .. o.jsonFile)
      if not converted then return nil, n end
      b = converted
      for _, line in ipairs(n) do notes[#notes + 1] = ("--json-file %s: %s"):format(o.jsonFile, line) end
    elseif b.properties ~= nil and b.vmSize == nil then
      return nil, ("--json-file %s: this is an ARM (management-plane) resource with a 'properties' wrapper; "
        .. "this command takes the Batch data-plane body"):format(o.jsonFile)
    end
    body = b
  end
  local ok, why = M.apply(body, flags, o)
  if not ok then return nil, why end
  return body, notes
end

return M
