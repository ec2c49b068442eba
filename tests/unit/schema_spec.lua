-- core.pool_spec / core.vm_configuration / core.validate: the descriptor-
-- driven validator of the 2025-06-01 pool bodies. Table-driven: each row
-- starts from a valid body, changes some fields and states the outcome.
local core = require "azbatch.core"
local decode = core.json_decode

local SUB = "11111111-2222-3333-4444-555555555555"
local RG = "/subscriptions/" .. SUB .. "/resourceGroups/myrg/providers/"
local IMG = RG .. "Microsoft.Compute/galleries/mygallery/images/mydef/versions/1.0.0"
local SUBNET = RG .. "Microsoft.Network/virtualNetworks/vnet/subnets/default"
local IDENTITY = RG .. "Microsoft.ManagedIdentity/userAssignedIdentities/id1"
local APP = RG .. "Microsoft.Batch/batchAccounts/acct/applications/app"
local DES = RG .. "Microsoft.Compute/diskEncryptionSets/des1"
local ARTIFACT = RG .. "Microsoft.Compute/galleries/g/serviceArtifacts/sa/vmArtifactsProfiles/p"
local INVM = RG .. "Microsoft.Compute/galleries/g/inVMAccessControlProfiles/prof/versions/1"
local PUBLICIP = RG .. "Microsoft.Network/publicIPAddresses/ip1"

local SHAPE = {
  identity = "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    .. "Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
  subnet = "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    .. "{provider}/virtualNetworks/{network}/subnets/{subnet}",
  app = "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    .. "Microsoft.Batch/batchAccounts/{account}/applications/{application}",
  des = "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    .. "Microsoft.Compute/diskEncryptionSets/{name}",
  artifact = "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    .. "Microsoft.Compute/galleries/{gallery}/serviceArtifacts/{artifact}/"
    .. "vmArtifactsProfiles/{profile}",
  invm = "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    .. "Microsoft.Compute/galleries/{gallery}/inVMAccessControlProfiles/"
    .. "{profile}/versions/{version}",
  publicip = "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    .. "Microsoft.Network/publicIPAddresses/{ip}",
}

local DEL = setmetatable({}, { __name = "DEL" })   -- remove the key
local VM = "virtualMachineConfiguration"
local INT32 = "must be an integer in [0, 2147483647]"

-- Valid bodies per kind. Linux marketplace image: the agent matches it.
local function linux_pool()
  return { id = "p1", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 2,
    virtualMachineConfiguration = {
      imageReference = { publisher = "Canonical", offer = "ubuntu-24_04-lts", sku = "server" },
      nodeAgentSKUId = "batch.node.ubuntu 24.04" } }
end

local function windows_pool()
  return { id = "w1", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 1,
    virtualMachineConfiguration = {
      imageReference = { publisher = "MicrosoftWindowsServer", offer = "WindowsServer",
                         sku = "2022-datacenter" },
      nodeAgentSKUId = "batch.node.windows amd64" } }
end

local function gallery_pool()
  local t = linux_pool()
  t.virtualMachineConfiguration.imageReference = { virtualMachineImageId = IMG }
  return t
end

local BASES = {
  pool = linux_pool,
  windows = windows_pool,
  gallery = gallery_pool,
  virtualMachineConfiguration = function() return linux_pool().virtualMachineConfiguration end,
  ["pool.update"] = function() return {} end,
  ["pool.replace"] = function() return { applicationPackageReferences = {}, metadata = {} } end,
  ["pool.resize"] = function() return { targetDedicatedNodes = 3 } end,
  ["pool.enableautoscale"] = function() return { autoScaleFormula = "$TargetDedicatedNodes=1" } end,
  ["pool.evaluateautoscale"] = function() return { autoScaleFormula = "$TargetDedicatedNodes=1" } end,
  ["pool.removenodes"] = function() return { nodeList = { "tvm-1" } } end,
}

-- set(t, "a.b[2].c", v): creates the tables on the way
local function set(t, path, value)
  local keys = {}
  for part in path:gmatch("[^%.]+") do
    local name, rest = part:match("^([^%[]*)(.*)$")
    if name ~= "" then keys[#keys + 1] = name end
    for i in rest:gmatch("%[(%d+)%]") do keys[#keys + 1] = tonumber(i) end
  end
  for i = 1, #keys - 1 do
    local k = keys[i]
    if t[k] == nil then t[k] = {} end
    t = t[k]
  end
  if value == DEL then value = nil end
  t[keys[#keys]] = value
end

local function get(t, path)
  for part in path:gmatch("[^%.]+") do
    local name, rest = part:match("^([^%[]*)(.*)$")
    if name ~= "" then t = t[name] end
    for i in rest:gmatch("%[(%d+)%]") do t = t[tonumber(i)] end
  end
  return t
end

local function build(row)
  local base = BASES[row.base or row.kind or "pool"]
  local t = base()
  local paths = {}
  for p in pairs(row.set or {}) do paths[#paths + 1] = p end
  table.sort(paths)   -- parents before children
  for _, p in ipairs(paths) do set(t, p, row.set[p]) end
  return t
end

-- Assert the whole fail triple, or success (and normalised values).
local function check(row)
  local kind = row.kind or "pool"
  local r, msg, err = core.validate(kind, build(row))
  if row.field then
    assert.is_nil(r)
    local want = row.field .. ": " .. row.msg
    if row.more then want = want .. " (and " .. row.more .. " more)" end
    assert.equal(want, msg)
    assert.equal("validation", err.kind)
    assert.equal(row.field, err.field)
    assert.equal((row.more or 0) + 1, err.count)
    assert.equal(row.field, err.errors[1].field)
    assert.equal(row.msg, err.errors[1].message)
  else
    assert.is_table(r, msg)
    assert.is_table(msg)   -- warnings
    for p, want in pairs(row.expect or {}) do
      local got = get(r, p)
      assert.equal(want, got, p)
      if math.type(want) then assert.equal(math.type(want), math.type(got), p) end
    end
    assert.is_string(core.json_encode(r))
  end
end

local function nat(name, backend, lo, hi, rules)
  return { name = name, protocol = "tcp", backendPort = backend,
           frontendPortRangeStart = lo, frontendPortRangeEnd = hi,
           networkSecurityGroupRules = rules }
end

local function rules(n, start)
  local t = {}
  for i = 1, n do
    t[i] = { priority = start + i, access = "allow", sourceAddressPrefix = "*" }
  end
  return t
end

local function list(n, v)
  local t = {}
  for i = 1, n do t[i] = type(v) == "function" and v(i) or v end
  return t
end

local vmp = "pool.virtualMachineConfiguration"
local nw = "networkConfiguration.endpointConfiguration.inboundNATPools"
local nwp = "pool.networkConfiguration.endpointConfiguration.inboundNATPools"

local rows = {
  -- BatchPoolCreateOptions: id, vmSize, displayName
  { "valid minimal pool" },
  { "id: letters, digits, - and _", set = { id = "a-b_C9" }, expect = { id = "a-b_C9" } },
  { "id: 64 characters", set = { id = ("a"):rep(64) } },
  { "id: missing", set = { id = DEL }, field = "pool.id", msg = "required field missing" },
  { "id: JSON null is absent", set = { id = core.null }, field = "pool.id", msg = "required field missing" },
  { "id: 65 characters", set = { id = ("a"):rep(65) }, field = "pool.id",
    msg = "must be 1 to 64 letters, digits, '-' or '_'" },
  { "id: a dot", set = { id = "my.pool" }, field = "pool.id",
    msg = "must be 1 to 64 letters, digits, '-' or '_'" },
  { "id: empty", set = { id = "" }, field = "pool.id", msg = "must be 1 to 64 letters, digits, '-' or '_'" },
  { "id: a number", set = { id = 5 }, field = "pool.id", msg = "expected string, got number" },
  { "vmSize: missing", set = { vmSize = DEL }, field = "pool.vmSize", msg = "required field missing" },
  { "vmSize: empty", set = { vmSize = "" }, field = "pool.vmSize", msg = "must not be empty" },
  { "vmSize: a table", set = { vmSize = {} }, field = "pool.vmSize", msg = "expected string, got table" },
  { "displayName: 1024 characters", set = { displayName = ("é"):rep(1024) } },
  { "displayName: 1025 characters", set = { displayName = ("é"):rep(1025) }, field = "pool.displayName",
    msg = "must be at most 1024 characters, got 1025" },
  { "displayName: JSON null", set = { displayName = core.null } },
  { "displayName: invalid UTF-8", set = { displayName = "caf\xe9" }, field = "pool.displayName",
    msg = "not valid UTF-8" },
  { "virtualMachineConfiguration: required by the prose", set = { [VM] = DEL },
    field = vmp, msg = "required field missing" },
  { "virtualMachineConfiguration: a string", set = { [VM] = "x" }, field = vmp,
    msg = "expected table, got string" },

  -- sizing and autoscale
  { "resizeTimeout: PT5M", set = { resizeTimeout = "PT5M" } },
  { "resizeTimeout: below PT5M", set = { resizeTimeout = "PT4M" }, field = "pool.resizeTimeout",
    msg = "must be at least PT5M, got 'PT4M'" },
  { "resizeTimeout: not a duration", set = { resizeTimeout = "15 minutes" }, field = "pool.resizeTimeout",
    msg = "must not contain whitespace, got '15 minutes'" },
  { "resizeTimeout: a number", set = { resizeTimeout = 900 }, field = "pool.resizeTimeout",
    msg = "expected string, got number" },
  { "targetDedicatedNodes: integral float from JSON", set = { targetDedicatedNodes = 2.0 },
    expect = { targetDedicatedNodes = 2 } },
  { "targetDedicatedNodes: negative", set = { targetDedicatedNodes = -1 },
    field = "pool.targetDedicatedNodes", msg = INT32 },
  { "targetDedicatedNodes: beyond int32", set = { targetDedicatedNodes = 2 ^ 31 },
    field = "pool.targetDedicatedNodes", msg = INT32 },
  { "targetDedicatedNodes: fraction", set = { targetDedicatedNodes = 2.5 },
    field = "pool.targetDedicatedNodes", msg = "expected integer, got number" },
  { "targetDedicatedNodes: NaN", set = { targetDedicatedNodes = 0 / 0 },
    field = "pool.targetDedicatedNodes", msg = "expected integer, got number" },
  { "targetDedicatedNodes: inf", set = { targetDedicatedNodes = math.huge },
    field = "pool.targetDedicatedNodes", msg = "expected integer, got number" },
  { "targetDedicatedNodes: a string", set = { targetDedicatedNodes = "2" },
    field = "pool.targetDedicatedNodes", msg = "expected integer, got string" },
  { "targetLowPriorityNodes only", set = { targetDedicatedNodes = DEL, targetLowPriorityNodes = 3 },
    expect = { targetLowPriorityNodes = 3 } },
  { "targetLowPriorityNodes: negative", set = { targetLowPriorityNodes = -5 },
    field = "pool.targetLowPriorityNodes", msg = INT32 },
  { "fixed size needs a target", set = { targetDedicatedNodes = DEL },
    field = "pool.targetDedicatedNodes",
    msg = "required unless targetLowPriorityNodes is set or enableAutoScale is true" },
  { "enableAutoScale: a string", set = { enableAutoScale = "yes" }, field = "pool.enableAutoScale",
    msg = "expected boolean, got string" },
  { "autoscale pool", set = { enableAutoScale = true, targetDedicatedNodes = DEL,
      autoScaleFormula = "$TargetDedicatedNodes=1", autoScaleEvaluationInterval = "PT168H" } },
  { "autoscale excludes targetDedicatedNodes", set = { enableAutoScale = true,
      autoScaleFormula = "$TargetDedicatedNodes=1" }, field = "pool.targetDedicatedNodes",
    msg = "must not be set when enableAutoScale is true" },
  { "autoscale excludes targetLowPriorityNodes", set = { enableAutoScale = true, targetDedicatedNodes = DEL,
      targetLowPriorityNodes = 1, autoScaleFormula = "f" }, field = "pool.targetLowPriorityNodes",
    msg = "must not be set when enableAutoScale is true" },
  { "autoscale excludes resizeTimeout", set = { enableAutoScale = true, targetDedicatedNodes = DEL,
      resizeTimeout = "PT15M", autoScaleFormula = "f" }, field = "pool.resizeTimeout",
    msg = "must not be set when enableAutoScale is true" },
  { "autoscale requires a formula", set = { enableAutoScale = true, targetDedicatedNodes = DEL },
    field = "pool.autoScaleFormula", msg = "required when enableAutoScale is true" },
  { "formula without autoscale", set = { autoScaleFormula = "f" }, field = "pool.autoScaleFormula",
    msg = "must not be set unless enableAutoScale is true" },
  { "formula with enableAutoScale=false", set = { enableAutoScale = false, autoScaleFormula = "f" },
    field = "pool.autoScaleFormula", msg = "must not be set unless enableAutoScale is true" },
  { "autoScaleEvaluationInterval: below 5 minutes", set = { enableAutoScale = true,
      targetDedicatedNodes = DEL, autoScaleFormula = "f", autoScaleEvaluationInterval = "PT4M59S" },
    field = "pool.autoScaleEvaluationInterval", msg = "must be at least PT5M, got 'PT4M59S'" },
  { "autoScaleEvaluationInterval: above 168 hours", set = { enableAutoScale = true,
      targetDedicatedNodes = DEL, autoScaleFormula = "f", autoScaleEvaluationInterval = "PT169H" },
    field = "pool.autoScaleEvaluationInterval", msg = "must be at most P7D, got 'PT169H'" },
  { "taskSlotsPerNode: 256", set = { taskSlotsPerNode = 256 } },
  { "taskSlotsPerNode: 0", set = { taskSlotsPerNode = 0 }, field = "pool.taskSlotsPerNode",
    msg = "must be an integer in [1, 256]" },
  { "taskSlotsPerNode: 257", set = { taskSlotsPerNode = 257 }, field = "pool.taskSlotsPerNode",
    msg = "must be an integer in [1, 256]" },
  { "enableInterNodeCommunication: a number", set = { enableInterNodeCommunication = 1 },
    field = "pool.enableInterNodeCommunication", msg = "expected boolean, got number" },

  -- unknown keys: each at its own path; a key that looks like a missing
  -- field stands for it, ranked with the missing fields
  { "typo vmsize", set = { vmSize = DEL, vmsize = "x" }, field = "pool.vmsize",
    msg = "unknown field (did you mean 'vmSize'?)" },
  { "typo vmsize beside vmSize", set = { vmsize = "x" }, field = "pool.vmsize",
    msg = "unknown field (did you mean 'vmSize'?)" },
  { "typo targetDedicatedNode: the rule still wants a size", set = { targetDedicatedNodes = DEL,
      targetDedicatedNode = 2 }, field = "pool.targetDedicatedNode",
    msg = "unknown field (did you mean 'targetDedicatedNodes'?)", more = 1 },
  { "typo nodeAgentSkuId", set = { [VM .. ".nodeAgentSKUId"] = DEL,
      [VM .. ".nodeAgentSkuId"] = "batch.node.ubuntu 24.04" }, field = vmp .. ".nodeAgentSkuId",
    msg = "unknown field (did you mean 'nodeAgentSKUId'?)" },
  { "typo with a swap", set = { ["startTask.comandLine"] = "x" }, field = "pool.startTask.comandLine",
    msg = "unknown field (did you mean 'commandLine'?)" },
  { "unknown field, nothing close", set = { zzzzzz = 1 }, field = "pool.zzzzzz", msg = "unknown field" },
  { "no suggestion for a short key", set = { x = 1 }, field = "pool.x", msg = "unknown field" },
  { "not in 2025-06-01: resourceTags", set = { resourceTags = {} }, field = "pool.resourceTags",
    msg = "unknown field" },
  { "not in 2025-06-01: targetNodeCommunicationMode", set = { targetNodeCommunicationMode = "default" },
    field = "pool.targetNodeCommunicationMode", msg = "unknown field" },
  { "not in 2025-06-01: identity", set = { identity = {} }, field = "pool.identity",
    msg = "unknown field" },
  { "several unknown keys come in byte order", set = { zz = 1, Zz = 2, aa = 3 }, field = "pool.Zz",
    msg = "unknown field", more = 2 },
  { "a long unknown key is cut", set = { [("k"):rep(100)] = 1 }, field = 'pool["' .. ("k"):rep(80) .. '..."]',
    msg = "unknown field" },
  { "an unknown key with a newline is escaped", set = { ["a\nb"] = 1 }, field = 'pool["a\\nb"]',
    msg = "unknown field" },
  { "an unknown key in invalid UTF-8 is escaped", set = { ["caf\xe9"] = 1 }, field = 'pool["caf\\233"]',
    msg = "unknown field" },
  { "an unknown key with a bidirectional override is escaped", set = { ["a\u{202e}b"] = 1 },
    field = 'pool["a\\u{202e}b"]', msg = "unknown field" },

  -- VirtualMachineConfiguration
  { "imageReference: missing", set = { [VM .. ".imageReference"] = DEL },
    field = vmp .. ".imageReference", msg = "required field missing" },
  { "imageReference: a number", set = { [VM .. ".imageReference"] = 5 },
    field = vmp .. ".imageReference", msg = "expected table or string, got number" },
  { "imageReference: a URN string", set = { [VM .. ".imageReference"] = "Canonical:ubuntu-24_04-lts:server" },
    expect = { [VM .. ".imageReference.sku"] = "server" } },
  { "imageReference: an ImageReference object", set = { [VM .. ".imageReference"] =
      core.image_reference(IMG) }, expect = { [VM .. ".imageReference.virtualMachineImageId"] = IMG } },
  { "nodeAgentSKUId: missing", set = { [VM .. ".nodeAgentSKUId"] = DEL },
    field = vmp .. ".nodeAgentSKUId", msg = "required field missing" },
  { "nodeAgentSKUId: empty", set = { [VM .. ".nodeAgentSKUId"] = "" },
    field = vmp .. ".nodeAgentSKUId", msg = "must not be empty", more = 1 },
  { "windowsConfiguration on Windows", base = "windows",
    set = { [VM .. ".windowsConfiguration.enableAutomaticUpdates"] = false } },
  { "windowsConfiguration on Linux", set = { [VM .. ".windowsConfiguration"] = {} },
    field = vmp .. ".windowsConfiguration",
    msg = "must not be set for a Linux node agent ('batch.node.ubuntu 24.04')" },
  { "windowsConfiguration.enableAutomaticUpdates: a string", base = "windows",
    set = { [VM .. ".windowsConfiguration.enableAutomaticUpdates"] = "no" },
    field = vmp .. ".windowsConfiguration.enableAutomaticUpdates", msg = "expected boolean, got string" },
  { "licenseType: case normalised on Windows", base = "windows", set = { [VM .. ".licenseType"] = "windows_server" },
    expect = { [VM .. ".licenseType"] = "Windows_Server" } },
  { "licenseType: unknown", base = "windows", set = { [VM .. ".licenseType"] = "Linux" },
    field = vmp .. ".licenseType", msg = "must be one of 'Windows_Server', 'Windows_Client'" },
  { "licenseType: on Linux", set = { [VM .. ".licenseType"] = "Windows_Server" }, field = vmp .. ".licenseType",
    msg = "applies only to Windows images, not node agent 'batch.node.ubuntu 24.04'" },

  -- dataDisks
  { "dataDisks: valid, enums normalised", set = { [VM .. ".dataDisks"] = {
      { lun = 0, diskSizeGB = 128, caching = "ReadWrite", managedDisk = { storageAccountType = "Premium_LRS" } },
      { lun = 63, diskSizeGB = 1 } } },
    expect = { [VM .. ".dataDisks[1].caching"] = "readwrite",
               [VM .. ".dataDisks[1].managedDisk.storageAccountType"] = "premium_lrs",
               [VM .. ".dataDisks[2].lun"] = 63 } },
  { "dataDisks: empty array", set = { [VM .. ".dataDisks"] = {} } },
  { "dataDisks: lun 64", set = { [VM .. ".dataDisks"] = { { lun = 64, diskSizeGB = 1 } } },
    field = vmp .. ".dataDisks[1].lun", msg = "must be an integer in [0, 63]" },
  { "dataDisks: lun missing", set = { [VM .. ".dataDisks"] = { { diskSizeGB = 1 } } },
    field = vmp .. ".dataDisks[1].lun", msg = "required field missing" },
  { "dataDisks: diskSizeGB 0", set = { [VM .. ".dataDisks"] = { { lun = 1, diskSizeGB = 0 } } },
    field = vmp .. ".dataDisks[1].diskSizeGB", msg = "must be an integer in [1, 2147483647]" },
  { "dataDisks: diskSizeGB missing", set = { [VM .. ".dataDisks"] = { { lun = 1 } } },
    field = vmp .. ".dataDisks[1].diskSizeGB", msg = "required field missing" },
  { "dataDisks: duplicate lun", set = { [VM .. ".dataDisks"] = {
      { lun = 1, diskSizeGB = 1 }, { lun = 2, diskSizeGB = 1 }, { lun = 1, diskSizeGB = 1 } } },
    field = vmp .. ".dataDisks[3].lun", msg = "duplicate lun 1 (also dataDisks[1])" },
  { "dataDisks: caching unknown", set = { [VM .. ".dataDisks"] = { { lun = 1, diskSizeGB = 1, caching = "fast" } } },
    field = vmp .. ".dataDisks[1].caching", msg = "must be one of 'none', 'readonly', 'readwrite'" },
  { "dataDisks: storageAccountType unknown", set = { [VM .. ".dataDisks"] = {
      { lun = 1, diskSizeGB = 1, managedDisk = { storageAccountType = "ultra" } } } },
    field = vmp .. ".dataDisks[1].managedDisk.storageAccountType",
    msg = "must be one of 'standard_lrs', 'premium_lrs', 'standardssd_lrs'" },
  { "dataDisks: a map, not an array", set = { [VM .. ".dataDisks"] = { x = 1 } },
    field = vmp .. ".dataDisks", msg = "expected array, got table with key 'x'" },
  { "dataDisks: a hole", set = { [VM .. ".dataDisks"] = { [1] = { lun = 1, diskSizeGB = 1 },
      [3] = { lun = 2, diskSizeGB = 1 } } },
    field = vmp .. ".dataDisks", msg = "expected array, got table with key 3" },
  { "dataDisks: key 0", set = { [VM .. ".dataDisks"] = { [0] = {} } },
    field = vmp .. ".dataDisks", msg = "expected array, got table with key 0" },
  { "dataDisks: element JSON null", set = { [VM .. ".dataDisks"] = { core.null } },
    field = vmp .. ".dataDisks[1]", msg = "expected table, got null" },

  -- containerConfiguration
  { "containerConfiguration: valid", set = { [VM .. ".containerConfiguration"] = {
      type = "DockerCompatible", containerImageNames = { "busybox" },
      containerRegistries = { { registryServer = "r.azurecr.io", identityReference = { resourceId = IDENTITY } },
                              { username = "u", password = "p" } } } },
    expect = { [VM .. ".containerConfiguration.type"] = "dockerCompatible" } },
  { "containerConfiguration: type missing", set = { [VM .. ".containerConfiguration"] = {} },
    field = vmp .. ".containerConfiguration.type", msg = "required field missing" },
  { "containerConfiguration: type unknown", set = { [VM .. ".containerConfiguration.type"] = "docker" },
    field = vmp .. ".containerConfiguration.type", msg = "must be one of 'dockerCompatible', 'criCompatible'" },
  { "containerImageNames: a number", set = { [VM .. ".containerConfiguration"] = {
      type = "criCompatible", containerImageNames = { 1 } } },
    field = vmp .. ".containerConfiguration.containerImageNames[1]", msg = "expected string, got number" },
  { "containerRegistries: identity id shape", set = { [VM .. ".containerConfiguration"] = {
      type = "criCompatible", containerRegistries = { { identityReference = { resourceId = "id1" } } } } },
    field = vmp .. ".containerConfiguration.containerRegistries[1].identityReference.resourceId",
    msg = "expected " .. SHAPE.identity .. ", got 'id1'" },

  -- diskEncryptionConfiguration
  { "diskEncryption: targets normalised", set = { [VM .. ".diskEncryptionConfiguration.targets"] =
      { "OsDisk", "TemporaryDisk" } },
    expect = { [VM .. ".diskEncryptionConfiguration.targets[1]"] = "osdisk" } },
  { "diskEncryption: target unknown", set = { [VM .. ".diskEncryptionConfiguration.targets"] = { "datadisk" } },
    field = vmp .. ".diskEncryptionConfiguration.targets[1]", msg = "must be one of 'osdisk', 'temporarydisk'" },
  { "diskEncryption: customer key with osdisk", set = { [VM .. ".diskEncryptionConfiguration"] = {
      targets = { "osdisk" }, customerManagedKey = { keyUrl = "https://kv.vault.azure.net/keys/k/1",
      identityReference = { resourceId = IDENTITY }, rotationToLatestKeyVersionEnabled = true } } } },
  { "diskEncryption: customer key needs osdisk", set = { [VM .. ".diskEncryptionConfiguration"] = {
      targets = { "temporarydisk" }, customerManagedKey = { keyUrl = "https://kv/keys/k/1" } } },
    field = vmp .. ".diskEncryptionConfiguration.customerManagedKey", msg = "requires 'osdisk' in targets" },
  { "diskEncryption: Linux gallery pool", base = "gallery",
    set = { [VM .. ".diskEncryptionConfiguration.targets"] = { "osdisk" } },
    field = vmp .. ".diskEncryptionConfiguration", msg = "disk encryption configuration is not "
      .. "supported on Linux pool created with Azure Compute Gallery Image" },

  -- nodePlacement, extensions
  { "nodePlacementConfiguration: Zonal", set = { [VM .. ".nodePlacementConfiguration.policy"] = "Zonal" },
    expect = { [VM .. ".nodePlacementConfiguration.policy"] = "zonal" } },
  { "nodePlacementConfiguration: unknown", set = { [VM .. ".nodePlacementConfiguration.policy"] = "global" },
    field = vmp .. ".nodePlacementConfiguration.policy", msg = "must be one of 'regional', 'zonal'" },
  { "extensions: valid", set = { [VM .. ".extensions"] = { { name = "e", publisher = "p", type = "t",
      typeHandlerVersion = "1.0", autoUpgradeMinorVersion = true, enableAutomaticUpgrade = false,
      settings = { commandToExecute = "ls" }, protectedSettings = { key = "v" },
      provisionAfterExtensions = { "other" } } } } },
  { "extensions: name missing", set = { [VM .. ".extensions"] = { { publisher = "p", type = "t" } } },
    field = vmp .. ".extensions[1].name", msg = "required field missing" },
  { "extensions: type missing", set = { [VM .. ".extensions"] = { { name = "e", publisher = "p" } } },
    field = vmp .. ".extensions[1].type", msg = "required field missing" },
  { "extensions: settings values are strings", set = { [VM .. ".extensions"] = {
      { name = "e", publisher = "p", type = "t", settings = { timeout = 5 } } } },
    field = vmp .. ".extensions[1].settings.timeout", msg = "expected string, got number" },
  { "extensions: settings keys are strings", set = { [VM .. ".extensions"] = {
      { name = "e", publisher = "p", type = "t", settings = { "x" } } } },
    field = vmp .. ".extensions[1].settings", msg = "unexpected number key (keys are strings)" },
  { "extensions: settings keys in invalid UTF-8", set = { [VM .. ".extensions"] = {
      { name = "e", publisher = "p", type = "t", settings = { ["\xff"] = "x" } } } },
    field = vmp .. ".extensions[1].settings", msg = "a key is not valid UTF-8" },
  { "extensions: a settings key that is no Lua name is quoted in the path", set = { [VM .. ".extensions"] = {
      { name = "e", publisher = "p", type = "t", settings = { ["my key"] = 1 } } } },
    field = vmp .. '.extensions[1].settings["my key"]', msg = "expected string, got number" },
  { "extensions: settings given as a JSON array", set = { [VM .. ".extensions"] = {
      { name = "e", publisher = "p", type = "t", settings = core.array {} } } },
    field = vmp .. ".extensions[1].settings", msg = "expected table, got array" },
  { "extensions: provisionAfterExtensions a string", set = { [VM .. ".extensions"] = {
      { name = "e", publisher = "p", type = "t", provisionAfterExtensions = "x" } } },
    field = vmp .. ".extensions[1].provisionAfterExtensions", msg = "expected array, got string" },

  -- osDisk, securityProfile, serviceArtifactReference
  { "osDisk: valid", set = { [VM .. ".osDisk"] = { ephemeralOSDiskSettings = { placement = "CacheDisk" },
      caching = "ReadOnly", diskSizeGB = 64, writeAcceleratorEnabled = false,
      managedDisk = { storageAccountType = "StandardSSD_LRS", diskEncryptionSet = { id = DES } } } },
    expect = { [VM .. ".osDisk.ephemeralOSDiskSettings.placement"] = "cachedisk",
               [VM .. ".osDisk.managedDisk.storageAccountType"] = "standardssd_lrs" } },
  { "osDisk: placement unknown", set = { [VM .. ".osDisk.ephemeralOSDiskSettings.placement"] = "resourcedisk" },
    field = vmp .. ".osDisk.ephemeralOSDiskSettings.placement", msg = "must be one of 'cachedisk'" },
  { "osDisk: diskSizeGB 0", set = { [VM .. ".osDisk.diskSizeGB"] = 0 },
    field = vmp .. ".osDisk.diskSizeGB", msg = "must be an integer in [1, 2147483647]" },
  { "osDisk: disk encryption set id", set = { [VM .. ".osDisk.managedDisk.diskEncryptionSet.id"] = "des1" },
    field = vmp .. ".osDisk.managedDisk.diskEncryptionSet.id", msg = "expected " .. SHAPE.des .. ", got 'des1'" },
  { "confidential VM", set = { [VM .. ".securityProfile.securityType"] = "ConfidentialVM",
      [VM .. ".osDisk.managedDisk.securityProfile.securityEncryptionType"] = "vmgueststateonly" },
    expect = { [VM .. ".securityProfile.securityType"] = "confidentialvm",
               [VM .. ".osDisk.managedDisk.securityProfile.securityEncryptionType"] = "VMGuestStateOnly" } },
  { "disk securityProfile only for confidential VMs",
    set = { [VM .. ".osDisk.managedDisk.securityProfile.securityEncryptionType"] = "NonPersistedTPM" },
    field = vmp .. ".osDisk.managedDisk.securityProfile",
    msg = "can only be set for confidential VMs (securityProfile.securityType 'confidentialvm')" },
  { "confidential VM needs securityEncryptionType",
    set = { [VM .. ".securityProfile.securityType"] = "confidentialvm" },
    field = vmp .. ".osDisk.managedDisk.securityProfile.securityEncryptionType",
    msg = "required when securityProfile.securityType is 'confidentialvm'" },
  { "securityProfile: trusted launch", set = { [VM .. ".securityProfile"] = { securityType = "TrustedLaunch",
      encryptionAtHost = true, uefiSettings = { secureBootEnabled = true, vTpmEnabled = true } } },
    expect = { [VM .. ".securityProfile.securityType"] = "trustedLaunch" } },
  { "securityProfile: securityType unknown", set = { [VM .. ".securityProfile.securityType"] = "standard" },
    field = vmp .. ".securityProfile.securityType", msg = "must be one of 'trustedLaunch', 'confidentialvm'" },
  { "securityProfile: uefiSettings need securityType", set = { [VM .. ".securityProfile.uefiSettings"] =
      { secureBootEnabled = true } },
    field = vmp .. ".securityProfile.uefiSettings", msg = "requires securityType" },
  { "proxyAgentSettings: mode normalised", set = { [VM .. ".securityProfile.proxyAgentSettings"] = {
      enabled = true, imds = { mode = "enforce" }, wireServer = { inVMAccessControlProfileReferenceId = INVM,
      mode = "AUDIT" } } },
    expect = { [VM .. ".securityProfile.proxyAgentSettings.imds.mode"] = "Enforce",
               [VM .. ".securityProfile.proxyAgentSettings.wireServer.mode"] = "Audit" } },
  { "proxyAgentSettings: Enforce with a profile", set = { [VM .. ".securityProfile.proxyAgentSettings.imds"] =
      { mode = "Enforce", inVMAccessControlProfileReferenceId = INVM } },
    field = vmp .. ".securityProfile.proxyAgentSettings.imds.mode",
    msg = "'Enforce' cannot be used together with inVMAccessControlProfileReferenceId" },
  { "proxyAgentSettings: profile id shape", set = { [VM .. ".securityProfile.proxyAgentSettings.wireServer"] =
      { inVMAccessControlProfileReferenceId = "p" } },
    field = vmp .. ".securityProfile.proxyAgentSettings.wireServer.inVMAccessControlProfileReferenceId",
    msg = "expected " .. SHAPE.invm .. ", got 'p'" },
  { "serviceArtifactReference: valid", set = { [VM .. ".serviceArtifactReference.id"] = ARTIFACT } },
  { "serviceArtifactReference: id missing", set = { [VM .. ".serviceArtifactReference"] = {} },
    field = vmp .. ".serviceArtifactReference.id", msg = "required field missing" },
  { "serviceArtifactReference: id shape", set = { [VM .. ".serviceArtifactReference.id"] = IMG },
    field = vmp .. ".serviceArtifactReference.id", msg = "expected " .. SHAPE.artifact .. ", got '"
      .. IMG:sub(1, 80) .. "...'" },

  -- networkConfiguration
  { "network: valid", set = { networkConfiguration = { subnetId = SUBNET, dynamicVNetAssignmentScope = "Job",
      enableAcceleratedNetworking = true, publicIPAddressConfiguration = { provision = "UserManaged",
      ipFamilies = { "ipv4", "IPV6" }, ipAddressIds = { PUBLICIP }, ipTags = { { ipTagType = "FirstPartyUsage",
      tag = "SQL" } } } } },
    expect = { ["networkConfiguration.dynamicVNetAssignmentScope"] = "job",
               ["networkConfiguration.publicIPAddressConfiguration.provision"] = "usermanaged",
               ["networkConfiguration.publicIPAddressConfiguration.ipFamilies[1]"] = "IPv4",
               ["networkConfiguration.publicIPAddressConfiguration.ipFamilies[2]"] = "IPv6" } },
  { "subnetId: shape", set = { ["networkConfiguration.subnetId"] = "default" },
    field = "pool.networkConfiguration.subnetId", msg = "expected " .. SHAPE.subnet .. ", got 'default'" },
  { "subnetId: a segment too many", set = { ["networkConfiguration.subnetId"] = SUBNET .. "/x" },
    field = "pool.networkConfiguration.subnetId", msg = "expected " .. SHAPE.subnet .. ", got '"
      .. SUBNET:sub(1, 80) .. "...'" },
  { "subnetId: an empty segment", set = { ["networkConfiguration.subnetId"] = RG .. "Microsoft.Network//vnet" },
    field = "pool.networkConfiguration.subnetId", msg = "expected " .. SHAPE.subnet .. ", got '"
      .. RG:sub(1, 80) .. "...'" },
  { "subnetId: a short id in full", set = { ["networkConfiguration.subnetId"] = "/subscriptions/s//x" },
    field = "pool.networkConfiguration.subnetId", msg = "expected " .. SHAPE.subnet
      .. ", got '/subscriptions/s//x'" },
  { "subnetId: a long value is cut", set = { ["networkConfiguration.subnetId"] = ("x"):rep(500) },
    field = "pool.networkConfiguration.subnetId", msg = "expected " .. SHAPE.subnet .. ", got '"
      .. ("x"):rep(80) .. "...'" },
  { "subnetId: classic VNet", set = { ["networkConfiguration.subnetId"] =
      RG .. "Microsoft.ClassicNetwork/virtualNetworks/v/subnets/s" },
    field = "pool.networkConfiguration.subnetId",
    msg = "only ARM virtual networks (Microsoft.Network/virtualNetworks) are supported" },
  { "dynamicVNetAssignmentScope: unknown", set = { ["networkConfiguration.dynamicVNetAssignmentScope"] = "pool" },
    field = "pool.networkConfiguration.dynamicVNetAssignmentScope", msg = "must be one of 'none', 'job'" },
  { "ipFamilies: unknown", set = { ["networkConfiguration.publicIPAddressConfiguration.ipFamilies"] = { "IPv5" } },
    field = "pool.networkConfiguration.publicIPAddressConfiguration.ipFamilies[1]",
    msg = "must be one of 'IPv4', 'IPv6'" },
  { "ipAddressIds: shape", set = { ["networkConfiguration.publicIPAddressConfiguration.ipAddressIds"] = { SUBNET } },
    field = "pool.networkConfiguration.publicIPAddressConfiguration.ipAddressIds[1]",
    msg = "expected " .. SHAPE.publicip .. ", got '" .. SUBNET:sub(1, 80) .. "...'" },
  { "ipTags: a string tag type", set = { ["networkConfiguration.publicIPAddressConfiguration.ipTags"] =
      { { ipTagType = 1 } } },
    field = "pool.networkConfiguration.publicIPAddressConfiguration.ipTags[1].ipTagType",
    msg = "expected string, got number" },
  { "provision: unknown", set = { ["networkConfiguration.publicIPAddressConfiguration.provision"] = "none" },
    field = "pool.networkConfiguration.publicIPAddressConfiguration.provision",
    msg = "must be one of 'batchmanaged', 'usermanaged', 'nopublicipaddresses'" },
  { "no public IPs excludes endpoints", set = { networkConfiguration = {
      publicIPAddressConfiguration = { provision = "NoPublicIPAddresses" },
      endpointConfiguration = { inboundNATPools = { nat("ssh", 22, 1000, 1099) } } } },
    field = "pool.networkConfiguration.endpointConfiguration",
    msg = "must not be set when publicIPAddressConfiguration.provision is 'nopublicipaddresses'" },
  { "NAT pools: valid", set = { [nw] = { nat("ssh.in-1_", 22, 1000, 1039,
      { { priority = 150, access = "Allow", sourceAddressPrefix = "192.0.2.0/24",
          sourcePortRanges = { "22", "100-200" } } }), nat("rdp", 3389, 2000, 2099) } },
    expect = { [nw .. "[1].networkSecurityGroupRules[1].access"] = "allow" } },
  { "NAT pools: required", set = { ["networkConfiguration.endpointConfiguration"] = {} },
    field = "pool.networkConfiguration.endpointConfiguration.inboundNATPools", msg = "required field missing" },
  { "NAT pools: at most 5", set = { [nw] = list(6, function(i) return nat("n" .. i, i, i * 100, i * 100 + 50) end) },
    field = nwp, msg = "at most 5 items, got 6" },
  { "NAT pool name: starts with '-'", set = { [nw] = { nat("-ssh", 22, 1000, 1099) } },
    field = nwp .. "[1].name", msg = "must be 1 to 77 letters, digits, '_', '.' or '-', starting with a "
      .. "letter or digit and ending with a letter, digit or '_'" },
  { "NAT pool name: ends with '.'", set = { [nw] = { nat("ssh.", 22, 1000, 1099) } },
    field = nwp .. "[1].name", msg = "must be 1 to 77 letters, digits, '_', '.' or '-', starting with a "
      .. "letter or digit and ending with a letter, digit or '_'" },
  { "NAT pool name: 78 characters", set = { [nw] = { nat(("a"):rep(78), 22, 1000, 1099) } },
    field = nwp .. "[1].name", msg = "must be 1 to 77 letters, digits, '_', '.' or '-', starting with a "
      .. "letter or digit and ending with a letter, digit or '_'" },
  { "NAT pool: protocol unknown", set = { [nw] = { nat("ssh", 22, 1000, 1099) },
      [nw .. "[1].protocol"] = "icmp" }, field = nwp .. "[1].protocol", msg = "must be one of 'tcp', 'udp'" },
  { "NAT pool: protocol missing", set = { [nw] = { nat("ssh", 22, 1000, 1099) }, [nw .. "[1].protocol"] = DEL },
    field = nwp .. "[1].protocol", msg = "required field missing" },
  { "NAT pool: backendPort reserved", set = { [nw] = { nat("b", 29877, 1000, 1099) } },
    field = nwp .. "[1].backendPort", msg = "ports 29876 and 29877 are reserved" },
  { "NAT pool: backendPort 0", set = { [nw] = { nat("b", 0, 1000, 1099) } },
    field = nwp .. "[1].backendPort", msg = "must be an integer in [1, 65535]" },
  { "NAT pool: frontend start reserved", set = { [nw] = { nat("b", 22, 50000, 50100) } },
    field = nwp .. "[1].frontendPortRangeStart", msg = "ports 50000 to 55000 are reserved", more = 1 },
  { "NAT pool: frontend end 65535", set = { [nw] = { nat("b", 22, 60000, 65535) } },
    field = nwp .. "[1].frontendPortRangeEnd", msg = "must be an integer in [1, 65534]" },
  { "NAT pool: fewer than 40 ports", set = { [nw] = { nat("b", 22, 1000, 1038) } },
    field = nwp .. "[1].frontendPortRangeEnd", msg = "the range 1000-1038 must contain at least 40 ports" },
  { "NAT pool: range over the reserved ports", set = { [nw] = { nat("b", 22, 49000, 56000) } },
    field = nwp .. "[1].frontendPortRangeEnd",
    msg = "the range 49000-56000 includes the reserved ports 50000 to 55000" },
  { "NAT pools: overlapping ranges", set = { [nw] = { nat("a", 22, 1000, 1099), nat("b", 23, 1050, 1149) } },
    field = nwp .. "[2].frontendPortRangeStart", msg = "the frontend range 1050-1149 overlaps inboundNATPools[1]" },
  { "NAT pools: duplicate names", set = { [nw] = { nat("ssh", 22, 1000, 1099), nat("SSH", 23, 2000, 2099) } },
    field = nwp .. "[2].name", msg = "duplicate name (also inboundNATPools[1])" },
  { "NAT pools: duplicate backendPort", set = { [nw] = { nat("a", 22, 1000, 1099), nat("b", 22, 2000, 2099) } },
    field = nwp .. "[2].backendPort", msg = "duplicate backendPort 22 (also inboundNATPools[1])" },
  { "NSG: 25 rules across the pool", set = { [nw] = { nat("a", 22, 1000, 1099, rules(20, 150)),
      nat("b", 23, 2000, 2099, rules(5, 1000)) } } },
  { "NSG: 26 rules across the pool", set = { [nw] = { nat("a", 22, 1000, 1099, rules(20, 150)),
      nat("b", 23, 2000, 2099, rules(6, 1000)) } },
    field = nwp .. "[2].networkSecurityGroupRules", msg = "at most 25 network security group rules per pool, got 26" },
  { "NSG: duplicate priority across NAT pools", set = { [nw] = { nat("a", 22, 1000, 1099, rules(2, 150)),
      nat("b", 23, 2000, 2099, rules(1, 151)) } },
    field = nwp .. "[2].networkSecurityGroupRules[1].priority", msg = "duplicate priority 152 in the pool" },
  { "NSG: duplicate priority in one NAT pool", set = { [nw] = { nat("a", 22, 1000, 1099,
      { { priority = 200, access = "deny", sourceAddressPrefix = "*" },
        { priority = 200, access = "allow", sourceAddressPrefix = "*" } }) } },
    field = nwp .. "[1].networkSecurityGroupRules[2].priority", msg = "duplicate priority 200 in the pool" },
  { "NSG: priority 149", set = { [nw] = { nat("a", 22, 1000, 1099, rules(1, 148)) } },
    field = nwp .. "[1].networkSecurityGroupRules[1].priority", msg = "must be an integer in [150, 4096]" },
  { "NSG: access missing",
    set = { [nw] = { nat("a", 22, 1000, 1099, { { priority = 150, sourceAddressPrefix = "*" } }) } },
    field = nwp .. "[1].networkSecurityGroupRules[1].access", msg = "required field missing" },
  { "NSG: sourceAddressPrefix missing",
    set = { [nw] = { nat("a", 22, 1000, 1099, { { priority = 150, access = "deny" } }) } },
    field = nwp .. "[1].networkSecurityGroupRules[1].sourceAddressPrefix", msg = "required field missing" },
  { "NSG: port out of range", set = { [nw] = { nat("a", 22, 1000, 1099, { { priority = 150, access = "deny",
      sourceAddressPrefix = "*", sourcePortRanges = { "70000" } } }) } },
    field = nwp .. "[1].networkSecurityGroupRules[1].sourcePortRanges[1]",
    msg = "expected '*', a port or a range such as '100-200' within 0-65535, got '70000'" },
  { "NSG: overlapping port ranges", set = { [nw] = { nat("a", 22, 1000, 1099, { { priority = 150, access = "deny",
      sourceAddressPrefix = "*", sourcePortRanges = { "100-200", "150" } } }) } },
    field = nwp .. "[1].networkSecurityGroupRules[1].sourcePortRanges[2]", msg = "overlaps sourcePortRanges[1]" },

  -- startTask
  { "startTask: valid", set = { startTask = { commandLine = "/bin/sh -c true", waitForSuccess = true,
      maxTaskRetryCount = -1, environmentSettings = { { name = "A", value = "1" } },
      userIdentity = { autoUser = { scope = "Pool", elevationLevel = "Admin" } },
      resourceFiles = { { httpUrl = "https://x/y?sig=1", filePath = "y", fileMode = "0644" },
                        { storageContainerUrl = "https://x/c", blobPrefix = "in/" },
                        { autoStorageContainerName = "c", identityReference = { resourceId = IDENTITY } } },
      containerSettings = { imageName = "busybox", workingDirectory = "TaskWorkingDirectory",
        containerRunOptions = "--rm", containerHostBatchBindMounts = { { source = "shared", isReadOnly = true } },
        registry = { registryServer = "r.azurecr.io" } } } },
    expect = { ["startTask.userIdentity.autoUser.scope"] = "pool",
               ["startTask.userIdentity.autoUser.elevationLevel"] = "admin",
               ["startTask.containerSettings.workingDirectory"] = "taskWorkingDirectory",
               ["startTask.containerSettings.containerHostBatchBindMounts[1].source"] = "Shared",
               ["startTask.maxTaskRetryCount"] = -1 } },
  { "startTask: commandLine missing", set = { startTask = {} }, field = "pool.startTask.commandLine",
    msg = "required field missing" },
  { "startTask: commandLine empty", set = { ["startTask.commandLine"] = "" }, field = "pool.startTask.commandLine",
    msg = "must not be empty" },
  { "startTask: maxTaskRetryCount -2", set = { startTask = { commandLine = "x", maxTaskRetryCount = -2 } },
    field = "pool.startTask.maxTaskRetryCount", msg = "must be an integer in [-1, 2147483647]" },
  { "startTask: waitForSuccess a string", set = { startTask = { commandLine = "x", waitForSuccess = "true" } },
    field = "pool.startTask.waitForSuccess", msg = "expected boolean, got string" },
  { "containerSettings: imageName missing", set = { startTask = { commandLine = "x", containerSettings = {} } },
    field = "pool.startTask.containerSettings.imageName", msg = "required field missing" },
  { "containerSettings: workingDirectory unknown", set = { startTask = { commandLine = "x",
      containerSettings = { imageName = "i", workingDirectory = "home" } } },
    field = "pool.startTask.containerSettings.workingDirectory",
    msg = "must be one of 'taskWorkingDirectory', 'containerImageDefault'" },
  { "bind mount: source unknown", set = { startTask = { commandLine = "x",
      containerSettings = { imageName = "i", containerHostBatchBindMounts = { { source = "Root" } } } } },
    field = "pool.startTask.containerSettings.containerHostBatchBindMounts[1].source",
    msg = "must be one of 'Shared', 'Startup', 'VfsMounts', 'Task', 'JobPrep', 'Applications'" },
  { "resourceFiles: no source", set = { startTask = { commandLine = "x", resourceFiles = { { filePath = "a" } } } },
    field = "pool.startTask.resourceFiles[1]",
    msg = "one of autoStorageContainerName, storageContainerUrl, httpUrl is required" },
  { "resourceFiles: two sources", set = { startTask = { commandLine = "x", resourceFiles = {
      { autoStorageContainerName = "c", storageContainerUrl = "https://x/c" } } } },
    field = "pool.startTask.resourceFiles[1]",
    msg = "autoStorageContainerName, storageContainerUrl, httpUrl are mutually exclusive: set exactly one" },
  { "resourceFiles: httpUrl needs filePath", set = { startTask = { commandLine = "x", resourceFiles = {
      { httpUrl = "https://x/y" } } } },
    field = "pool.startTask.resourceFiles[1].filePath", msg = "required when httpUrl is set" },
  { "resourceFiles: blobPrefix with httpUrl", set = { startTask = { commandLine = "x", resourceFiles = {
      { httpUrl = "https://x/y", filePath = "y", blobPrefix = "a" } } } },
    field = "pool.startTask.resourceFiles[1].blobPrefix",
    msg = "valid only with autoStorageContainerName or storageContainerUrl" },
  { "resourceFiles: fileMode not octal", set = { startTask = { commandLine = "x", resourceFiles = {
      { autoStorageContainerName = "c", fileMode = "0999" } } } },
    field = "pool.startTask.resourceFiles[1].fileMode", msg = "must be an octal mode such as '0770'" },
  { "resourceFiles: filePath with ..", set = { startTask = { commandLine = "x", resourceFiles = {
      { autoStorageContainerName = "c", filePath = "a/../../etc" } } } },
    field = "pool.startTask.resourceFiles[1].filePath", msg = "must not leave the task working directory ('..')" },
  { "environmentSettings: name missing", set = { startTask = { commandLine = "x",
      environmentSettings = { { value = "1" } } } },
    field = "pool.startTask.environmentSettings[1].name", msg = "required field missing" },
  { "userIdentity: both", set = { startTask = { commandLine = "x", userIdentity = { username = "u", autoUser = {} } } },
    field = "pool.startTask.userIdentity", msg = "username, autoUser are mutually exclusive: set exactly one" },
  { "userIdentity: neither", set = { startTask = { commandLine = "x", userIdentity = {} } },
    field = "pool.startTask.userIdentity", msg = "one of username, autoUser is required" },
  { "autoUser: scope unknown",
    set = { startTask = { commandLine = "x", userIdentity = { autoUser = { scope = "job" } } } },
    field = "pool.startTask.userIdentity.autoUser.scope", msg = "must be one of 'task', 'pool'" },

  -- packages, scheduling, users, metadata
  { "applicationPackageReferences: 10", set = { applicationPackageReferences = list(10, { applicationId = APP }) } },
  { "applicationPackageReferences: 11", set = { applicationPackageReferences = list(11, { applicationId = APP }) },
    field = "pool.applicationPackageReferences", msg = "at most 10 items, got 11" },
  { "applicationPackageReferences: applicationId missing",
    set = { applicationPackageReferences = { { version = "1" } } },
    field = "pool.applicationPackageReferences[1].applicationId", msg = "required field missing" },
  { "applicationPackageReferences: not fully qualified",
    set = { applicationPackageReferences = { { applicationId = "app" } } },
    field = "pool.applicationPackageReferences[1].applicationId", msg = "expected " .. SHAPE.app .. ", got 'app'" },
  { "taskSchedulingPolicy: normalised", set = { taskSchedulingPolicy = { nodeFillType = "Pack",
      jobDefaultOrder = "CreationTime" } },
    expect = { ["taskSchedulingPolicy.nodeFillType"] = "pack",
               ["taskSchedulingPolicy.jobDefaultOrder"] = "creationtime" } },
  { "taskSchedulingPolicy: nodeFillType missing", set = { taskSchedulingPolicy = {} },
    field = "pool.taskSchedulingPolicy.nodeFillType", msg = "required field missing" },
  { "taskSchedulingPolicy: nodeFillType unknown", set = { ["taskSchedulingPolicy.nodeFillType"] = "fill" },
    field = "pool.taskSchedulingPolicy.nodeFillType", msg = "must be one of 'spread', 'pack'" },
  { "taskSchedulingPolicy: jobDefaultOrder unknown", set = { taskSchedulingPolicy = { nodeFillType = "spread",
      jobDefaultOrder = "fifo" } },
    field = "pool.taskSchedulingPolicy.jobDefaultOrder", msg = "must be one of 'none', 'creationtime'" },
  { "userAccounts: valid", set = { userAccounts = { { name = "admin", password = "pw", elevationLevel = "Admin",
      linuxUserConfiguration = { uid = 1000, gid = 1000, sshPrivateKey = "key" } },
      { name = "w", password = "pw", windowsUserConfiguration = { loginMode = "Interactive" } } } },
    expect = { ["userAccounts[1].elevationLevel"] = "admin",
               ["userAccounts[2].windowsUserConfiguration.loginMode"] = "interactive" } },
  { "userAccounts: name missing", set = { userAccounts = { { password = "pw" } } },
    field = "pool.userAccounts[1].name", msg = "required field missing" },
  { "userAccounts: name of 21 characters", set = { userAccounts = { { name = ("u"):rep(21), password = "pw" } } },
    field = "pool.userAccounts[1].name", msg = "must be at most 20 characters, got 21" },
  { "userAccounts: password missing", set = { userAccounts = { { name = "u" } } },
    field = "pool.userAccounts[1].password", msg = "required field missing" },
  { "userAccounts: elevationLevel unknown", set = { userAccounts = { { name = "u", password = "p",
      elevationLevel = "root" } } },
    field = "pool.userAccounts[1].elevationLevel", msg = "must be one of 'nonadmin', 'admin'" },
  { "userAccounts: uid without gid", set = { userAccounts = { { name = "u", password = "p",
      linuxUserConfiguration = { uid = 1000 } } } },
    field = "pool.userAccounts[1].linuxUserConfiguration.gid", msg = "required when uid is set" },
  { "userAccounts: negative uid", set = { userAccounts = { { name = "u", password = "p",
      linuxUserConfiguration = { uid = -1, gid = 1 } } } },
    field = "pool.userAccounts[1].linuxUserConfiguration.uid", msg = INT32 },
  { "userAccounts: loginMode unknown", set = { userAccounts = { { name = "u", password = "p",
      windowsUserConfiguration = { loginMode = "remote" } } } },
    field = "pool.userAccounts[1].windowsUserConfiguration.loginMode", msg = "must be one of 'batch', 'interactive'" },
  { "metadata: valid", set = { metadata = { { name = "a", value = "" } } } },
  { "metadata: a boolean key", set = { metadata = { [true] = 1 } }, field = "pool.metadata",
    msg = "expected array, got table with key of type boolean" },
  { "metadata: name missing", set = { metadata = { { value = "v" } } }, field = "pool.metadata[1].name",
    msg = "required field missing" },
  { "metadata: value missing", set = { metadata = { { name = "n" } } }, field = "pool.metadata[1].value",
    msg = "required field missing" },

  -- mountConfiguration
  { "mounts: one of each", set = { mountConfiguration = {
      { azureBlobFileSystemConfiguration = { accountName = "a", containerName = "c", relativeMountPath = "m",
        identityReference = { resourceId = IDENTITY }, blobfuseOptions = "-o ro" } },
      { nfsMountConfiguration = { source = "nfs://h/x", relativeMountPath = "n", mountOptions = "ro" } },
      { cifsMountConfiguration = { username = "u", password = "p", source = "//h/s", relativeMountPath = "c" } },
      { azureFileShareConfiguration = { accountName = "a", accountKey = "k",
        azureFileUrl = "https://a.file.core.windows.net/s", relativeMountPath = "f" } } } } },
  { "mounts: none set", set = { mountConfiguration = { {} } }, field = "pool.mountConfiguration[1]",
    msg = "one of azureBlobFileSystemConfiguration, nfsMountConfiguration, cifsMountConfiguration, "
      .. "azureFileShareConfiguration is required" },
  { "mounts: two set", set = { mountConfiguration = { {
      nfsMountConfiguration = { source = "s", relativeMountPath = "r" },
      cifsMountConfiguration = { username = "u", password = "p", source = "s", relativeMountPath = "r" } } } },
    field = "pool.mountConfiguration[1]", msg = "azureBlobFileSystemConfiguration, nfsMountConfiguration, "
      .. "cifsMountConfiguration, azureFileShareConfiguration are mutually exclusive: set exactly one" },
  { "blobfuse: two credentials", set = { mountConfiguration = { { azureBlobFileSystemConfiguration = {
      accountName = "a", containerName = "c", relativeMountPath = "m", accountKey = "k", sasKey = "s" } } } },
    field = "pool.mountConfiguration[1].azureBlobFileSystemConfiguration",
    msg = "accountKey, sasKey, identityReference are mutually exclusive: set exactly one" },
  { "blobfuse: no credential", set = { mountConfiguration = { { azureBlobFileSystemConfiguration = {
      accountName = "a", containerName = "c", relativeMountPath = "m" } } } },
    field = "pool.mountConfiguration[1].azureBlobFileSystemConfiguration",
    msg = "one of accountKey, sasKey, identityReference is required" },
  { "blobfuse: containerName missing", set = { mountConfiguration = { { azureBlobFileSystemConfiguration = {
      accountName = "a", relativeMountPath = "m", sasKey = "s" } } } },
    field = "pool.mountConfiguration[1].azureBlobFileSystemConfiguration.containerName",
    msg = "required field missing" },
  { "file share: accountName missing", set = { mountConfiguration = {
      { nfsMountConfiguration = { source = "s", relativeMountPath = "r" } },
      { azureFileShareConfiguration = { accountKey = "k", azureFileUrl = "https://a.file.core.windows.net/s",
        relativeMountPath = "f" } } } },
    field = "pool.mountConfiguration[2].azureFileShareConfiguration.accountName", msg = "required field missing" },
  { "file share: http URL", set = { mountConfiguration = { { azureFileShareConfiguration = { accountName = "a",
      accountKey = "k", azureFileUrl = "http://a.file.core.windows.net/s", relativeMountPath = "f" } } } },
    field = "pool.mountConfiguration[1].azureFileShareConfiguration.azureFileUrl",
    msg = "expected https://{account}.file.core.windows.net/..., got 'http://a.file.core.windows.net/s'" },
  { "cifs: password missing", set = { mountConfiguration = { { cifsMountConfiguration = { username = "u",
      source = "s", relativeMountPath = "r" } } } },
    field = "pool.mountConfiguration[1].cifsMountConfiguration.password", msg = "required field missing" },
  { "nfs: source missing", set = { mountConfiguration = { { nfsMountConfiguration = { relativeMountPath = "r" } } } },
    field = "pool.mountConfiguration[1].nfsMountConfiguration.source", msg = "required field missing" },

  -- upgradePolicy
  { "upgradePolicy: rolling", set = { upgradePolicy = { mode = "Rolling", automaticOSUpgradePolicy = {
      disableAutomaticRollback = true, enableAutomaticOSUpgrade = true, useRollingUpgradePolicy = true,
      osRollingUpgradeDeferral = true }, rollingUpgradePolicy = { maxBatchInstancePercent = 20,
      maxUnhealthyInstancePercent = 20, maxUnhealthyUpgradedInstancePercent = 0,
      pauseTimeBetweenBatches = "PT0S", prioritizeUnhealthyInstances = true,
      rollbackFailedInstancesOnPolicyBreach = false } } },
    expect = { ["upgradePolicy.mode"] = "rolling" } },
  { "upgradePolicy: mode missing", set = { upgradePolicy = {} }, field = "pool.upgradePolicy.mode",
    msg = "required field missing" },
  { "upgradePolicy: mode unknown", set = { ["upgradePolicy.mode"] = "never" }, field = "pool.upgradePolicy.mode",
    msg = "must be one of 'automatic', 'manual', 'rolling'" },
  { "rolling: maxBatchInstancePercent 4", set = { upgradePolicy = { mode = "rolling",
      rollingUpgradePolicy = { maxBatchInstancePercent = 4 } } },
    field = "pool.upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent", msg = "must be an integer in [5, 100]" },
  { "rolling: maxUnhealthyUpgradedInstancePercent 101", set = { upgradePolicy = { mode = "rolling",
      rollingUpgradePolicy = { maxUnhealthyUpgradedInstancePercent = 101 } } },
    field = "pool.upgradePolicy.rollingUpgradePolicy.maxUnhealthyUpgradedInstancePercent",
    msg = "must be an integer in [0, 100]" },
  { "rolling: batch above unhealthy", set = { upgradePolicy = { mode = "rolling",
      rollingUpgradePolicy = { maxBatchInstancePercent = 30, maxUnhealthyInstancePercent = 20 } } },
    field = "pool.upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent",
    msg = "must not be more than maxUnhealthyInstancePercent (20)" },
  { "rolling: pauseTimeBetweenBatches", set = { upgradePolicy = { mode = "rolling",
      rollingUpgradePolicy = { pauseTimeBetweenBatches = "5m" } } },
    field = "pool.upgradePolicy.rollingUpgradePolicy.pauseTimeBetweenBatches",
    msg = "expected ISO-8601 duration such as 'PT15M', got '5m'" },
  { "rolling: cross-zone needs zonal placement", set = { upgradePolicy = { mode = "rolling",
      rollingUpgradePolicy = { enableCrossZoneUpgrade = true } } },
    field = "pool.upgradePolicy.rollingUpgradePolicy.enableCrossZoneUpgrade",
    msg = "can be set only when virtualMachineConfiguration.nodePlacementConfiguration.policy is 'zonal'" },
  { "rolling: cross-zone with zonal placement", set = { upgradePolicy = { mode = "rolling",
      rollingUpgradePolicy = { enableCrossZoneUpgrade = false } },
      [VM .. ".nodePlacementConfiguration.policy"] = "zonal" } },
  { "automatic OS upgrade with Windows updates", base = "windows", set = {
      upgradePolicy = { mode = "automatic", automaticOSUpgradePolicy = { enableAutomaticOSUpgrade = true } },
      [VM .. ".windowsConfiguration.enableAutomaticUpdates"] = true },
    field = vmp .. ".windowsConfiguration.enableAutomaticUpdates",
    msg = "cannot be true when upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade is true" },

  -- the other bodies
  { "update: empty body", kind = "pool.update" },
  { "update: a PATCH body", kind = "pool.update", set = { startTask = { waitForSuccess = false },
      virtualMachineConfiguration = { nodeAgentSKUId = "batch.node.ubuntu 24.04" },
      containerConfiguration = DEL, upgradePolicy = { automaticOSUpgradePolicy = {} },
      taskSchedulingPolicy = { jobDefaultOrder = "none" },
      networkConfiguration = { endpointConfiguration = {} }, metadata = {} } },
  { "update: no id", kind = "pool.update", set = { id = "p" }, field = "pool.id", msg = "unknown field" },
  { "update: vmSize empty", kind = "pool.update", set = { vmSize = "" }, field = "pool.vmSize",
    msg = "must not be empty" },
  { "update: 11 packages", kind = "pool.update",
    set = { applicationPackageReferences = list(11, { applicationId = "a" }) },
    field = "pool.applicationPackageReferences", msg = "at most 10 items, got 11" },
  { "update: Linux agent with windowsConfiguration", kind = "pool.update", set = {
      virtualMachineConfiguration = { nodeAgentSKUId = "batch.node.ubuntu 24.04", windowsConfiguration = {} } },
    field = "pool.virtualMachineConfiguration.windowsConfiguration",
    msg = "must not be set for a Linux node agent ('batch.node.ubuntu 24.04')" },
  { "replace: empty arrays", kind = "pool.replace" },
  { "replace: applicationPackageReferences required", kind = "pool.replace",
    set = { applicationPackageReferences = DEL }, field = "pool.applicationPackageReferences",
    msg = "required field missing" },
  { "replace: metadata required", kind = "pool.replace", set = { metadata = DEL }, field = "pool.metadata",
    msg = "required field missing" },
  { "replace: startTask needs commandLine", kind = "pool.replace", set = { startTask = {} },
    field = "pool.startTask.commandLine", msg = "required field missing" },
  { "resize: valid", kind = "pool.resize", set = { targetLowPriorityNodes = 0, resizeTimeout = "PT10M",
      nodeDeallocationOption = "TaskCompletion" },
    expect = { nodeDeallocationOption = "taskcompletion" } },
  { "resize: negative", kind = "pool.resize", set = { targetDedicatedNodes = -1 },
    field = "resize.targetDedicatedNodes", msg = INT32 },
  { "resize: timeout below PT5M", kind = "pool.resize", set = { resizeTimeout = "PT1M" },
    field = "resize.resizeTimeout", msg = "must be at least PT5M, got 'PT1M'" },
  { "resize: nodeDeallocationOption unknown", kind = "pool.resize", set = { nodeDeallocationOption = "kill" },
    field = "resize.nodeDeallocationOption", msg = "must be one of 'requeue', 'terminate', 'taskcompletion', "
      .. "'retaineddata'" },
  { "enableautoscale: valid", kind = "pool.enableautoscale", set = { autoScaleEvaluationInterval = "PT8M" } },
  { "enableautoscale: interval above 168h", kind = "pool.enableautoscale",
    set = { autoScaleEvaluationInterval = "P8D" }, field = "autoScale.autoScaleEvaluationInterval",
    msg = "must be at most P7D, got 'P8D'" },
  { "enableautoscale: formula a number", kind = "pool.enableautoscale", set = { autoScaleFormula = 1 },
    field = "autoScale.autoScaleFormula", msg = "expected string, got number" },
  { "evaluateautoscale: formula required", kind = "pool.evaluateautoscale", set = { autoScaleFormula = DEL },
    field = "autoScale.autoScaleFormula", msg = "required field missing" },
  { "evaluateautoscale: no interval here", kind = "pool.evaluateautoscale",
    set = { autoScaleEvaluationInterval = "PT5M" }, field = "autoScale.autoScaleEvaluationInterval",
    msg = "unknown field" },
  { "removenodes: 100 nodes", kind = "pool.removenodes", set = { nodeList = list(100, "tvm"),
      resizeTimeout = "PT5M", nodeDeallocationOption = "requeue" } },
  { "removenodes: nodeList required", kind = "pool.removenodes", set = { nodeList = DEL },
    field = "removeNodes.nodeList", msg = "required field missing" },
  { "removenodes: empty nodeList", kind = "pool.removenodes", set = { nodeList = {} },
    field = "removeNodes.nodeList", msg = "at least 1 item" },
  { "removenodes: 101 nodes", kind = "pool.removenodes", set = { nodeList = list(101, "tvm") },
    field = "removeNodes.nodeList", msg = "at most 100 items, got 101" },
  { "removenodes: empty node id", kind = "pool.removenodes", set = { nodeList = { "a", "" } },
    field = "removeNodes.nodeList[2]", msg = "must not be empty" },
  { "removenodes: resizeTimeout below PT5M", kind = "pool.removenodes", set = { resizeTimeout = "PT299S" },
    field = "removeNodes.resizeTimeout", msg = "must be at least PT5M, got 'PT299S'" },
  { "vm configuration kind", kind = "virtualMachineConfiguration", set = { windowsConfiguration = {} },
    field = "virtualMachineConfiguration.windowsConfiguration",
    msg = "must not be set for a Linux node agent ('batch.node.ubuntu 24.04')" },
}

describe("schema: field rules", function()
  for _, row in ipairs(rows) do
    it(row[1], function() check(row) end)
  end
end)

describe("schema: several problems", function()
  it("reports the first, counts all, keeps up to 20", function()
    local r, msg, err = core.pool_spec({})
    assert.is_nil(r)
    assert.equal("pool.id: required field missing (and 3 more)", msg)
    assert.same({ kind = "validation", field = "pool.id", count = 4, errors = {
      { field = "pool.id", message = "required field missing" },
      { field = "pool.vmSize", message = "required field missing" },
      { field = "pool.virtualMachineConfiguration", message = "required field missing" },
      { field = "pool.targetDedicatedNodes",
        message = "required unless targetLowPriorityNodes is set or enableAutoScale is true" },
    } }, err)
  end)

  it("stops keeping problems after 20 but counts them", function()
    local t = linux_pool()
    t.metadata = list(30, function() return { name = 1, value = 2 } end)
    local r, msg, err = core.pool_spec(t)
    assert.is_nil(r)
    assert.equal(60, err.count)
    assert.equal(20, #err.errors)
    assert.equal("pool.metadata[1].name: expected string, got number (and 59 more)", msg)
  end)

  it("keeps going past a bad field to the next", function()
    local t = linux_pool()
    t.vmSize = 1
    t.taskSlotsPerNode = 0
    local _, _, err = core.pool_spec(t)
    assert.equal(2, err.count)
    assert.equal("pool.taskSlotsPerNode", err.errors[2].field)
  end)

  local function fields(err)
    local t = {}
    for i, e in ipairs(err.errors) do t[i] = e.field end
    return t
  end

  it("missing fields come first, then the rest, each in contract order", function()
    local t = linux_pool()
    t.taskSlotsPerNode = 0                                   -- invalid, late in the contract
    t.id = "bad id"                                          -- invalid, first in the contract
    t.startTask = { maxTaskRetryCount = -2 }                 -- invalid and a missing commandLine
    t.vmSize = nil                                           -- missing
    t.metadata = { { name = "k" } }                          -- a missing value
    local _, msg, err = core.pool_spec(t)
    assert.same({ "pool.vmSize", "pool.startTask.commandLine", "pool.metadata[1].value",
                  "pool.id", "pool.startTask.maxTaskRetryCount", "pool.taskSlotsPerNode" }, fields(err))
    assert.equal("pool.vmSize: required field missing (and 5 more)", msg)
    assert.equal("pool.vmSize", err.field)
    assert.equal(6, err.count)
  end)

  it("a missing field found after 20 other problems still makes the list, first", function()
    local t = linux_pool()
    t.metadata = list(30, function() return { name = 1, value = "v" } end)
    t.mountConfiguration = { { nfsMountConfiguration = { source = "s" } } }
    local _, msg, err = core.pool_spec(t)
    assert.equal(31, err.count)
    assert.equal(20, #err.errors)
    assert.equal("pool.mountConfiguration[1].nfsMountConfiguration.relativeMountPath: required field missing "
      .. "(and 30 more)", msg)
    assert.equal("pool.metadata[1].name", err.errors[2].field)
    assert.equal("pool.metadata[19].name", err.errors[20].field)
  end)

  it("the order does not depend on how the table was built", function()
    local a, b = linux_pool(), linux_pool()
    a.zeta, a.alpha, a.vmSize, a.id = 1, 2, 3, 4
    b.id, b.vmSize, b.alpha, b.zeta = 4, 3, 2, 1
    local _, _, ea = core.pool_spec(a)
    local _, _, eb = core.pool_spec(b)
    assert.same({ "pool.alpha", "pool.zeta", "pool.id", "pool.vmSize" }, fields(ea))
    assert.same(ea, eb)
  end)
end)

describe("schema: results", function()
  it("pool_spec returns a PoolSpec and a warnings array", function()
    local spec, warnings = core.pool_spec(linux_pool())
    assert.equal("azbatch.PoolSpec", getmetatable(spec).__name)
    assert.equal("azbatch.PoolSpec(p1)", tostring(spec))
    assert.same({}, warnings)
    assert.equal("integer", math.type(spec.targetDedicatedNodes))
  end)

  it("the copy holds only known fields and is not the input", function()
    local t = linux_pool()
    local spec = core.pool_spec(t)
    assert.not_equal(t, spec)
    assert.not_equal(t.virtualMachineConfiguration, spec.virtualMachineConfiguration)
    t.vmSize = "changed"
    assert.equal("Standard_D2s_v3", spec.vmSize)
  end)

  it("vm_configuration returns a VmConfiguration with :json()", function()
    local vm = core.vm_configuration { imageReference = IMG, nodeAgentSKUId = "batch.node.ubuntu 22.04" }
    assert.equal("azbatch.VmConfiguration", getmetatable(vm).__name)
    assert.equal("azbatch.VmConfiguration(batch.node.ubuntu 22.04)", tostring(vm))
    assert.equal('{"imageReference":{"virtualMachineImageId":"' .. IMG
      .. '"},"nodeAgentSKUId":"batch.node.ubuntu 22.04"}', vm:json())
  end)

  it("a VmConfiguration goes inside a pool", function()
    local vm = assert(core.vm_configuration { imageReference = IMG, nodeAgentSKUId = "batch.node.ubuntu 22.04" })
    local spec = assert(core.pool_spec { id = "p", vmSize = "s", targetDedicatedNodes = 1,
                                         virtualMachineConfiguration = vm })
    assert.equal(IMG, spec.virtualMachineConfiguration.imageReference.virtualMachineImageId)
  end)

  it("vm_configuration fails with its own root", function()
    local r, msg, err = core.vm_configuration { nodeAgentSKUId = "batch.node.ubuntu 22.04" }
    assert.is_nil(r)
    assert.equal("virtualMachineConfiguration.imageReference: required field missing", msg)
    assert.equal("virtualMachineConfiguration.imageReference", err.field)
  end)

  it("validate tags each kind so json_encode shapes it", function()
    for kind, body in pairs {
      ["pool.update"] = { vmSize = "s", metadata = {} },
      ["pool.replace"] = { metadata = {}, applicationPackageReferences = {} },
      ["pool.resize"] = { targetDedicatedNodes = 1.0 },
      ["pool.enableautoscale"] = { autoScaleFormula = "f" },
      ["pool.evaluateautoscale"] = { autoScaleFormula = "f" },
      ["pool.removenodes"] = { nodeList = { "n" } },
    } do
      local r, w = core.validate(kind, body)
      assert.is_table(r, kind)
      assert.same({}, w)
      assert.equal(kind, getmetatable(r).__kind)
      assert.equal(getmetatable(r).__name, tostring(r))
      assert.equal(r:json(), core.json_encode(r))
    end
    local r = core.validate("pool.replace", { metadata = {}, applicationPackageReferences = {},
                                              startTask = { commandLine = "c" } })
    assert.equal('{"startTask":{"commandLine":"c"},"applicationPackageReferences":[],"metadata":[]}', r:json())
    assert.equal('{"targetDedicatedNodes":1}', core.validate("pool.resize", { targetDedicatedNodes = 1.0 }):json())
    assert.equal('{}', core.validate("pool.update", {}):json())
  end)

  it("the REST examples of the other bodies validate and round-trip", function()
    for _, case in ipairs {
      { "pool.update", '{"startTask":{"commandLine":"/bin/bash -c \'echo start task\'"}}' },
      { "pool.replace", '{"startTask":{"commandLine":"/bin/bash -c \'echo start task\'"},'
        .. '"applicationPackageReferences":[],"metadata":[]}' },
      { "pool.removenodes", '{"nodeList":["tvm-1695681911_1-20161122t224741z","tvm-1695681911_2-20161122t224741z"]}' },
      { "pool.resize", '{"targetDedicatedNodes":1,"targetLowPriorityNodes":0}' },
      { "pool.enableautoscale", '{"autoScaleFormula":"$TargetDedicated=0","autoScaleEvaluationInterval":"PT8M"}' },
      { "pool.evaluateautoscale", '{"autoScaleFormula":"$TargetDedicated=1"}' },
    } do
      local r = assert(core.validate(case[1], decode(case[2])))
      assert.equal(case[2], r:json(), case[1])
    end
  end)
end)

-- Objects that were checked stay checked: every encode validates the
-- object as it is now, so a change made after validation never reaches
-- the wire. Each row mutates a valid spec and names the field that fails.
describe("schema: a checked spec stays checked", function()
  local function fresh()
    local image = assert(core.image_reference(IMG))
    local vm = assert(core.vm_configuration { imageReference = image, nodeAgentSKUId = "batch.node.ubuntu 22.04" })
    local spec = assert(core.pool_spec { id = "p1", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 2,
      virtualMachineConfiguration = vm, metadata = { { name = "k", value = "v" } } })
    return spec, vm, image
  end
  local vmp_img = vmp .. ".imageReference"
  local RANGE = "must be an integer in [0, 2147483647]"

  -- name, mutation, field, message of the first problem
  local mutations = {
    { "a value out of range", function(s) s.targetDedicatedNodes = -3 end, "pool.targetDedicatedNodes", RANGE },
    { "rawset of a wrong type", function(s) rawset(s, "vmSize", 5) end, "pool.vmSize",
      "expected string, got number" },
    { "a function", function(s) s.displayName = print end, "pool.displayName", "expected string, got function" },
    { "NaN", function(s) s.targetDedicatedNodes = 0 / 0 end, "pool.targetDedicatedNodes",
      "expected integer, got number" },
    { "a huge float", function(s) s.targetDedicatedNodes = 1e300 end, "pool.targetDedicatedNodes", RANGE },
    { "a removed required field", function(s) s.id = nil end, "pool.id", "required field missing" },
    { "JSON null for a required field", function(s) s.vmSize = core.null end, "pool.vmSize",
      "required field missing" },
    { "invalid UTF-8", function(s) s.id = "caf\xe9" end, "pool.id", "not valid UTF-8" },
    { "an unknown key", function(s) s.vmsize = "x" end, "pool.vmsize", "unknown field (did you mean 'vmSize'?)" },
    { "an unknown key with rawset", function(s) rawset(s, "resourceTags", {}) end, "pool.resourceTags",
      "unknown field" },
    { "an integer key", function(s) s[1] = "x" end, "pool[1]", "unexpected number key (field names are strings)" },
    { "a rule broken by two valid changes", function(s) s.enableAutoScale = true end, "pool.autoScaleFormula",
      "required when enableAutoScale is true (and 1 more)" },
    { "a nested table replaced by a string", function(s) s.virtualMachineConfiguration = "x" end, vmp,
      "expected table, got string" },
    { "a nested table replaced by an empty one", function(s) s.virtualMachineConfiguration = {} end,
      vmp_img, "required field missing (and 1 more)" },
    { "a nested field removed", function(s) s.virtualMachineConfiguration.nodeAgentSKUId = nil end,
      vmp .. ".nodeAgentSKUId", "required field missing" },
    { "a nested unknown key", function(s) s.virtualMachineConfiguration.osdisk = {} end, vmp .. ".osdisk",
      "unknown field (did you mean 'osDisk'?)" },
    { "an array element of the wrong type", function(s) s.virtualMachineConfiguration.dataDisks = { 5 } end,
      vmp .. ".dataDisks[1]", "expected table, got number" },
    { "an array element changed", function(s) s.metadata[1].value = nil end, "pool.metadata[1].value",
      "required field missing" },
    { "an array made sparse", function(s) s.metadata[3] = { name = "a", value = "b" } end, "pool.metadata",
      "expected array, got table with key 3" },
    { "invalid UTF-8 in a map", function(s)
        s.virtualMachineConfiguration.extensions = { { name = "e", publisher = "p", type = "t",
          settings = { k = "\xff" } } } end, vmp .. ".extensions[1].settings.k", "not valid UTF-8" },
    { "the image reference edited in place", function(s)
        s.virtualMachineConfiguration.imageReference.virtualMachineImageId = "/nope" end,
      vmp_img .. ".virtualMachineImageId", nil },
    { "the image reference given an unknown key", function(s)
        rawset(s.virtualMachineConfiguration.imageReference, "bogus", 1) end, vmp_img .. ".bogus", "unknown field" },
    { "the image reference given a second name", function(s)
        s.virtualMachineConfiguration.imageReference.publisher = "Canonical" end, vmp_img .. ".publisher",
      "cannot be combined with virtualMachineImageId; name the image one way only" },
    { "the image reference's own object changed", function(_, _, image) image.virtualMachineImageId = 5 end,
      vmp_img .. ".virtualMachineImageId", "expected string, got number" },
    { "a cycle", function(s) s.startTask = s end, "pool.startTask", "cycle: the same table as pool" },
    { "a deeper self-reference", function(s)
        s.virtualMachineConfiguration.osDisk = s.virtualMachineConfiguration end, vmp .. ".osDisk",
      "cycle: the same table as " .. vmp },
    { "an array that contains itself (a checked array is no object)", function(s) s.metadata[2] = s.metadata end,
      "pool.metadata[2]", "expected table, got array" },
    { "an object of the array that contains the array", function(s) s.metadata[1].name = s.metadata end,
      "pool.metadata[1].name", "expected string, got array" },
    { "the kind in the metatable changed", function(s)
        getmetatable(s).__kind = "pool.update"   -- not how a spec is recognised
        s.vmSize = nil
      end, "pool.vmSize", "required field missing" },
  }

  for _, row in ipairs(mutations) do
    it(row[1] .. ": every encode fails at " .. row[3], function()
      local spec, vm, image = fresh()
      assert.is_string(spec:json())
      local ok, err = pcall(row[2], spec, vm, image)
      getmetatable(spec).__kind = "pool"
      assert.is_true(ok, err)
      for _, encode in ipairs {
        function() return spec:json() end,
        function() return core.json_encode(spec) end,
        function() return core.json_encode(spec, "pool") end,
        function() return require("azbatch.json").encode(spec) end,
      } do
        local text, msg, e = encode()
        assert.is_nil(text)
        assert.equal("validation", e.kind)
        assert.equal(row[3], e.field)
        if row[4] then assert.equal(row[3] .. ": " .. row[4], msg) end
      end
      -- nested in a plain value, the same problem at the same place under "value"
      local _, _, e = core.json_encode { spec }
      assert.equal("value[1]" .. row[3]:sub(5), e.field)
    end)
  end

  it("a VmConfiguration and an ImageReference are checked again too", function()
    local _, vm, image = fresh()
    vm.nodeAgentSKUId = 5
    local r, msg, err = vm:json()
    assert.is_nil(r)
    assert.equal("virtualMachineConfiguration.nodeAgentSKUId: expected string, got number", msg)
    assert.equal("virtualMachineConfiguration.nodeAgentSKUId", err.field)
    image.sku = "s"
    r, msg, err = core.json_encode(image)
    assert.is_nil(r)
    assert.equal("imageReference.sku: cannot be combined with virtualMachineImageId; name the image one way only",
      msg)
    assert.equal("imageReference.sku", err.field)
  end)

  it("setmetatable cannot turn a checked object into a plain table", function()
    local spec, vm, image = fresh()
    for _, obj in ipairs { spec, vm, image } do
      local mt = getmetatable(obj)
      assert.is_table(mt)
      assert.error_matches(function() setmetatable(obj, nil) end, "cannot change a protected metatable")
      assert.error_matches(function() setmetatable(obj, {}) end, "cannot change a protected metatable")
      assert.equal(mt, getmetatable(obj))
    end
    assert.is_string(spec:json())
    assert.is_string(core.json_encode(image))
  end)

  it("an unchanged spec encodes the same every time", function()
    local spec = fresh()
    local first = spec:json()
    assert.equal(first, spec:json())
    assert.equal(first, core.json_encode(spec))
    assert.equal(first, core.json_encode(spec, "pool"))
  end)

  it(":json() refuses what is not a body", function()
    local spec = fresh()
    assert.error_matches(function() spec.json({}) end, "bad argument #1 to 'json' %(azbatch.PoolSpec expected")
    assert.error_matches(function() spec.json("x") end, "bad argument #1 to 'json' %(azbatch.PoolSpec expected")
  end)
end)

describe("schema: misuse raises", function()
  it("non-table arguments", function()
    assert.error_matches(function() core.pool_spec(nil) end,
      "bad argument #1 to '[%w%.]*pool_spec' %(table expected, got nil%)")
    assert.error_matches(function() core.pool_spec("x") end,
      "bad argument #1 to '[%w%.]*pool_spec' %(table expected, got string%)")
    assert.error_matches(function() core.vm_configuration() end,
      "bad argument #1 to '[%w%.]*vm_configuration' %(table expected, got no value%)")
    assert.error_matches(function() core.validate("pool", 1) end,
      "bad argument #2 to '[%w%.]*validate' %(table expected, got number%)")
  end)

  it("an unknown kind", function()
    assert.error_matches(function() core.validate("pool.delete", {}) end,
      "bad argument #1 to '[%w%.]*validate' %(unknown kind 'pool.delete'%)")
    assert.error_matches(function() core.validate(nil, {}) end, "bad argument #1")
  end)
end)

describe("schema: warnings", function()
  it("a fixed pool of 2000 VMs with the default resizeTimeout", function()
    local t = gallery_pool()
    t.targetDedicatedNodes = 1500
    t.targetLowPriorityNodes = 500
    local spec, w = core.pool_spec(t)
    assert.is_table(spec)
    assert.same({
      { field = "pool.resizeTimeout", recommended = "PT30M",
        message = "PT15M is below the PT30M recommended for 2000 VMs (15 minutes per 1000 VMs)" },
      { field = "pool.virtualMachineConfiguration.imageReference.virtualMachineImageId",
        recommended = "4 replicas", message = "a pool of 2000 VMs needs at least 4 replicas of the image "
          .. "in the Batch account's region (1 per 600 VMs)" },
    }, w)
  end)

  it("no warning when resizeTimeout is enough", function()
    local t = linux_pool()
    t.targetDedicatedNodes = 2000
    t.resizeTimeout = "PT30M"
    local _, w = core.pool_spec(t)
    assert.same({}, w)
  end)

  it("an explicit short resizeTimeout", function()
    local t = linux_pool()
    t.targetDedicatedNodes = 3000
    t.resizeTimeout = "PT20M"
    local _, w = core.pool_spec(t)
    assert.equal("PT20M is below the PT45M recommended for 3000 VMs (15 minutes per 1000 VMs)", w[1].message)
    assert.equal("PT45M", w[1].recommended)
  end)

  it("600 VMs of a gallery image need no warning; 601 do", function()
    local t = gallery_pool()
    t.targetDedicatedNodes = 600
    local _, w = core.pool_spec(t)
    assert.same({}, w)
    t.targetDedicatedNodes = 601
    _, w = core.pool_spec(t)
    assert.equal("2 replicas", w[1].recommended)
  end)

  it("autoscale pools get no sizing warnings", function()
    local t = gallery_pool()
    t.targetDedicatedNodes = nil
    t.enableAutoScale = true
    t.autoScaleFormula = "$TargetDedicatedNodes=5000"
    local _, w = core.pool_spec(t)
    assert.same({}, w)
  end)

  it("an evaluation interval without autoscale", function()
    local t = linux_pool()
    t.autoScaleEvaluationInterval = "PT10M"
    local _, w = core.pool_spec(t)
    assert.same({ { field = "pool.autoScaleEvaluationInterval",
                    message = "has no effect unless enableAutoScale is true" } }, w)
  end)

  it("resize of 3000 nodes", function()
    local _, w = core.validate("pool.resize", { targetDedicatedNodes = 3000 })
    assert.same({ { field = "resize.resizeTimeout", recommended = "PT45M",
      message = "PT15M is below the PT45M recommended for 3000 VMs (15 minutes per 1000 VMs)" } }, w)
  end)
end)

describe("schema: seed examples", function()
  local function fixture(name)
    local f = assert(io.open("tests/fixtures/" .. name))
    local s = f:read("a")
    f:close()
    return s
  end

  -- az CLI seed, the C# seed, the REST example Pools_CreatePool_VirtualMachineConfiguration
  for _, case in ipairs {
    { "pool_az_cli.body.json", "pool_az_cli.expected.json" },
    { "pool_csharp.body.json", "pool_csharp.expected.json" },
    { "pool_create_vmconfig.json", "pool_create_vmconfig.expected.json" },
  } do
    it(case[1] .. " gives the expected REST JSON", function()
      local body = decode(fixture(case[1]))
      local spec = assert(core.pool_spec(body))
      local json = spec:json()
      assert.equal((fixture(case[2]):gsub("%s+$", "")), json)
      assert.same(decode(fixture(case[1])), decode(json))
      -- and again: a spec validates to itself
      assert.equal(json, assert(core.pool_spec(spec)):json())
    end)
  end

  it("a body using every field of the contract round-trips", function()
    local text = fixture("pool_full.body.json")
    local spec, w = core.pool_spec(decode(text))
    assert.is_table(spec, w)
    local json = spec:json()
    assert.same(decode(text), decode(json))
    -- top-level keys come out in the contract's property order
    local last = 0
    for _, key in ipairs { "id", "displayName", "vmSize", "virtualMachineConfiguration", "resizeTimeout",
        "targetDedicatedNodes", "targetLowPriorityNodes", "enableAutoScale", "enableInterNodeCommunication",
        "networkConfiguration", "startTask", "applicationPackageReferences", "taskSlotsPerNode",
        "taskSchedulingPolicy", "userAccounts", "metadata", "mountConfiguration", "upgradePolicy" } do
      local at = json:find('"' .. key .. '":', 1, true)
      assert.is_true(at ~= nil and at > last, key)
      last = at
    end
  end)

  it("the az CLI example built in Lua", function()
    local spec = assert(core.pool_spec { id = "mypool", vmSize = "Standard_A1_v2", targetDedicatedNodes = 2,
      virtualMachineConfiguration = { imageReference = core.image_reference(
        "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/myrg/providers/"
        .. "Microsoft.Compute/galleries/mygallery/images/mydef/versions/1.0.0"),
        nodeAgentSKUId = "batch.node.ubuntu 16.04" } })
    assert.equal((fixture("pool_az_cli.expected.json"):gsub("%s+$", "")), spec:json())
  end)
end)

describe("schema: secrets are never echoed", function()
  local SECRET = "S3cr3t-\xff-value"
  local function all_text(...)
    local parts = {}
    local function walk(v)
      if type(v) == "table" then for k, x in pairs(v) do walk(k); walk(x) end
      else parts[#parts + 1] = tostring(v) end
    end
    walk({ ... })
    return table.concat(parts, "\n")
  end

  for _, case in ipairs {
    { "userAccounts.password", { userAccounts = { { name = "u", password = SECRET } } } },
    { "sshPrivateKey", { userAccounts = { { name = "u", password = "p",
        linuxUserConfiguration = { sshPrivateKey = SECRET } } } } },
    { "accountKey", { mountConfiguration = { { azureFileShareConfiguration = { accountName = "a",
        accountKey = SECRET, azureFileUrl = "https://a.file.core.windows.net/", relativeMountPath = "m" } } } } },
    { "sasKey", { mountConfiguration = { { azureBlobFileSystemConfiguration = { accountName = "a",
        containerName = "c", relativeMountPath = "m", sasKey = SECRET, accountKey = SECRET } } } } },
    { "cifs password", { mountConfiguration = { { cifsMountConfiguration = { username = "u", source = "s",
        relativeMountPath = "m", password = SECRET } } } } },
    { "registry password", { virtualMachineConfiguration = { imageReference = IMG, nodeAgentSKUId = "x y",
        containerConfiguration = { type = "x", containerRegistries = { { password = SECRET } } } } } },
    { "protectedSettings", { virtualMachineConfiguration = { imageReference = IMG,
        nodeAgentSKUId = "batch.node.ubuntu 22.04", extensions = { { name = "e", publisher = "p", type = "t",
        protectedSettings = { key = SECRET, [SECRET] = SECRET } } } } } },
    { "httpUrl with a SAS", { startTask = { commandLine = "c", resourceFiles = {
        { httpUrl = "https://x/y?sig=" .. SECRET, storageContainerUrl = "https://x?sig=" .. SECRET } } } } },
  } do
    it(case[1], function()
      local body = linux_pool()
      for k, v in pairs(case[2]) do body[k] = v end
      local r, msg, err = core.pool_spec(body)
      assert.is_nil(r)
      local text = all_text(msg, err)
      assert.is_nil(text:find("S3cr3t", 1, true), text)
    end)
  end

  it("a valid secret stays out of warnings and tostring", function()
    local body = linux_pool()
    body.targetDedicatedNodes = 5000
    body.userAccounts = { { name = "u", password = "S3cr3t" } }
    local spec, w = core.pool_spec(body)
    assert.is_nil(all_text(tostring(spec), w):find("S3cr3t", 1, true))
  end)
end)

describe("schema: robustness", function()
  it("a cycle through a known field", function()
    local t = linux_pool()
    t.startTask = t
    local r, msg, err = core.pool_spec(t)
    assert.is_nil(r)
    assert.equal("pool.startTask: cycle: the same table as pool", msg)
    assert.equal("pool.startTask", err.field)
    t = linux_pool()
    t.metadata = {}
    t.metadata[1] = t.metadata
    r, msg = core.pool_spec(t)
    assert.is_nil(r)
    assert.equal("pool.metadata[1]: cycle: the same table as pool.metadata", msg)
    t = linux_pool()
    t.virtualMachineConfiguration.extensions = { { name = "e", publisher = "p", type = "t" } }
    t.virtualMachineConfiguration.extensions[1].settings = t.virtualMachineConfiguration
    r, msg = core.pool_spec(t)
    assert.is_nil(r)
    assert.equal(vmp .. ".extensions[1].settings: cycle: the same table as " .. vmp, msg)
  end)

  it("a cycle through an array of strings", function()
    local t = linux_pool()
    local ext = { { name = "e", publisher = "p", type = "t" } }
    ext[1].provisionAfterExtensions = ext
    t.virtualMachineConfiguration.extensions = ext
    local r, msg = core.pool_spec(t)
    assert.is_nil(r)
    assert.equal(vmp .. ".extensions[1].provisionAfterExtensions: cycle: the same table as " .. vmp
      .. ".extensions", msg)
  end)

  it("unknown keys of every type, in a fixed order: names, then integers, then the rest", function()
    local t = linux_pool()
    t[2], t[1], t.b, t.a, t[1.5], t[{}], t[true] = 1, 1, 1, 1, 1, 1, 1
    local _, _, err = core.pool_spec(t)
    local got = {}
    for i, e in ipairs(err.errors) do got[i] = e.field .. ": " .. e.message end
    assert.same({ "pool.a: unknown field", "pool.b: unknown field",
      "pool[1]: unexpected number key (field names are strings)",
      "pool[2]: unexpected number key (field names are strings)",
      "pool: unexpected boolean key (field names are strings)",
      "pool: unexpected number key (field names are strings)",
      "pool: unexpected table key (field names are strings)" }, got)
  end)

  it("a table used twice, not in a cycle, is fine", function()
    local t = linux_pool()
    local item = { name = "k", value = "v" }
    t.metadata = { item, item }
    assert.is_table(core.pool_spec(t))
  end)

  it("deep nesting in a free-form map", function()
    local deep = {}
    local cur = deep
    for _ = 1, 200 do cur.x = {}; cur = cur.x end
    local t = linux_pool()
    t.virtualMachineConfiguration.extensions = { { name = "e", publisher = "p", type = "t", settings = deep } }
    local r, msg = core.pool_spec(t)
    assert.is_nil(r)
    assert.equal(vmp .. ".extensions[1].settings.x: expected string, got table", msg)
  end)

  it("huge arrays", function()
    local r, msg = core.validate("pool.removenodes", { nodeList = list(100000, "n") })
    assert.is_nil(r)
    assert.equal("removeNodes.nodeList: at most 100 items, got 100000", msg)
    local t = linux_pool()
    t.metadata = list(20000, function(i) return { name = "k" .. i, value = "v" } end)
    local spec = assert(core.pool_spec(t))
    assert.equal(20000, #spec.metadata)
    t.virtualMachineConfiguration.dataDisks = list(5000, function(i) return { lun = i % 64, diskSizeGB = 1 } end)
    local _, _, err = core.pool_spec(t)
    assert.equal(5000 - 64, err.count)
  end)

  it("non-string keys", function()
    local t = linux_pool()
    t[true] = 1
    local r, msg = core.pool_spec(t)
    assert.is_nil(r)
    assert.equal("pool: unexpected boolean key (field names are strings)", msg)
    t = linux_pool()
    t.startTask = { commandLine = "c", [1.5] = 2 }
    assert.equal("pool.startTask: unexpected number key (field names are strings)", select(2, core.pool_spec(t)))
    t.startTask = { commandLine = "c", [3] = 2 }
    assert.equal("pool.startTask[3]: unexpected number key (field names are strings)", select(2, core.pool_spec(t)))
  end)

  it("wrong types everywhere", function()
    local values = { function() end, true, 1.5, "s", {}, io.stdout, coroutine.create(print), core.null }
    for _, field in ipairs { "id", "displayName", "vmSize", "virtualMachineConfiguration", "resizeTimeout",
        "targetDedicatedNodes", "targetLowPriorityNodes", "enableAutoScale", "autoScaleFormula",
        "autoScaleEvaluationInterval", "enableInterNodeCommunication", "networkConfiguration", "startTask",
        "applicationPackageReferences", "taskSlotsPerNode", "taskSchedulingPolicy", "userAccounts", "metadata",
        "mountConfiguration", "upgradePolicy" } do
      for _, value in ipairs(values) do
        local t = linux_pool()
        t[field] = value
        local ok, r, msg, err = pcall(core.pool_spec, t)
        assert.is_true(ok, r)
        if r == nil then
          assert.is_string(msg)
          assert.equal("validation", err.kind)
        end
      end
    end
  end)

  -- inputs the fuzzer (tests/fuzz/fuzz_validate.c) found or that guard its paths
  local FUZZ_ROWS = {
    '{"id":"p","vmSize":"s","targetDedicatedNodes":1,"virtualMachineConfiguration":{"imageReference":"a:b:c",'
      .. '"nodeAgentSKUId":"batch.node.ubuntu 22.04","dataDisks":[{"lun":1e300,"diskSizeGB":-1e300}]}}',
    '{"nodeList":[null,null],"resizeTimeout":"P9999999999999999999D"}',
    -- crash-f5517554: validated, then failed to encode (invalid UTF-8 in the image offer)
    '{"id":"a","vmSize":"s","enableAutoScale":true,"autoScaleFormula":"$TargetDedicatedNodes=1",'
      .. '"autoScaleEvaluationInterval":"PT5M","virtualMachineConfiguration":{"imageReference":{'
      .. '"publisher":"Canonical","offer":"ubuntu\xc9\xcb\xa0\x8c\xd2\x8cts","sku":"server","version":"latest"},'
      .. '"nodeAgentSKUId":"batch.node.ubuntu 24.04"}}',
  }

  it("fuzz finding: an image field in invalid UTF-8 fails validation, not encoding", function()
    local t = linux_pool()
    t.virtualMachineConfiguration.imageReference.offer = "ubuntu\xc9\xff-lts"
    local r, msg, err = core.pool_spec(t)
    assert.is_nil(r)
    assert.is_string(msg)
    assert.equal("validation", err.kind)
    local found = false
    for _, e in ipairs(err.errors) do
      found = found or (e.field == vmp .. ".imageReference.offer" and e.message == "not valid UTF-8")
    end
    assert.is_true(found, msg)
  end)

  it("fuzz regression rows", function()
    for _, json in ipairs(FUZZ_ROWS) do
      -- the decoder refuses the invalid UTF-8 that lua-cjson let through
      local t, why = decode(json)
      if t == nil then assert.matches("^json: invalid UTF%-8 at byte %d+$", why) end
      if t ~= nil then
        for _, kind in ipairs { "pool", "virtualMachineConfiguration", "pool.update", "pool.replace",
            "pool.resize", "pool.enableautoscale", "pool.evaluateautoscale", "pool.removenodes" } do
          local r = core.validate(kind, t)
          if r then assert.is_string(core.json_encode(r)) end
        end
      end
    end
  end)
end)
