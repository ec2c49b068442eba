-- Custom images on the emulator's ARM side: finding the Batch account,
-- a managed image from a VHD (the older flow's rules checked), publishing
-- a gallery version sized for a pool, raising its replicas, and a pool
-- made from the result.
local azbatch = require "azbatch"
local account = require "azbatch.account"
local helper = test_helper

local SUB = "00000000-0000-0000-0000-000000000001"
local RG = "/subscriptions/" .. SUB .. "/resourceGroups/azbatch-dev/providers"
local ACCOUNT_ID = RG .. "/Microsoft.Batch/batchAccounts/devbatch"
local VHD = "https://azbatchdevstore.blob.core.windows.net/vhds/ubuntu-2204.vhd"

describe("custom images on ARM", function()
  local emu, cred, arm, batch
  setup(function()
    emu = helper.emulator("--time-scale 200")
    cred = assert(azbatch.credential.client_secret { tenant = helper.DEV_TENANT, client_id = helper.DEV_CLIENT,
      client_secret = helper.DEV_SECRET, authority = emu.url })
    arm = assert(azbatch.arm { endpoint = emu.url, credential = cred })
    batch = assert(azbatch.client { endpoint = emu.url, credential = cred, account = "devbatch" })
    batch.arm_cache = arm          -- the emulator serves ARM at its own base URL
  end)
  teardown(function()
    if batch then batch:close() end
    if emu then emu.stop() end
  end)
  before_each(function() account.forget() end)

  describe("finding the Batch account", function()
    it("by name, among the subscriptions the credential sees, and once per process", function()
      local a = assert(account.find(arm, { name = "devbatch" }))
      assert.equal(ACCOUNT_ID, a.id)
      assert.equal("westeurope", a.location)
      assert.equal("BatchService", a.properties.poolAllocationMode)
      local before = helper.control(emu, "stats").requests
      assert.equal(a, account.find(arm, { name = "DEVBATCH" }))
      assert.equal(before, helper.control(emu, "stats").requests)
    end)

    it("by resource id, from the option or the environment variable", function()
      assert.equal(ACCOUNT_ID, assert(account.find(arm, { resource_id = ACCOUNT_ID })).id)
      account.forget()
      assert.equal(ACCOUNT_ID, assert(account.find(arm, { env = { AZURE_BATCH_ACCOUNT_RESOURCE_ID = ACCOUNT_ID } })).id)
    end)

    it("by the name in a Batch endpoint's host, searching AZURE_SUBSCRIPTION_ID first", function()
      local a = assert(account.find(arm, { host = "devbatchusersub.westeurope.batch.azure.com",
        env = { AZURE_SUBSCRIPTION_ID = SUB } }))
      assert.equal("UserSubscription", a.properties.poolAllocationMode)
    end)

    it("says when there is no such account, or no name to look for", function()
      local ok, msg, err = account.find(arm, { name = "nosuchaccount" })
      assert.is_nil(ok)
      assert.matches("no Batch account named \"nosuchaccount\" in the 2 subscription%(s%)", msg)
      assert.equal("BatchAccountNotFound", err.code)
      ok, msg, err = account.find(arm, { env = {} })
      assert.is_nil(ok)
      assert.matches("the Batch account's name is needed", msg)
      assert.equal("account.name", err.field)
    end)
  end)

  describe("a managed image from a VHD", function()
    it("is made from a blob in the account's subscription and region, following the operation", function()
      local seen = {}
      local image = assert(batch:image_from_vhd { blob = VHD, name = "from-vhd", os_type = "linux",
        on_progress = function(p) seen[#seen + 1] = p.status end })
      assert.equal(RG .. "/Microsoft.Compute/images/from-vhd", image.id)
      assert.equal("Succeeded", image.properties.provisioningState)
      assert.equal(VHD, image.properties.storageProfile.osDisk.blobUri)
      assert.is_true(#seen >= 1)
      assert.equal("Succeeded", seen[#seen])
    end)

    it("refuses a blob in another subscription or region, before writing anything", function()
      local writes = #helper.control(emu, "journal").value
      local ok, msg, err = batch:image_from_vhd {
        blob = "https://azbatchotherstore.blob.core.windows.net/vhds/ubuntu-2204.vhd", name = "x" }
      assert.is_nil(ok)
      assert.equal("StorageAccountNotInSubscription", err.code)
      assert.matches("same subscription and region", msg)
      ok, msg, err = batch:image_from_vhd {
        blob = "https://azbatchdevstorene.blob.core.windows.net/vhds/ubuntu-2204.vhd", name = "x" }
      assert.is_nil(ok)
      assert.equal("StorageAccountInOtherRegion", err.code)
      assert.matches("northeurope", msg)
      assert.equal(writes, #helper.control(emu, "journal").value)
    end)

    it("validates its options", function()
      local rows = {
        { { blob = "https://x.blob.core.windows.net/a/b.txt", name = "n" }, "image_from_vhd.blob" },
        { { blob = VHD, name = "bad name!" }, "image_from_vhd.name" },
        { { blob = VHD, name = "n", os_type = "plan9" }, "image_from_vhd.os_type" },
      }
      for _, r in ipairs(rows) do
        local ok, _, err = batch:image_from_vhd(r[1])
        assert.is_nil(ok)
        assert.equal(r[2], err.field)
      end
      assert.error_matches(function() batch:image_from_vhd { blob = VHD, nmae = "x" } end,
        "unknown option 'nmae' (did you mean 'name'?)", 1, true)
    end)
  end)

  describe("publishing and replicating", function()
    local version_id
    it("publishes a version sized for 3000 nodes, making the definition, recording provenance", function()
      local source = assert(batch:image_from_vhd { blob = VHD, name = "for-publish", hyperv_generation = "V2" }).id
      local v = assert(batch:publish_image { source = source, gallery = "devgallery", definition = "published",
        version = "1.0.0", nodes = 3000, node_agent = "batch.node.ubuntu 22.04",
        marketplace = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts" })
      version_id = v.id
      assert.matches("/galleries/devgallery/images/published/versions/1%.0%.0$", v.id)
      local regions = {}
      for _, t in ipairs(v.properties.publishingProfile.targetRegions) do
        regions[t.name:lower():gsub(" ", "")] = t.regionalReplicaCount
      end
      assert.equal(5, regions.westeurope)               -- ceil(3000 / 600)
      assert.equal("batch.node.ubuntu 22.04", v.tags["azbatch.nodeAgentSKUId"])
      assert.equal(source, v.tags["azbatch.source"])
      local def = assert(arm:gallery_image(RG .. "/Microsoft.Compute/galleries/devgallery/images/published"))
      assert.equal("Linux", def.properties.osType)
      assert.equal("Generalized", def.properties.osState)
      assert.equal("V2", def.properties.hyperVGeneration)
    end)

    it("raises the replicas for a bigger pool and waits for the region, never lowering them", function()
      assert.truthy(version_id, "needs the version published above")
      local states = {}
      local v = assert(batch:replicate_image { image = version_id, nodes = 3600, interval = 0.05,
        on_progress = function(p) states[#states + 1] = p.state end })
      local count
      for _, t in ipairs(v.properties.publishingProfile.targetRegions) do
        if t.name:lower():gsub(" ", "") == "westeurope" then count = t.regionalReplicaCount end
      end
      assert.equal(6, count)
      assert.equal("Completed", states[#states])
      -- asking for less changes nothing and writes nothing
      local writes = #helper.control(emu, "journal").value
      v = assert(batch:replicate_image { image = version_id, nodes = 100, interval = 0.05 })
      assert.equal(writes, #helper.control(emu, "journal").value)
      for _, t in ipairs(v.properties.publishingProfile.targetRegions) do
        if t.name:lower():gsub(" ", "") == "westeurope" then assert.equal(6, t.regionalReplicaCount) end
      end
    end)

    it("a pool runs on what was published (VHD -> managed image -> gallery version -> pool)", function()
      assert.truthy(version_id, "needs the version published above")
      assert(batch:create_pool { id = "on-published", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 2,
        virtualMachineConfiguration = { imageReference = { virtualMachineImageId = version_id },
          nodeAgentSKUId = "batch.node.ubuntu 22.04" } })
      local pool = assert(batch:wait_pool("on-published", { interval = 0.05, timeout = 60 }))
      assert.equal(2, pool.currentDedicatedNodes)
      assert(batch:delete_pool("on-published"))
    end)

    it("replicate_image refuses what is not a gallery version", function()
      local ok, _, err = batch:replicate_image { image = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts",
        nodes = 10 }
      assert.is_nil(ok)
      assert.equal("replicate_image.image", err.field)
    end)
  end)
end)
