-- core.preflight: the pure rules. Facts in (the pool body and the ARM and
-- data-plane resources as the service returns them), findings out.
local core = require "azbatch.core"

local NOW = 1767225600   -- 2026-01-01T00:00:00Z
local SUB = "6e1c8d4e-4b2f-4a8e-9f3c-2d7a1b5c9e01"
local OTHER = "0b3e9f2a-7c1d-4e5f-8a9b-1c2d3e4f5a6b"
local RG = "/subscriptions/" .. SUB .. "/resourceGroups/rg-images/providers/Microsoft.Compute"
local DEF = RG .. "/galleries/gal/images/ubuntu2204"
local VER = DEF .. "/versions/1.1.0"
local MANAGED = RG .. "/images/render-node"
local ACCOUNT = "/subscriptions/" .. SUB .. "/resourceGroups/rg-batch/providers/Microsoft.Batch/batchAccounts/acct"

local VMCONF = "pool.virtualMachineConfiguration"
local F_VMID = VMCONF .. ".imageReference.virtualMachineImageId"
local F_REF = VMCONF .. ".imageReference"
local F_AGENT = VMCONF .. ".nodeAgentSKUId"
local SERVICE_QUOTE = "\"The specified type of authentication SharedKey is not allowed when external resources "
  .. "of type Compute are linked.\""

local function copy(t)
  if type(t) ~= "table" then return t end
  local r = {}
  for k, v in pairs(t) do r[k] = copy(v) end
  return r
end

-- s with every plain 'a' replaced by 'b'
local function replace(s, a, b)
  local r, i = {}, 1
  while true do
    local j, k = s:find(a, i, true)
    if not j then break end
    r[#r + 1] = s:sub(i, j - 1) .. b
    i = k + 1
  end
  return table.concat(r) .. s:sub(i)
end

local function version(name, extra)
  local v = { id = DEF .. "/versions/" .. name, name = name, properties = {
    provisioningState = "Succeeded",
    publishingProfile = { replicaCount = 1, endOfLifeDate = "2029-01-01T00:00:00Z",
      targetRegions = { { name = "West Europe", regionalReplicaCount = 1 },
        { name = "East US", regionalReplicaCount = 2 } } },
    replicationStatus = { aggregatedState = "Completed", summary = {
      { region = "West Europe", state = "Completed", progress = 100 },
      { region = "East US", state = "Completed", progress = 100 } } } } }
  for k, val in pairs(extra or {}) do v.properties.publishingProfile[k] = val end
  return v
end

local function supported()
  return {
    { nodeAgentSKUId = "batch.node.ubuntu 22.04", osType = "linux", verificationType = "verified",
      batchSupportEndOfLife = "2027-06-30T00:00:00Z",
      imageReference = { publisher = "canonical", offer = "0001-com-ubuntu-server-jammy", sku = "22_04-lts-gen2",
        version = "latest" } },
    { nodeAgentSKUId = "batch.node.ubuntu 24.04", osType = "linux", verificationType = "verified",
      imageReference = { publisher = "canonical", offer = "ubuntu-24_04-lts", sku = "server", version = "latest" } },
    { nodeAgentSKUId = "batch.node.ubuntu 20.04", osType = "linux", verificationType = "verified",
      batchSupportEndOfLife = "2025-04-30T00:00:00Z",
      imageReference = { publisher = "canonical", offer = "0001-com-ubuntu-server-focal", sku = "20_04-lts",
        version = "latest" } },
    { nodeAgentSKUId = "batch.node.windows amd64", osType = "windows", verificationType = "verified",
      imageReference = { publisher = "MicrosoftWindowsServer", offer = "WindowsServer", sku = "2022-datacenter",
        version = "latest" } },
  }
end

-- Facts that pass every rule: a gallery version pool of 600 nodes.
local function base()
  return {
    now = NOW,
    credential = "entra",
    pool = { id = "render", vmSize = "Standard_D4s_v5", targetDedicatedNodes = 500, targetLowPriorityNodes = 100,
      virtualMachineConfiguration = { imageReference = { virtualMachineImageId = VER },
        nodeAgentSKUId = "batch.node.ubuntu 22.04" } },
    image = { kind = "gallery_version", id = VER, subscription = SUB, resourceGroup = "rg-images", gallery = "gal",
      image = "ubuntu2204", version = "1.1.0" },
    account = { id = ACCOUNT, name = "acct", location = "westeurope", properties = {
      poolAllocationMode = "BatchService", dedicatedCoreQuota = 4000, lowPriorityCoreQuota = 1000, poolQuota = 100,
      dedicatedCoreQuotaPerVMFamilyEnforced = true,
      dedicatedCoreQuotaPerVMFamily = { { name = "standardDv5Family", coreQuota = 100 },
        { name = "standardDSv5Family", coreQuota = 3000 } },
      allowedAuthenticationModes = { "SharedKey", "AAD", "TaskAuthenticationToken" } } },
    usage = { pools = 10, dedicatedCores = 100, lowPriorityCores = 0,
      dedicatedCoresByFamily = { standardDSv5Family = 100 } },
    image_definition = { id = DEF, name = "ubuntu2204", properties = { osType = "Linux", osState = "Generalized",
      hyperVGeneration = "V2", architecture = "x64", endOfLifeDate = "2030-01-01T00:00:00Z",
      identifier = { publisher = "Canonical", offer = "0001-com-ubuntu-server-jammy", sku = "22_04-lts-gen2" } } },
    image_version = version("1.1.0"),
    vm_size = { name = "Standard_D4s_v5", family = "standardDSv5Family",
      capabilities = { { name = "vCPUs", value = "4" }, { name = "HyperVGenerations", value = "V1,V2" } } },
    supported_images = supported(),
  }
end

local function roomy(f)
  f.account.properties.dedicatedCoreQuota = 9000
  f.account.properties.dedicatedCoreQuotaPerVMFamily[2].coreQuota = 9000
end

local function marketplace(f)
  f.image = { kind = "marketplace", publisher = "canonical", offer = "0001-com-ubuntu-server-jammy",
    sku = "22_04-lts-gen2", version = "latest" }
  f.pool.virtualMachineConfiguration.imageReference = copy(f.image)
  f.pool.virtualMachineConfiguration.imageReference.kind = nil
  f.image_definition, f.image_version = nil, nil
end

local function latest(f, versions)
  f.image = { kind = "gallery_latest", id = DEF }
  f.pool.virtualMachineConfiguration.imageReference.virtualMachineImageId = DEF
  f.image_version = nil
  f.image_versions = versions or { version("1.0.0"), version("1.1.0") }
end

local function managed(f)
  f.image = { kind = "managed_image", id = MANAGED, name = "render-node" }
  f.pool.virtualMachineConfiguration.imageReference.virtualMachineImageId = MANAGED
  f.image_definition, f.image_version = nil, nil
  f.managed_image = { id = MANAGED, name = "render-node", location = "westeurope", properties = {
    hyperVGeneration = "V2", storageProfile = { osDisk = { osType = "Linux", osState = "Generalized" } } } }
end

local function vhd(f)
  f.image = { kind = "vhd", uri = "https://store1.blob.core.windows.net/vhds/render-node.vhd?sv=2024&sig=SECRETSIG" }
  f.pool.virtualMachineConfiguration.imageReference = nil
  f.image_definition, f.image_version = nil, nil
  f.account.properties.poolAllocationMode = "UserSubscription"
  f.storage_account = {
    id = "/subscriptions/" .. SUB .. "/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/store1",
    location = "westeurope", kind = "StorageV2" }
end

local RANK = { error = 1, warning = 2, info = 3 }

-- Every answer is well formed, whatever the facts.
local function check_shape(findings, derived)
  assert.is_table(findings)
  assert.is_table(derived)
  local last = 1
  for i, x in ipairs(findings) do
    assert.is_table(x, "finding " .. i)
    assert.is_truthy(RANK[x.severity], "severity " .. tostring(x.severity))
    assert.is_true(RANK[x.severity] >= last, "findings sorted by severity")
    last = RANK[x.severity]
    assert.is_string(x.code)
    assert.truthy(x.code:match("^[A-Z][A-Z_]+$"), x.code)
    assert.is_string(x.message)
    assert.truthy(#x.message > 0 and not x.message:find("[\r\n]"), x.message)
    assert.truthy(x.fix == nil or (type(x.fix) == "string" and not x.fix:find("[\r\n]")))
    assert.truthy(x.field == nil or (type(x.field) == "string" and x.field:match("^pool")), tostring(x.field))
    assert.is_nil(x.message:find("SECRETSIG", 1, true))
    assert.truthy(x.fix == nil or not x.fix:find("SECRETSIG", 1, true))
  end
  assert.equal("integer", math.type(derived.nodes))
  assert.is_true(derived.nodes >= 0)
  assert.is_true(derived.replicas_needed >= 1)
end

local function run(f)
  local findings, derived = core.preflight(f)
  check_shape(findings, derived)
  return findings, derived
end

local function find(findings, code)
  for _, x in ipairs(findings) do
    if x.code == code then return x end
  end
end

local function codes(findings)
  local r = {}
  for _, x in ipairs(findings) do r[#r + 1] = x.code .. (x.group and ("(" .. x.group .. ")") or "") end
  return table.concat(r, " ")
end

local function has_all(s, parts, what)
  for _, p in ipairs(parts or {}) do
    assert.truthy(s and s:find(p, 1, true), ("%s %q lacks %q"):format(what, tostring(s), p))
  end
end

describe("core.preflight on facts that pass", function()
  it("finds nothing and works out the figures", function()
    local findings, derived = run(base())
    assert.same({}, findings, codes(findings))
    assert.same({ nodes = 600, replicas_needed = 1, resize_timeout_needed = "PT15M", image_os = "linux",
      hyperv_generation = "V2", cores_needed = 2400, node_agent = "batch.node.ubuntu 22.04" }, derived)
  end)

  it("passes for a marketplace, a managed image, a latest and a VHD-free pool alike", function()
    for _, shape in ipairs { marketplace, managed } do
      local f = base()
      shape(f)
      local findings = run(f)
      assert.same({}, findings, codes(findings))
    end
    local f = base()
    latest(f)
    local findings = run(f)
    assert.equal("IMAGE_LATEST_RESOLVED", codes(findings))
  end)
end)

-- One row per rule: what trips it, and what it reports.
-- { name, mutate, { severity, code, field, {message parts}, {fix parts} } }
local trips = {
  { "a '.../versions/latest' id", function(f) latest(f); f.image.id = DEF .. "/versions/latest" end,
    { "error", "IMAGE_LATEST_ID", F_VMID, { "an id ending in '/versions/latest' is not one Batch takes" },
      { 'set virtualMachineImageId to "' .. DEF .. '"' } } },
  { "a VHD blob", vhd,
    { "error", "IMAGE_VHD", F_REF, { "Batch no longer creates pools from a VHD blob",
      "managed image or an Azure Compute Gallery version made from the VHD" },
      { 'azbatch image from-vhd --blob "https://store1.blob.core.windows.net/vhds/render-node.vhd" '
        .. "--name render-node" } } },
  { "the legacy osDisk.imageUris", function(f)
      f.pool.virtualMachineConfiguration.osDisk = { imageUris = { "https://store1.blob.core.windows.net/v/a.vhd" } }
    end,
    { "error", "IMAGE_VHD", VMCONF .. ".osDisk.imageUris", { "Batch no longer creates pools from a VHD blob" },
      { '--blob "https://store1.blob.core.windows.net/v/a.vhd" --name a' } } },
  { "a VHD's storage account in another subscription", function(f)
      vhd(f)
      f.storage_account.id = replace(f.storage_account.id, SUB, OTHER)
    end,
    { "warning", "VHD_STORAGE_SUBSCRIPTION", F_REF, { "storage account is in subscription '" .. OTHER .. "'",
      "the Batch account in '" .. SUB .. "'" }, { "copy the blob", "azbatch image from-vhd" } } },
  { "a VHD's storage account in another region", function(f) vhd(f); f.storage_account.location = "eastus" end,
    { "warning", "VHD_STORAGE_REGION", F_REF, { "storage account is in 'eastus', the Batch account in 'westeurope'" },
      { "copy the blob to a storage account in 'westeurope'" } } },
  { "a VHD with a BatchService account", function(f)
      vhd(f)
      f.account.properties.poolAllocationMode = "BatchService"
    end,
    { "warning", "VHD_ACCOUNT_MODE", nil, { "needed a Batch account in UserSubscription pool allocation mode",
      "'acct' is in 'BatchService' mode" }, { "work in either mode" } } },
  { "Shared Key with a gallery image", function(f) f.credential = "shared_key" end,
    { "error", "AUTH_SHARED_KEY_REFUSED", F_VMID, { "Shared Key cannot create a pool from a gallery image",
      SERVICE_QUOTE }, { "Microsoft Entra ID", "AZURE_TENANT_ID" } } },
  { "Shared Key with a managed image", function(f) managed(f); f.credential = "shared_key" end,
    { "error", "AUTH_SHARED_KEY_REFUSED", F_VMID, { "from a managed image", SERVICE_QUOTE }, { "Entra ID" } } },
  { "Shared Key with a UserSubscription account", function(f)
      marketplace(f)
      f.credential = "shared_key"
      f.account.properties.poolAllocationMode = "UserSubscription"
    end,
    { "error", "AUTH_USER_SUBSCRIPTION", nil, { "'acct' is in UserSubscription pool allocation mode",
      "must use Microsoft Entra ID" }, { "AZURE_CLIENT_SECRET" } } },
  { "a credential the account does not allow", function(f)
      marketplace(f)
      f.credential = "shared_key"
      f.account.properties.allowedAuthenticationModes = { "AAD" }
    end,
    { "error", "AUTH_MODE_NOT_ALLOWED", nil, { "'acct' does not allow SharedKey authentication" }, { "Entra ID" } } },
  { "a version the identity may not read", function(f)
      f.image_version = nil
      f.unread = { image_version = { status = 403, code = "AuthorizationFailed",
        message = "does not have authorization" } }
    end,
    { "error", "IMAGE_ACCESS_DENIED", F_VMID, { "reading the image version was refused (HTTP 403)",
      "LinkedAuthorizationFailed" }, { "Microsoft.Compute/galleries/read", "Microsoft.Compute/galleries/images/read",
      "Microsoft.Compute/galleries/images/versions/read" } } },
  { "a managed image the identity may not read", function(f)
      managed(f)
      f.managed_image = nil
      f.unread = { managed_image = { status = 403 } }
    end,
    { "error", "IMAGE_ACCESS_DENIED", F_VMID, { "reading the managed image was refused" },
      { "Microsoft.Compute/images/read" } } },
  { "a version that does not exist", function(f)
      f.image_version = nil
      f.unread = { image_version = { status = 404 } }
    end,
    { "error", "IMAGE_VERSION_NOT_FOUND", F_VMID, { "the image version '" .. VER .. "' does not exist (HTTP 404)" },
      { "check the version" } } },
  { "a definition that does not exist", function(f)
      f.image_definition, f.image_version = nil, nil
      f.unread = { image_definition = { status = 404 }, image_version = { status = 404 } }
    end,
    { "error", "IMAGE_DEFINITION_NOT_FOUND", F_VMID, { "the image definition '" .. DEF .. "' does not exist" },
      { "check the gallery and definition names" } } },
  { "a managed image that does not exist", function(f)
      managed(f)
      f.managed_image = nil
      f.unread = { managed_image = { status = 404, code = "NotFound" } }
    end,
    { "error", "MANAGED_IMAGE_NOT_FOUND", F_VMID, { "the managed image '" .. MANAGED .. "' does not exist" },
      { "azbatch image from-vhd" } } },
  { "an image in another subscription", function(f)
      local id = replace(VER, SUB, OTHER)
      f.image.id, f.image.subscription = id, OTHER
    end,
    { "error", "IMAGE_SUBSCRIPTION", F_VMID, { "the image is in subscription '" .. OTHER .. "'",
      "the Batch account 'acct' in '" .. SUB .. "'" }, { "gallery in subscription '" .. SUB .. "'" } } },
  { "a managed image in another subscription", function(f) managed(f); f.image.id = replace(MANAGED, SUB, OTHER) end,
    { "error", "IMAGE_SUBSCRIPTION", F_VMID, { "Batch needs the managed image in the account's subscription" } } },
  { "a definition whose versions are all excluded from latest", function(f)
      latest(f, { version("1.0.0", { excludeFromLatest = true }), version("1.1.0", { excludeFromLatest = true }) })
    end,
    { "error", "IMAGE_LATEST_NONE", F_VMID, { "no version of the image definition can be 'latest': 2 version(s), "
      .. "2 excluded from latest" }, { "name a version id" } } },
  { "a definition with no versions", function(f) latest(f, {}) end,
    { "error", "IMAGE_LATEST_NONE", F_VMID, { "can be 'latest': 0 version(s)" } } },
  { "a version with no replica in the account's region", function(f)
      f.image_version.properties.publishingProfile.targetRegions = { { name = "East US" }, { name = "westus2" } }
    end,
    { "error", "IMAGE_NO_REPLICA_IN_REGION", F_VMID, { "version '1.1.0' has no replica in 'westeurope'",
      "its target regions: 'East US', 'westus2'" },
      { "replicate it to 'westeurope': azbatch image replicate --image \"" .. VER .. "\" --nodes 600" } } },
  { "a version still replicating", function(f)
      f.image_version.properties.replicationStatus = { aggregatedState = "InProgress",
        summary = { { region = "West Europe", state = "Replicating", progress = 40 } } }
    end,
    { "error", "IMAGE_REPLICATION_INCOMPLETE", F_VMID, { "version '1.1.0' is still replicating to 'westeurope' (40%)" },
      { "wait for the replication to complete" } } },
  { "a version whose replication failed", function(f)
      f.image_version.properties.replicationStatus = { aggregatedState = "Failed",
        summary = { { region = "westeurope", state = "Failed", details = "Internal error\nretry" } } }
    end,
    { "error", "IMAGE_REPLICATION_INCOMPLETE", F_VMID, { "replication of version '1.1.0' to 'westeurope' failed: "
      .. "'Internal error retry'" }, { "azbatch image replicate --image \"" .. VER .. "\" --nodes 600" } } },
  { "a replication state of Unknown", function(f)
      f.image_version.properties.replicationStatus.summary[1].state = "Unknown"
    end,
    { "warning", "IMAGE_REPLICATION_UNKNOWN", F_VMID, { "the replication state of version '1.1.0' in 'westeurope' "
      .. "is 'Unknown'" }, { "$expand=ReplicationStatus" } } },
  { "too few replicas for the pool", function(f) f.pool.targetDedicatedNodes = 2900 end,
    { "warning", "IMAGE_REPLICAS_TOO_FEW", F_VMID,
      { "version '1.1.0' has 1 replica in 'westeurope'; a pool of 3000 nodes needs 5 (one per 600 nodes)" },
      { "azbatch image replicate --image \"" .. VER .. "\" --nodes 3000" } } },
  { "a managed image in another region", function(f) managed(f); f.managed_image.location = "northeurope" end,
    { "error", "MANAGED_IMAGE_REGION", F_VMID, { "the managed image 'render-node' is in 'northeurope', the Batch "
      .. "account in 'westeurope'" }, { "make the managed image in 'westeurope'" } } },
  { "a specialized definition", function(f) f.image_definition.properties.osState = "Specialized" end,
    { "error", "IMAGE_NOT_GENERALIZED", F_VMID, { "the image definition 'ubuntu2204' is Specialized",
      "only from Generalized images" }, { "generalize the source VM" } } },
  { "a specialized managed image", function(f)
      managed(f)
      f.managed_image.properties.storageProfile.osDisk.osState = "Specialized"
    end,
    { "error", "IMAGE_NOT_GENERALIZED", F_VMID, { "the managed image 'render-node' is Specialized" } } },
  { "a Windows agent for a Linux image", function(f)
      f.pool.virtualMachineConfiguration.nodeAgentSKUId = "batch.node.windows amd64"
    end,
    { "error", "NODE_AGENT_OS", F_AGENT, { "'batch.node.windows amd64' is a Windows agent but the image is Linux" },
      { "set nodeAgentSKUId to 'batch.node.ubuntu 22.04'" } } },
  { "a Linux agent for a Windows marketplace image", function(f)
      f.image = { kind = "marketplace", publisher = "MicrosoftWindowsServer", offer = "WindowsServer",
        sku = "2022-datacenter" }
      f.image_definition, f.image_version = nil, nil
    end,
    { "error", "NODE_AGENT_OS", F_AGENT, { "'batch.node.ubuntu 22.04' is a Linux agent but the image is Windows" },
      { "set nodeAgentSKUId to 'batch.node.windows amd64'" } } },
  { "no agent and none to choose", function(f)
      f.pool.virtualMachineConfiguration.nodeAgentSKUId = nil
      f.image_definition.properties.identifier = { publisher = "contoso", offer = "render", sku = "node" }
      f.image_definition.name, f.image.image = "render", "render"
    end,
    { "error", "NODE_AGENT_MISSING", F_AGENT, { "no nodeAgentSKUId given, and cannot choose a node agent for the image "
      .. "definition 'render'", "candidates for Linux x64: 'batch.node.ubuntu 22.04'" },
      { "azbatch.nodeAgentSKUId" } } },
  { "an agent the account does not support", function(f)
      f.pool.virtualMachineConfiguration.nodeAgentSKUId = "batch.node.ubuntu 16.04"
    end,
    { "error", "NODE_AGENT_UNSUPPORTED", F_AGENT, { "'batch.node.ubuntu 16.04' is not among the node agents the "
      .. "account supports" }, { "set nodeAgentSKUId to 'batch.node.ubuntu 22.04'" } } },
  { "an agent for another release", function(f)
      f.pool.virtualMachineConfiguration.nodeAgentSKUId = "batch.node.ubuntu 24.04"
    end,
    { "error", "NODE_AGENT_MISMATCH", F_AGENT, { "'batch.node.ubuntu 24.04' does not fit the image; "
      .. "'batch.node.ubuntu 22.04' does: from the image definition's identifier "
      .. "'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2'" },
      { "set nodeAgentSKUId to 'batch.node.ubuntu 22.04'" } } },
  { "a V2 image on a V1-only size", function(f)
      f.vm_size.capabilities[2].value = "V1"
    end,
    { "error", "HYPERV_GENERATION", "pool.vmSize", { "the image is Hyper-V generation V2 but the VM size "
      .. "'Standard_D4s_v5' runs only V1" }, { "choose a VM size that supports V2, or an image of generation V1" } } },
  { "an autoscale formula that cannot be bounded", function(f)
      f.pool.targetDedicatedNodes, f.pool.targetLowPriorityNodes = nil, nil
      f.pool.enableAutoScale, f.pool.autoScaleFormula = true, "$TargetDedicatedNodes = $PendingTasks.GetSample(1);"
    end,
    { "warning", "AUTOSCALE_NODES_UNKNOWN", "pool.autoScaleFormula", { "cannot tell the largest size",
      "bounds $TargetDedicatedNodes", "checked with the current targets, 0 node(s)" }, { "min($pending, 100)" } } },
  { "a short resizeTimeout", function(f) f.pool.targetDedicatedNodes = 1900; f.pool.resizeTimeout = "PT20M" end,
    { "warning", "RESIZE_TIMEOUT_SHORT", "pool.resizeTimeout", { "resizeTimeout PT20M is short for 2000 nodes; allow "
      .. "15 minutes per 1000 nodes: PT30M" }, { "set resizeTimeout to PT30M" } } },
  { "the default resizeTimeout on a large pool", function(f) f.pool.targetDedicatedNodes = 1000 end,
    { "warning", "RESIZE_TIMEOUT_SHORT", "pool.resizeTimeout", { "resizeTimeout PT15M (the default) is short for 1100 "
      .. "nodes" }, { "PT30M" } } },
  { "a full pool quota", function(f) f.usage.pools = 100 end,
    { "error", "QUOTA_POOLS", nil, { "the Batch account 'acct' has 100 pool(s) and its pool quota is 100" },
      { "request a quota increase (Azure portal: Batch account, Quotas)" } } },
  { "dedicated cores beyond the quota", function(f) f.pool.targetDedicatedNodes = 1000 end,
    { "error", "QUOTA_DEDICATED_CORES", "pool.targetDedicatedNodes", { "1000 dedicated nodes of 'Standard_D4s_v5' "
      .. "need 4000 cores and other pools use 100; the account's dedicated core quota is 4000" },
      { "request a quota increase", "or reduce targetDedicatedNodes to 975" } } },
  { "dedicated cores beyond the VM family's quota", function(f)
      f.account.properties.dedicatedCoreQuotaPerVMFamily[2].coreQuota = 1000
    end,
    { "error", "QUOTA_VM_FAMILY_CORES", "pool.targetDedicatedNodes", { "500 dedicated nodes of 'Standard_D4s_v5' "
      .. "need 2000 cores and other pools use 100; the account's dedicated core quota for the VM family "
      .. "'standardDSv5Family' is 1000" }, { "reduce targetDedicatedNodes to 225" } } },
  { "low-priority cores beyond the quota", function(f) f.pool.targetLowPriorityNodes = 300 end,
    { "error", "QUOTA_LOW_PRIORITY_CORES", "pool.targetLowPriorityNodes", { "300 low-priority nodes of "
      .. "'Standard_D4s_v5' need 1200 cores; the account's low-priority core quota is 1000" },
      { "reduce targetLowPriorityNodes to 250" } } },
  { "autoscale that can reach beyond the quota", function(f)
      f.pool.targetDedicatedNodes, f.pool.targetLowPriorityNodes = nil, nil
      f.pool.enableAutoScale, f.pool.autoScaleFormula = true, "$TargetDedicatedNodes = min($pending, 2000);"
    end,
    { "warning", "QUOTA_DEDICATED_CORES", "pool.autoScaleFormula", { "up to 2000 dedicated nodes", "need 8000" },
      { "or bound $TargetDedicatedNodes in the formula at 975" } } },
  { "a version near its end of life", function(f)
      f.image_version.properties.publishingProfile.endOfLifeDate = "2026-02-15T00:00:00Z"
    end,
    { "warning", "IMAGE_END_OF_LIFE", F_VMID, { "the image version '1.1.0' reaches its end of life on 2026-02-15 "
      .. "(in 45 days)" }, { "publish a newer image version" } } },
  { "a definition past its end of life", function(f)
      f.image_definition.properties.endOfLifeDate = "2025-11-22"
    end,
    { "warning", "IMAGE_END_OF_LIFE", F_VMID, { "the image definition 'ubuntu2204' reached its end of life on "
      .. "2025-11-22 (40 days ago)" } } },
  { "an agent whose support ends soon", function(f)
      f.supported_images[1].batchSupportEndOfLife = "2026-03-01T00:00:00.0Z"
    end,
    { "warning", "NODE_AGENT_END_OF_LIFE", F_AGENT, { "Batch support for 'batch.node.ubuntu 22.04' ends on "
      .. "2026-03-01 (in 59 days)" }, { "GET /supportedimages" } } },
  { "an agent whose support ended", function(f)
      f.pool.virtualMachineConfiguration.nodeAgentSKUId = "batch.node.ubuntu 20.04"
      f.image_definition.properties.identifier = { publisher = "Canonical", offer = "0001-com-ubuntu-server-focal",
        sku = "20_04-lts" }
    end,
    { "error", "NODE_AGENT_RETIRED", F_AGENT, { "Batch support for 'batch.node.ubuntu 20.04' ended on 2025-04-30 "
      .. "(246 days ago); the service no longer accepts new pools with it" }, { "GET /supportedimages" } } },
  { "a marketplace image whose support ends soon", function(f)
      marketplace(f)
      f.supported_images[1].batchSupportEndOfLife = "2026-01-10T00:00:00Z"
    end,
    { "warning", "NODE_AGENT_END_OF_LIFE", F_AGENT, { "'batch.node.ubuntu 22.04' with this image ends on 2026-01-10 "
      .. "(in 9 days)" } } },
  { "no account", function(f) f.account = nil end,
    { "warning", "CHECK_SKIPPED", F_VMID, { "subscription checks skipped: facts.account was not given" },
      { "read facts.account and run preflight again" } } },
  { "an account that could not be read", function(f)
      f.account = nil
      f.unread = { account = { status = 503, code = "ServerBusy", message = "try\nlater" } }
    end,
    { "warning", "CHECK_SKIPPED", F_VMID, { "subscription checks skipped: facts.account could not be read "
      .. "(HTTP 503 ServerBusy: 'try later')" } } },
}

-- What the same rule says of facts that pass it.
-- { name, mutate, code that must not appear }
local passes = {
  { "a definition id for latest", function(f) latest(f) end, "IMAGE_LATEST_ID" },
  { "a gallery image", nil, "IMAGE_VHD" },
  { "a VHD's storage account where the account is", vhd, "VHD_STORAGE_SUBSCRIPTION" },
  { "a VHD's storage account in the account's region", vhd, "VHD_STORAGE_REGION" },
  { "a VHD with a UserSubscription account", vhd, "VHD_ACCOUNT_MODE" },
  { "Entra ID with a gallery image", nil, "AUTH_SHARED_KEY_REFUSED" },
  { "Shared Key with a marketplace image", function(f) marketplace(f); f.credential = "shared_key" end,
    "AUTH_SHARED_KEY_REFUSED" },
  { "Entra ID with a UserSubscription account", function(f)
      f.account.properties.poolAllocationMode = "UserSubscription"
    end,
    "AUTH_USER_SUBSCRIPTION" },
  { "an allowed credential", function(f) marketplace(f); f.credential = "shared_key" end, "AUTH_MODE_NOT_ALLOWED" },
  { "a readable version", nil, "IMAGE_ACCESS_DENIED" },
  { "an existing version", nil, "IMAGE_VERSION_NOT_FOUND" },
  { "an existing definition", nil, "IMAGE_DEFINITION_NOT_FOUND" },
  { "an existing managed image", managed, "MANAGED_IMAGE_NOT_FOUND" },
  { "an image in the account's subscription, ignoring case", function(f) f.image.id = VER:upper() end,
    "IMAGE_SUBSCRIPTION" },
  { "a definition with a version for latest", function(f) latest(f) end, "IMAGE_LATEST_NONE" },
  { "a replica in the account's region by its display name", nil, "IMAGE_NO_REPLICA_IN_REGION" },
  { "a completed replication", nil, "IMAGE_REPLICATION_INCOMPLETE" },
  { "an aggregated Completed state without a regional entry", function(f)
      f.image_version.properties.replicationStatus.summary = {}
    end, "IMAGE_REPLICATION_UNKNOWN" },
  { "600 nodes on 1 replica", nil, "IMAGE_REPLICAS_TOO_FEW" },
  { "the regional replica count over replicaCount", function(f)
      f.pool.targetDedicatedNodes = 1100
      f.image_version.properties.publishingProfile.targetRegions[1].regionalReplicaCount = 2
      roomy(f)
    end, "IMAGE_REPLICAS_TOO_FEW" },
  { "a managed image in the account's region", managed, "MANAGED_IMAGE_REGION" },
  { "a generalized definition", nil, "IMAGE_NOT_GENERALIZED" },
  { "a Linux agent for a Linux image", nil, "NODE_AGENT_OS" },
  { "an agent left out that can be chosen", function(f) f.pool.virtualMachineConfiguration.nodeAgentSKUId = nil end,
    "NODE_AGENT_MISSING" },
  { "a supported agent", nil, "NODE_AGENT_UNSUPPORTED" },
  { "the fitting agent, in another case", function(f)
      f.pool.virtualMachineConfiguration.nodeAgentSKUId = "Batch.Node.Ubuntu 22.04"
    end, "NODE_AGENT_MISMATCH" },
  { "a V2 image on a V1,V2 size", nil, "HYPERV_GENERATION" },
  { "a V1 image on a V1,V2 size", function(f) f.image_definition.properties.hyperVGeneration = "V1" end,
    "HYPERV_GENERATION" },
  { "a bounded autoscale formula", function(f)
      f.pool.enableAutoScale, f.pool.autoScaleFormula = true, "$TargetDedicatedNodes = min($pending, 10);"
    end, "AUTOSCALE_NODES_UNKNOWN" },
  { "PT30M for 2000 nodes", function(f)
      f.pool.targetDedicatedNodes, f.pool.targetLowPriorityNodes, f.pool.resizeTimeout = 2000, 0, "PT30M"
    end, "RESIZE_TIMEOUT_SHORT" },
  { "autoscale with the default resizeTimeout", function(f)
      f.pool.enableAutoScale, f.pool.autoScaleFormula = true, "$TargetDedicatedNodes = min($pending, 900);"
    end, "RESIZE_TIMEOUT_SHORT" },
  { "room for one more pool", function(f) f.usage.pools = 99 end, "QUOTA_POOLS" },
  { "dedicated cores within the quota", nil, "QUOTA_DEDICATED_CORES" },
  { "dedicated cores within the family's quota", nil, "QUOTA_VM_FAMILY_CORES" },
  { "a family quota that is not enforced", function(f)
      f.account.properties.dedicatedCoreQuotaPerVMFamilyEnforced = false
      f.account.properties.dedicatedCoreQuotaPerVMFamily[2].coreQuota = 0
    end, "QUOTA_VM_FAMILY_CORES" },
  { "low-priority cores within the quota", nil, "QUOTA_LOW_PRIORITY_CORES" },
  { "an end of life 91 days away", function(f)
      f.image_version.properties.publishingProfile.endOfLifeDate = "2026-04-02T00:00:00Z"
    end, "IMAGE_END_OF_LIFE" },
  { "an agent whose support ends in more than 90 days", nil, "NODE_AGENT_END_OF_LIFE" },
  { "an agent that some image still has support for", function(f)
      f.pool.virtualMachineConfiguration.nodeAgentSKUId = "batch.node.ubuntu 20.04"
      f.image_definition.properties.identifier = { publisher = "Canonical", offer = "0001-com-ubuntu-server-focal",
        sku = "20_04-lts" }
      f.supported_images[#f.supported_images + 1] = { nodeAgentSKUId = "batch.node.ubuntu 20.04", osType = "linux",
        imageReference = { publisher = "microsoft-dsvm", offer = "ubuntu-hpc", sku = "2004" } }
    end, "NODE_AGENT_RETIRED" },
  { "every fact read", nil, "CHECK_SKIPPED" },
}

describe("core.preflight rules", function()
  for _, row in ipairs(trips) do
    local name, mutate, want = row[1], row[2], row[3]
    it("reports " .. name, function()
      local f = base()
      mutate(f)
      local findings = run(f)
      local x = find(findings, want[2])
      assert.is_table(x, want[2] .. " not in: " .. codes(findings))
      assert.equal(want[1], x.severity)
      assert.equal(want[3], x.field)
      has_all(x.message, want[4], "message")
      has_all(x.fix, want[5], "fix")
    end)
  end

  for _, row in ipairs(passes) do
    local name, mutate, code = row[1], row[2], row[3]
    it(("does not report %s for %s"):format(code, name), function()
      local f = base()
      if mutate then mutate(f) end
      local findings = run(f)
      assert.is_nil(find(findings, code), codes(findings))
    end)
  end

  it("puts errors first, then warnings, then infos, each in rule order", function()
    local f = base()
    latest(f)
    f.credential = "shared_key"
    f.pool.targetDedicatedNodes = 2900
    f.pool.virtualMachineConfiguration.nodeAgentSKUId = nil
    local findings = run(f)
    assert.equal("AUTH_SHARED_KEY_REFUSED QUOTA_DEDICATED_CORES QUOTA_VM_FAMILY_CORES IMAGE_REPLICAS_TOO_FEW "
      .. "RESIZE_TIMEOUT_SHORT IMAGE_LATEST_RESOLVED NODE_AGENT_CHOSEN", codes(findings))
  end)
end)

describe("core.preflight on the seed documents' pools", function()
  -- nodes, replicas, resizeTimeout needed
  local sizes = { { 600, 1, "PT15M" }, { 601, 2, "PT15M" }, { 2000, 4, "PT30M" }, { 3000, 5, "PT45M" } }
  for _, row in ipairs(sizes) do
    local nodes, replicas, timeout = row[1], row[2], row[3]
    it(("a pool of %d nodes needs %d replica(s) and %s"):format(nodes, replicas, timeout), function()
      local f = base()
      f.pool.targetDedicatedNodes, f.pool.targetLowPriorityNodes = nodes, 0
      local findings, derived = run(f)
      assert.equal(nodes, derived.nodes)
      assert.equal(replicas, derived.replicas_needed)
      assert.equal(timeout, derived.resize_timeout_needed)
      local x = find(findings, "IMAGE_REPLICAS_TOO_FEW")
      if replicas == 1 then
        assert.is_nil(x)
      else
        assert.equal(("version '1.1.0' has 1 replica in 'westeurope'; a pool of %d nodes needs %d (one per 600 nodes)")
          :format(nodes, replicas), x.message)
        assert.equal(('azbatch image replicate --image "%s" --nodes %d'):format(VER, nodes), x.fix)
      end
      x = find(findings, "RESIZE_TIMEOUT_SHORT")
      if timeout == "PT15M" then
        assert.is_nil(x)
      else
        assert.equal("set resizeTimeout to " .. timeout, x.fix)
      end
    end)
  end

  it("resolves latest by version number, passing over a version excluded from latest", function()
    local f = base()
    latest(f, { version("1.9.0"), version("1.2.0"), version("1.11.0", { excludeFromLatest = true }),
      version("1.10.0"), version("1.10.0-rc1") })
    local findings, derived = run(f)
    assert.equal("1.10.0", derived.latest_version)
    local x = find(findings, "IMAGE_LATEST_RESOLVED")
    assert.equal("info", x.severity)
    assert.equal(F_VMID, x.field)
    assert.equal("'latest' resolves to version '1.10.0', the highest of 5 versions; excluded from latest: '1.11.0'",
      x.message)
    assert.equal('to pin it, set virtualMachineImageId to "' .. DEF .. '/versions/1.10.0"', x.fix)
  end)

  it("passes over versions excluded in the account's region and failed ones", function()
    local f = base()
    local regional = version("2.0.0")
    regional.properties.publishingProfile.targetRegions[1].excludeFromLatest = true
    local failed = version("1.5.0")
    failed.properties.provisioningState = "Failed"
    latest(f, { version("1.4.0"), failed, regional })
    local findings, derived = run(f)
    assert.equal("1.4.0", derived.latest_version)
    has_all(find(findings, "IMAGE_LATEST_RESOLVED").message, { "excluded from latest: '2.0.0'; 1 failed" }, "message")
  end)

  it("judges the resolved version's replicas, and its replication when read alone", function()
    local f = base()
    local v = version("1.10.0")
    v.properties.replicationStatus = nil
    latest(f, { version("1.9.0"), v })
    f.pool.targetDedicatedNodes = 1400
    roomy(f)
    local findings = run(f)
    has_all(find(findings, "IMAGE_REPLICAS_TOO_FEW").message, { "version '1.10.0' has 1 replica" }, "message")
    local x = find(findings, "CHECK_SKIPPED")
    assert.equal("replication", x.group)
    has_all(x.message, { "replication checks skipped: version '1.10.0' was read without its replicationStatus" },
      "message")
    -- the same version read with $expand=ReplicationStatus
    f.image_version = version("1.10.0")
    f.image_version.properties.replicationStatus.summary[1].state = "Replicating"
    findings = run(f)
    assert.is_nil(find(findings, "CHECK_SKIPPED"), codes(findings))
    assert.is_table(find(findings, "IMAGE_REPLICATION_INCOMPLETE"))
  end)
end)

describe("core.preflight autoscale bounds", function()
  -- formula, dedicated + low-priority nodes it can reach (nil: cannot tell)
  local rows = {
    { "$TargetDedicatedNodes = min($pending, 100);", 100 },
    { "$TargetDedicatedNodes = 50; $TargetLowPriorityNodes = min(10, $x, 20);", 60 },
    { "$TargetDedicatedNodes = 10;\n$TargetDedicatedNodes = min($TargetDedicatedNodes * 2, 400);", 400 },
    { "$TargetDedicatedNodes = min(400, $x); $TargetDedicatedNodes = $x;", nil },
    { "$TargetDedicatedNodes = $pending > 0 ? 10 : 0;", nil },
    { "// cap the pool\n$TargetDedicatedNodes = min(max($p, 0), 250); /* spot */ $TargetLowPriorityNodes = 5;", 255 },
    { "$targetdedicatednodes=MIN( 5 , 3 )", 3 },
    { "$TargetDedicatedNodesMax = 5; $TargetDedicatedNodes == 3;", nil },
    { "$TargetDedicatedNodes = min($a, 10) + 1;", nil },
    { "$TargetDedicatedNodes = min($a, 10) * min(1, 2);", nil },
    { "$TargetDedicatedNodes = 1000.5;", 1001 },
    { "$TargetDedicatedNodes = 99999999999;", 2147483647 },
    { "$TargetLowPriorityNodes = min($x, 700);", 700 },
    { "", nil },
  }
  for _, row in ipairs(rows) do
    local formula, want = row[1], row[2]
    it(("bounds %q"):format(formula), function()
      local f = base()
      marketplace(f)
      f.pool.targetDedicatedNodes, f.pool.targetLowPriorityNodes = nil, nil
      f.pool.enableAutoScale, f.pool.autoScaleFormula = true, formula
      local findings, derived = run(f)
      assert.is_nil(derived.resize_timeout_needed)
      if want then
        assert.equal(want, derived.nodes)
        assert.equal("info", find(findings, "AUTOSCALE_NODES").severity)
        assert.is_nil(find(findings, "AUTOSCALE_NODES_UNKNOWN"))
      else
        assert.equal(0, derived.nodes)
        assert.equal("warning", find(findings, "AUTOSCALE_NODES_UNKNOWN").severity)
      end
    end)
  end

  it("checks replicas at the largest size the formula allows", function()
    local f = base()
    f.pool.targetDedicatedNodes, f.pool.targetLowPriorityNodes = nil, nil
    f.pool.enableAutoScale, f.pool.autoScaleFormula = true, "$TargetDedicatedNodes = min($p, 700);"
    local findings = run(f)
    has_all(find(findings, "IMAGE_REPLICAS_TOO_FEW").message, { "a pool of up to 700 nodes needs 2" }, "message")
    assert.is_nil(find(findings, "RESIZE_TIMEOUT_SHORT"))
  end)
end)

describe("core.preflight skipped checks", function()
  local function skipped(findings)
    local r = {}
    for _, x in ipairs(findings) do
      if x.code == "CHECK_SKIPPED" then
        assert.equal("warning", x.severity)
        r[#r + 1] = x.group
      end
    end
    return table.concat(r, ", ")
  end

  it("says which groups a missing account skips, one warning each, and no error", function()
    local f = base()
    f.account = nil
    local findings = run(f)
    assert.equal("subscription, region, quota", skipped(findings))
    for _, x in ipairs(findings) do assert.equal("warning", x.severity) end
  end)

  it("skips the account mode for Shared Key without an account", function()
    local f = base()
    marketplace(f)
    f.credential, f.account = "shared_key", nil
    assert.equal("account mode, quota", skipped(run(f)))
  end)

  it("skips what each missing fact feeds", function()
    local f = base()
    f.image_definition, f.vm_size, f.supported_images, f.usage = nil, nil, nil, nil
    f.unread = { vm_size = { status = 500 }, supported_images = { message = "timed out" } }
    local findings = run(f)
    assert.equal("image definition, node agent, usage, quota", skipped(findings))
    has_all(find(findings, "CHECK_SKIPPED").message, { "facts.image_definition was not given" }, "message")
    local msgs = {}
    for _, x in ipairs(findings) do msgs[#msgs + 1] = x.message end
    has_all(table.concat(msgs, "|"), { "node agent checks skipped: facts.supported_images could not be read "
      .. "('timed out')", "quota checks skipped: facts.vm_size could not be read (HTTP 500)" }, "messages")
  end)

  it("skips the version's checks when it could not be read, with the grant to ask for on 403", function()
    local f = base()
    f.image_version = nil
    f.unread = { image_version = { status = 403 } }
    local findings = run(f)
    assert.equal("IMAGE_ACCESS_DENIED", findings[1].code)
    local x = find(findings, "CHECK_SKIPPED")
    assert.equal("image version", x.group)
    has_all(x.fix, { "grant the identity read access" }, "fix")
  end)

  it("skips a check whose own inputs are unreadable", function()
    local f = base()
    f.pool.resizeTimeout = "15 minutes"
    f.vm_size.name = "Standard_E8s_v5"
    f.image_version.properties.publishingProfile.endOfLifeDate = "soon"
    local findings = run(f)
    assert.equal("Hyper-V generation, resize timeout, quota, end of life", skipped(findings))
    local msgs = {}
    for _, x in ipairs(findings) do msgs[#msgs + 1] = x.message end
    has_all(table.concat(msgs, "|"), { "facts.vm_size describes 'Standard_E8s_v5', not the pool's 'Standard_D4s_v5'",
      "pool.resizeTimeout is not an ISO-8601 duration", "endOfLifeDate 'soon' is not a date" }, "messages")
  end)

  it("notes that a UserSubscription account's quotas are the subscription's", function()
    local f = base()
    f.account.properties = { poolAllocationMode = "UserSubscription" }
    local x = find(run(f), "QUOTA_SUBSCRIPTION")
    assert.equal("info", x.severity)
  end)
end)

describe("core.preflight on facts from the network", function()
  it("cleans and quotes what it shows of them", function()
    local f = base()
    f.account.location = "west\27[2Jeurope'\n"
    local x = find(run(f), "IMAGE_NO_REPLICA_IN_REGION")
    has_all(x.message, { "no replica in 'west[2Jeurope\\' '" }, "message")
  end)

  it("quotes an error code that is not a plain name", function()
    local f = base()
    f.account = nil
    f.unread = { account = { status = 429, code = "Too\27[0m Many" } }
    has_all(find(run(f), "CHECK_SKIPPED").message, { "could not be read (HTTP 429 'Too[0m Many')" }, "message")
  end)

  it("matches no region to a blank one", function()
    local f = base()
    f.account.location = " "
    f.image_version.properties.publishingProfile.targetRegions = { { name = "-" } }
    assert.is_table(find(run(f), "IMAGE_NO_REPLICA_IN_REGION"))
  end)

  it("never shows a SAS token", function()
    local f = base()
    vhd(f)
    f.storage_account.location = "eastus"
    run(f)   -- check_shape looks for the signature
  end)

  -- Every sub-field of every fact, replaced by each wrong kind of value.
  local values = { "x", 7, 2.5, true, {}, { "x" }, core.null, false }
  local function paths(t, prefix, out)
    for k, v in pairs(t) do
      local p = { table.unpack(prefix) }
      p[#p + 1] = k
      out[#out + 1] = p
      if type(v) == "table" then paths(v, p, out) end
    end
    return out
  end
  local function set(t, p, v)
    for i = 1, #p - 1 do t = t[p[i]] end
    t[p[#p]] = v
  end
  local shapes = { gallery = nil, marketplace = marketplace, latest = latest, managed = managed, vhd = vhd }
  for _, sname in ipairs { "gallery", "marketplace", "latest", "managed", "vhd" } do
    it("takes any value in any sub-field of a " .. sname .. " pool's facts", function()
      local template = base()
      if shapes[sname] then shapes[sname](template) end
      template.unread = { image_definition = { status = 500, code = "X", message = "y" } }
      local n = 0
      for _, p in ipairs(paths(template, {}, {})) do
        if #p >= 2 and not (p[1] == "image" and p[2] == "kind") then
          for _, v in ipairs(values) do
            local f = copy(template)
            set(f, p, v)
            local ok, err = pcall(run, f)
            assert.is_true(ok, table.concat(p, ".") .. " = " .. tostring(v) .. ": " .. tostring(err))
            local ok2, err2 = pcall(core.choose_node_agent, f)
            assert.is_true(ok2, table.concat(p, ".") .. ": " .. tostring(err2))
            n = n + 1
          end
          local f = copy(template)
          set(f, p, nil)
          assert.is_true(pcall(run, f), table.concat(p, ".") .. " = nil")
        end
      end
      assert.is_true(n > 100)
    end)
  end
end)

describe("core.preflight misuse", function()
  local function with(k, v)
    local f = base()
    f[k] = v
    return f
  end
  local rows = {
    { "x", "table expected, got string" },
    { with("now", nil), "facts.now: number expected, got nil" },
    { with("now", 0 / 0), "facts.now: finite number of seconds expected" },
    { with("pool", "p"), "facts.pool: table expected, got string" },
    { with("credential", "key"), "facts.credential: expected 'shared_key' or 'entra'" },
    { with("image", nil), "facts.image: table expected, got nil" },
    { with("image", { kind = 1 }), "facts.image.kind: expected one of" },
    { with("account", "acct"), "facts.account: table expected, got string" },
    { with("supported_images", true), "facts.supported_images: table expected, got boolean" },
    { with("unread", 5), "facts.unread: table expected, got number" },
  }
  for i, row in ipairs(rows) do
    it("raises for misuse #" .. i, function()
      local want = "bad argument #1 to 'preflight' %(" .. row[2]:gsub("%p", "%%%0")
      assert.error_matches(function() core.preflight(row[1]) end, want)
    end)
  end

  it("takes a JSON null for an absent fact", function()
    local f = base()
    f.account = core.null
    assert.equal("subscription checks skipped: facts.account was not given", find(run(f), "CHECK_SKIPPED").message)
  end)
end)
