-- az's flags, each to the REST field it sets (checked on the body pool
-- create --dry-run would send); --json-file in both shapes; the flags the
-- 2025-06-01 API has no field for.
local azbatch = require "azbatch"
local body = require "azbatch.cli_body"
local helper = test_helper

local run = helper.cli_main

local BASE = { "pool", "create", "--id", "p", "--vm-size", "Standard_D2s_v3",
  "--image", "Canonical:0001-com-ubuntu-server-jammy:22_04-lts", "--node-agent-sku-id", "batch.node.ubuntu 22.04",
  "--dry-run" }

-- The body a dry run prints for BASE plus these flags (and a target unless autoscale).
local function dry(extra, autoscale)
  local argv = table.move(BASE, 1, #BASE, 1, {})
  if not autoscale then
    argv[#argv + 1] = "--target-dedicated-nodes"
    argv[#argv + 1] = "1"
  end
  table.move(extra, 1, #extra, #argv + 1, argv)
  local status, out, err = run(argv)
  assert.equal(0, status, err)
  return assert(azbatch.json.decode(out))
end

local function at(t, path)
  for part in path:gmatch("[^.]+") do
    if type(t) ~= "table" then return nil end
    t = t[tonumber(part) or part]
  end
  return t
end

local APP = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Batch"
  .. "/batchAccounts/devbatch/applications/"
local SUBNET = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Network"
  .. "/virtualNetworks/vn/subnets/s"
local VMC = "virtualMachineConfiguration."

describe("pool create flags", function()
  local rows = {
    { { "--target-low-priority-nodes", "3" }, "targetLowPriorityNodes", 3 },
    { { "--resize-timeout", "PT20M" }, "resizeTimeout", "PT20M" },
    { { "--display-name", "my pool" }, "displayName", "my pool" },
    { { "--task-slots-per-node", "4" }, "taskSlotsPerNode", 4 },
    { { "--enable-inter-node-communication" }, "enableInterNodeCommunication", true },
    { { "--metadata", "a=b", "c=d=e" }, "metadata", { { name = "a", value = "b" }, { name = "c", value = "d=e" } } },
    { { "--metadata", "a=b", "--metadata", "c=" }, "metadata",
      { { name = "a", value = "b" }, { name = "c", value = "" } } },
    { { "--application-package-references", APP .. "app1", APP .. "app2#1.0" }, "applicationPackageReferences",
      { { applicationId = APP .. "app1" }, { applicationId = APP .. "app2", version = "1.0" } } },
    { { "--start-task-command-line", "/bin/sh -c 'echo hi'" }, "startTask.commandLine", "/bin/sh -c 'echo hi'" },
    { { "--start-task-command-line", "x", "--start-task-wait-for-success" }, "startTask.waitForSuccess", true },
    { { "--start-task-command-line", "x", "--start-task-max-task-retry-count", "2" },
      "startTask.maxTaskRetryCount", 2 },
    { { "--start-task-command-line", "x", "--start-task-environment-settings", "A=1", "B=2" },
      "startTask.environmentSettings", { { name = "A", value = "1" }, { name = "B", value = "2" } } },
    { { "--start-task-command-line", "x", "--start-task-resource-files", "x.sh=https://h/x.sh" },
      "startTask.resourceFiles", { { filePath = "x.sh", httpUrl = "https://h/x.sh" } } },
    { { "--disk-encryption-targets", "OsDisk TemporaryDisk" }, VMC .. "diskEncryptionConfiguration.targets",
      { "osdisk", "temporarydisk" } },
    { { "--targets", "OsDisk", "TemporaryDisk" }, VMC .. "diskEncryptionConfiguration.targets",
      { "osdisk", "temporarydisk" } },
    { { "--policy", "Zonal" }, VMC .. "nodePlacementConfiguration.policy", "zonal" },
    { { "--os-disk-caching", "ReadOnly" }, VMC .. "osDisk.caching", "readonly" },
    { { "--os-disk-size", "64" }, VMC .. "osDisk.diskSizeGB", 64 },
    { { "--storage-account-type", "Premium_LRS" }, VMC .. "osDisk.managedDisk.storageAccountType", "premium_lrs" },
    { { "--enable-write-accel", "false" }, VMC .. "osDisk.writeAcceleratorEnabled", false },
    { { "--placement", "cachedisk" }, VMC .. "osDisk.ephemeralOSDiskSettings.placement", "cachedisk" },
    { { "--encryption-at-host", "true" }, VMC .. "securityProfile.encryptionAtHost", true },
    { { "--security-type", "trustedLaunch", "--enable-secure-boot", "true", "--enable-vtpm", "TRUE" },
      VMC .. "securityProfile", { securityType = "trustedLaunch",
        uefiSettings = { secureBootEnabled = true, vTpmEnabled = true } } },
    { { "--accelerated-networking", "true" }, "networkConfiguration.enableAcceleratedNetworking", true },
    { { "--subnet-id", SUBNET }, "networkConfiguration.subnetId", SUBNET },
    { { "--upgrade-policy-mode", "manual" }, "upgradePolicy.mode", "manual" },
    { { "--upgrade-mode", "automatic", "--enable-auto-os-upgrade", "true", "--disable-auto-rollback", "true",
      "--defer-os-rolling-upgrade", "false", "--use-rolling-upgrade-policy", "true" },
      "upgradePolicy.automaticOSUpgradePolicy", { enableAutomaticOSUpgrade = true, disableAutomaticRollback = true,
        osRollingUpgradeDeferral = false, useRollingUpgradePolicy = true } },
    { { "--upgrade-policy-mode", "rolling", "--policy", "zonal", "--enable-cross-zone-upgrade", "true",
      "--max-batch-instance-percent", "20",
      "--max-unhealthy-instance-percent", "30", "--max-unhealthy-upgraded-instance-percent", "40",
      "--pause-time-between-batches", "PT1M", "--prioritize-unhealthy-instances", "true",
      "--rollback-failed-instances-on-policy-breach", "false" },
      "upgradePolicy.rollingUpgradePolicy", { enableCrossZoneUpgrade = true, maxBatchInstancePercent = 20,
        maxUnhealthyInstancePercent = 30, maxUnhealthyUpgradedInstancePercent = 40, pauseTimeBetweenBatches = "PT1M",
        prioritizeUnhealthyInstances = true, rollbackFailedInstancesOnPolicyBreach = false } },
  }
  for _, row in ipairs(rows) do
    it(table.concat(row[1], " ") .. " sets " .. row[2], function()
      assert.same(row[3], at(dry(row[1]), row[2]))
    end)
  end

  it("--auto-scale-formula turns autoscale on, with its interval", function()
    local b = dry({ "--auto-scale-formula", "$TargetDedicatedNodes=1;", "--auto-scale-evaluation-interval", "PT10M" },
      true)
    assert.is_true(b.enableAutoScale)
    assert.equal("$TargetDedicatedNodes=1;", b.autoScaleFormula)
    assert.equal("PT10M", b.autoScaleEvaluationInterval)
  end)

  it("sets nothing a flag was not given for", function()
    assert.same({ id = "p", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 1, virtualMachineConfiguration = {
      imageReference = { publisher = "Canonical", offer = "0001-com-ubuntu-server-jammy", sku = "22_04-lts",
        version = "latest" }, nodeAgentSKUId = "batch.node.ubuntu 22.04" } }, dry {})
  end)

  local bad_values = {
    { { "--metadata", "novalue" }, "^%-%-metadata expects KEY=VALUE, got \"novalue\"$" },
    { { "--start-task-resource-files", "nourl" }, "^%-%-start%-task%-resource%-files expects FILE=HTTPURL" },
    { { "--start-task-environment-settings", "=x" }, "expects KEY=VALUE" },
  }
  for _, row in ipairs(bad_values) do
    it("refuses a malformed value: " .. table.concat(row[1], " "), function()
      local argv = table.move(BASE, 1, #BASE, 1, {})
      table.move(row[1], 1, #row[1], #argv + 1, argv)
      local status, out, err = run(argv)
      assert.equal(1, status)
      assert.equal("", out)
      assert.matches(row[2], err:match("^error: ([^\n]*)"))
    end)
  end

  for _, f in ipairs(body.REMOVED_FLAGS) do
    it("refuses --" .. f.name .. ", which the 2025-06-01 API has no field for (exit 2)", function()
      local argv = table.move(BASE, 1, #BASE, 1, {})
      argv[#argv + 1] = "--" .. f.name
      argv[#argv + 1] = "x"
      local status, out, err = run(argv)
      assert.equal(2, status)
      assert.equal("", out)
      assert.matches("^error: %-%-" .. f.name:gsub("%p", "%%%0") .. ": the Batch API 2025%-06%-01 has no ", err)
    end)
  end

  it("lets a flag override the --json-file's field, and a new --image replace the file's whole reference", function()
    local path = helper.tempfile(helper.fixture("pool_create_vmconfig.json"))
    local status, out, err = run { "pool", "create", "--json-file", path, "--image",
      "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers/Microsoft.Compute"
        .. "/images/ubuntu-managed", "--node-agent-sku-id", "batch.node.ubuntu 22.04", "--dry-run" }
    os.remove(path)
    assert.equal(0, status, err)
    local b = assert(azbatch.json.decode(out))
    assert.same({ virtualMachineImageId = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups"
      .. "/azbatch-dev/providers/Microsoft.Compute/images/ubuntu-managed" },
      b.virtualMachineConfiguration.imageReference)
    assert.equal("pool2", b.id)
  end)
end)

describe("--json-file in the ARM/portal shape", function()
  local GALLERY = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers"
    .. "/Microsoft.Compute/galleries/devgallery/images/ubuntu2204/versions/1.0.0"
  local RESOURCE = {
    id = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Batch"
      .. "/batchAccounts/devbatch/pools/testpool",
    name = "testpool", type = "Microsoft.Batch/batchAccounts/pools",
    identity = { type = "None" },
    properties = {
      vmSize = "STANDARD_D4", displayName = "Test pool", interNodeCommunication = "Enabled", taskSlotsPerNode = 2,
      allocationState = "Steady", provisioningState = "Succeeded", creationTime = "2017-08-28T10:22:55Z",
      currentDedicatedNodes = 0, targetNodeCommunicationMode = "Default", certificates = {},
      deploymentConfiguration = { virtualMachineConfiguration = {
        imageReference = { id = GALLERY }, nodeAgentSkuId = "batch.node.ubuntu 22.04" } },
      scaleSettings = { fixedScale = { targetDedicatedNodes = 3, resizeTimeout = "PT20M" } },
      taskSchedulingPolicy = { nodeFillType = "Spread" },
      metadata = { { name = "team", value = "vfx" } },
      applicationPackages = { { id = APP .. "app1", version = "2" } },
      networkConfiguration = { dynamicVnetAssignmentScope = "none", endpointConfiguration = { inboundNatPools = {
        { name = "ssh", protocol = "TCP", backendPort = 22, frontendPortRangeStart = 15000,
          frontendPortRangeEnd = 15100 } } } },
      startTask = { commandLine = "echo hi", userIdentity = { userName = "batchuser" } },
    },
  }

  local function convert(res)
    return body.from_arm(res, "--json-file f")
  end

  it("converts every part to the data-plane body", function()
    local b, notes = convert(RESOURCE)
    assert.equal("testpool", b.id)
    assert.equal("STANDARD_D4", b.vmSize)
    assert.equal("Test pool", b.displayName)
    assert.is_true(b.enableInterNodeCommunication)
    assert.equal(3, b.targetDedicatedNodes)
    assert.equal("PT20M", b.resizeTimeout)
    assert.same({ virtualMachineImageId = GALLERY }, b.virtualMachineConfiguration.imageReference)
    assert.equal("batch.node.ubuntu 22.04", b.virtualMachineConfiguration.nodeAgentSKUId)
    assert.same({ { applicationId = APP .. "app1", version = "2" } }, b.applicationPackageReferences)
    assert.equal("none", b.networkConfiguration.dynamicVNetAssignmentScope)
    assert.equal(22, b.networkConfiguration.endpointConfiguration.inboundNATPools[1].backendPort)
    assert.equal("batchuser", b.startTask.userIdentity.username)
    for _, gone in ipairs { "allocationState", "provisioningState", "creationTime", "currentDedicatedNodes",
      "targetNodeCommunicationMode", "certificates", "scaleSettings", "deploymentConfiguration",
      "interNodeCommunication", "applicationPackages" } do
      assert.is_nil(b[gone], gone)
    end
    assert.matches("converted from the ARM pool resource", notes[1])
    assert.matches("read%-only fields ignored: allocationState, creationTime, currentDedicatedNodes, "
      .. "provisioningState$", notes[1])
    -- and the core takes what came out
    local spec, why = azbatch.pool_spec(b)
    assert.truthy(spec, why)
  end)

  it("converts autoscale settings", function()
    local b = convert { name = "a", properties = { vmSize = "x", scaleSettings = { autoScale = {
      formula = "$TargetDedicatedNodes=1;", evaluationInterval = "PT5M" } } } }
    assert.same({ id = "a", vmSize = "x", enableAutoScale = true, autoScaleFormula = "$TargetDedicatedNodes=1;",
      autoScaleEvaluationInterval = "PT5M" }, b)
  end)

  it("takes the pool id from a template's account/pool name", function()
    local b = convert { name = "devbatch/tmplpool", type = "Microsoft.Batch/batchAccounts/pools",
      properties = { vmSize = "x" } }
    assert.equal("tmplpool", b.id)
  end)

  local refusals = {
    { { certificates = { { id = "c" } } }, "properties%.certificates cannot be converted" },
    { { resourceTags = { a = "b" } }, "properties%.resourceTags cannot be converted" },
    { { applicationLicenses = { "maya" } }, "properties%.applicationLicenses cannot be converted" },
    { { targetNodeCommunicationMode = "Classic" }, "properties%.targetNodeCommunicationMode cannot be converted" },
    { { deploymentConfiguration = { cloudServiceConfiguration = { osFamily = "6" } } },
      "properties%.deploymentConfiguration%.cloudServiceConfiguration cannot be converted: Cloud Services pools "
        .. "were retired" },
  }
  for _, row in ipairs(refusals) do
    it("refuses what has no data-plane field: " .. row[2], function()
      local props = { vmSize = "x" }
      for k, v in pairs(row[1]) do props[k] = v end
      local b, why = convert { name = "p", properties = props }
      assert.is_nil(b)
      assert.matches("^%-%-json%-file f: " .. row[2], why)
    end)
  end

  it("refuses a pool identity, which only ARM can set", function()
    local b, why = convert { name = "p", identity = { type = "UserAssigned" }, properties = { vmSize = "x" } }
    assert.is_nil(b)
    assert.matches("^%-%-json%-file f: identity: pool managed identities are set through ARM only", why)
  end)

  it("pool create --dry-run takes the portal's JSON, says so on stderr and prints the data-plane body", function()
    local path = helper.tempfile(assert(azbatch.json.encode(RESOURCE)))
    local status, out, err = run { "pool", "create", "--json-file", path, "--dry-run" }
    os.remove(path)
    assert.equal(0, status, err)
    assert.matches("^note: %-%-json%-file " .. path:gsub("%p", "%%%0") .. ": converted from the ARM pool resource", err)
    local b = assert(azbatch.json.decode(out))
    assert.equal("testpool", b.id)
    assert.equal(GALLERY, b.virtualMachineConfiguration.imageReference.virtualMachineImageId)
  end)

  it("pool set refuses the ARM shape: it takes the PATCH body", function()
    local path = helper.tempfile('{"properties": {"metadata": []}}')
    local status, _, err = run { "pool", "set", "--pool-id", "p", "--json-file", path }
    os.remove(path)
    assert.equal(1, status)
    assert.matches("^error: %-%-json%-file [^\n]*: this is an ARM %(management%-plane%) resource", err)
  end)
end)
