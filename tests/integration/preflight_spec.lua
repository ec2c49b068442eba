-- Preflight against the emulator's world: every rule with a case that
-- trips it and one that passes, the node agent chosen in each of its ways,
-- "latest" with an excluded version, quota with the pools that exist, and
-- the seed documents' 3000-node pool made to pass by `image replicate`.
local azbatch = require "azbatch"
local account = require "azbatch.account"
local helper = test_helper

local SUB = "00000000-0000-0000-0000-000000000001"
local RG = "/subscriptions/" .. SUB .. "/resourceGroups/azbatch-dev/providers/Microsoft.Compute"
local DEF = RG .. "/galleries/devgallery/images/ubuntu2204"
local REGIONAL = RG .. "/galleries/devgallery/images/ubuntu2204-regional"
local OTHER = "/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/azbatch-other/providers"
  .. "/Microsoft.Compute/galleries/othergallery/images/ubuntu2204/versions/1.0.0"

local function codes(findings)
  local set = {}
  for _, f in ipairs(findings) do set[f.code] = f end
  return set
end

local function pool(image, extra)
  local p = { id = "pf", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 2,
    virtualMachineConfiguration = { imageReference = image, nodeAgentSKUId = "batch.node.ubuntu 22.04" } }
  for k, v in pairs(extra or {}) do
    if k == "agent" then p.virtualMachineConfiguration.nodeAgentSKUId = v ~= false and v or nil
    else p[k] = v end
  end
  return p
end

local function gallery(id) return { virtualMachineImageId = id } end

describe("preflight against the emulator", function()
  local emu, arm, batch, sk
  setup(function()
    -- the dev world with room for a 3000-node pool
    local world = assert(azbatch.json.decode(assert(io.open(helper.ROOT .. "/scripts/emulator-world.json")):read("a")))
    world.accounts[1].dedicatedCoreQuota = 20000
    local path = helper.tempfile(assert(azbatch.json.encode(world)))
    emu = helper.emulator("--time-scale 500 --world " .. helper.shq(path))
    local cred = assert(azbatch.credential.client_secret { tenant = helper.DEV_TENANT, client_id = helper.DEV_CLIENT,
      client_secret = helper.DEV_SECRET, authority = emu.url })
    arm = assert(azbatch.arm { endpoint = emu.url, credential = cred })
    batch = assert(azbatch.client { endpoint = emu.url, credential = cred, account = "devbatch" })
    batch.arm_cache = arm
    sk = assert(azbatch.client { endpoint = emu.url,
      credential = assert(azbatch.credential.shared_key(helper.DEV_ACCOUNT, helper.DEV_KEY)) })
  end)
  teardown(function()
    if batch then batch:close() end
    if sk then sk:close() end
    if emu then emu.stop() end
  end)
  before_each(function() account.forget() end)

  local function run(spec, opts)
    local r = assert(batch:preflight(spec, opts))
    return r, codes(r.findings)
  end

  it("passes a sound gallery pool, with the facts it used", function()
    local r, c = run(pool(gallery(DEF .. "/versions/1.1.0")))
    assert.is_true(r.ok, azbatch.json.encode(r.findings))
    assert.is_nil(c.CHECK_SKIPPED)
    assert.equal("westeurope", r.facts.account.location)
    assert.equal("1.1.0", r.facts.image_version.name)
    assert.equal(2, r.facts.vm_size and #r.facts.vm_size.capabilities > 0 and 2)
  end)

  local trips = {
    { "an image in another subscription", gallery(OTHER), "IMAGE_SUBSCRIPTION", "error" },
    { "a version that does not exist", gallery(DEF .. "/versions/9.9.9"), "IMAGE_VERSION_NOT_FOUND", "error" },
    { "a definition that does not exist", gallery(RG .. "/galleries/devgallery/images/nosuch/versions/1.0.0"),
      "IMAGE_DEFINITION_NOT_FOUND", "error" },
    { "no replica in the account's region", gallery(REGIONAL .. "/versions/2.0.0"), "IMAGE_NO_REPLICA_IN_REGION",
      "error" },
    { "replication failed in the region", gallery(REGIONAL .. "/versions/2.1.0"), "IMAGE_REPLICATION_INCOMPLETE",
      "error" },
    { "replication still running in the region", gallery(REGIONAL .. "/versions/2.2.0"),
      "IMAGE_REPLICATION_INCOMPLETE", "error" },
    { "a specialized definition", gallery(RG .. "/galleries/devgallery/images/ubuntu2204-specialized/versions/1.0.0"),
      "IMAGE_NOT_GENERALIZED", "error" },
    { "a Linux agent for a Windows image", gallery(RG .. "/galleries/devgallery/images/windows2022/versions/1.0.0"),
      "NODE_AGENT_OS", "error" },
    { "a V2 image on a size that boots V1 only", gallery(DEF .. "/versions/1.1.0"), "HYPERV_GENERATION", "error",
      { vmSize = "Standard_A1_v2" } },
    { "a version past its end of life", gallery(DEF .. "/versions/0.9.0"), "IMAGE_END_OF_LIFE", "warning" },
    { "a version within 90 days of its end of life", gallery(DEF .. "/versions/1.0.1"), "IMAGE_END_OF_LIFE",
      "warning" },
    { "a node agent past its end of life", "Canonical:0001-com-ubuntu-server-focal:20_04-lts", "NODE_AGENT_RETIRED",
      "error", { agent = "batch.node.ubuntu 20.04" } },
    { "a managed image in another subscription", gallery(
      "/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/azbatch-other/providers/Microsoft.Compute"
      .. "/images/other-ubuntu"), "IMAGE_SUBSCRIPTION", "error" },
    { "a managed image that does not exist", gallery(RG .. "/images/nosuch"), "MANAGED_IMAGE_NOT_FOUND", "error" },
    { "a short resize timeout for a big fixed pool", gallery(DEF .. "/versions/1.1.0"), "RESIZE_TIMEOUT_SHORT",
      "warning", { targetDedicatedNodes = 2000 } },
    { "too few replicas for the pool", gallery(DEF .. "/versions/1.1.0"), "IMAGE_REPLICAS_TOO_FEW", "warning",
      { targetDedicatedNodes = 2000, resizeTimeout = "PT30M" } },
    { "dedicated cores past the quota", gallery(DEF .. "/versions/1.1.0"), "QUOTA_DEDICATED_CORES", "error",
      { targetDedicatedNodes = 10001 } },
    { "low-priority cores past the quota", gallery(DEF .. "/versions/1.1.0"), "QUOTA_LOW_PRIORITY_CORES", "error",
      { targetDedicatedNodes = 0, targetLowPriorityNodes = 51 } },
    { "a VHD given as the image", "https://azbatchdevstore.blob.core.windows.net/vhds/ubuntu-2204.vhd", "IMAGE_VHD",
      "error" },
    { "a VHD in a storage account of another region",
      "https://azbatchdevstorene.blob.core.windows.net/vhds/ubuntu-2204.vhd", "VHD_STORAGE_REGION", "warning" },
  }
  for _, t in ipairs(trips) do
    it("trips on " .. t[1], function()
      local r, c = run(pool(t[2], t[5]))
      local f = c[t[3]]
      assert.truthy(f, t[3] .. " not among: " .. azbatch.json.encode(r.findings))
      assert.equal(t[4], f.severity)
      assert.is_string(f.message)
      if t[4] == "error" then assert.is_false(r.ok) end
    end)
  end

  it("names its fixes: replicate for replicas, from-vhd for a VHD", function()
    local _, c = run(pool(gallery(DEF .. "/versions/1.1.0"), { targetDedicatedNodes = 3000, resizeTimeout = "PT45M" }))
    assert.matches("azbatch image replicate", c.IMAGE_REPLICAS_TOO_FEW.fix)
    _, c = run(pool("https://azbatchdevstore.blob.core.windows.net/vhds/ubuntu-2204.vhd"))
    assert.matches("azbatch image from%-vhd", c.IMAGE_VHD.fix)
  end)

  it("refuses a .../versions/latest id with the definition id as the fix", function()
    local r, c = run(pool(gallery(DEF .. "/versions/latest")))
    assert.is_false(r.ok)
    assert.truthy(c.IMAGE_LATEST_ID.fix:find(DEF, 1, true))
  end)

  it("resolves 'latest' past a version excluded from latest, and checks that version", function()
    local r, c = run(pool(gallery(DEF)))
    assert.equal("1.1.0", r.derived.latest_version)
    assert.matches("excluded from latest: '1%.2%.0'", c.IMAGE_LATEST_RESOLVED.message)
    assert.equal("1.1.0", r.facts.image_version.name)
    assert.is_nil(c.CHECK_SKIPPED)
  end)

  it("counts the cores of the pools that already exist", function()
    local big = pool(gallery(DEF .. "/versions/1.1.0"), { targetDedicatedNodes = 9000, resizeTimeout = "PT2H15M" })
    local r, c = run(big)
    assert.is_nil(c.QUOTA_DEDICATED_CORES, azbatch.json.encode(r.findings))
    local used = r.facts.usage.dedicatedCores             -- the world's own pools
    -- 9000 x 2 cores fit in 20000 alone; not with 1100 x 2 more in use
    assert(sk:create_pool { id = "pf-user", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 1100,
      resizeTimeout = "PT30M", virtualMachineConfiguration = {
        imageReference = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts",
        nodeAgentSKUId = "batch.node.ubuntu 22.04" } })
    r, c = run(big)
    assert.truthy(c.QUOTA_DEDICATED_CORES, azbatch.json.encode(r.findings))
    assert.matches("other pools use " .. (used + 2200), c.QUOTA_DEDICATED_CORES.message)
    assert(sk:delete_pool("pf-user"))
  end)

  it("with a Shared Key client: the auth rule, and the ARM checks skipped with the reason", function()
    local r = assert(sk:preflight(pool(gallery(DEF .. "/versions/1.1.0"))))
    local c = codes(r.findings)
    assert.equal("error", c.AUTH_SHARED_KEY_REFUSED.severity)
    assert.equal("warning", c.CHECK_SKIPPED.severity)
    assert.matches("Shared Key", c.CHECK_SKIPPED.message)
    -- a skipped check never blocks on its own: a marketplace pool over Shared Key passes
    r = assert(sk:preflight(pool("Canonical:0001-com-ubuntu-server-jammy:22_04-lts")))
    assert.is_true(r.ok, azbatch.json.encode(r.findings))
  end)

  it("says a principal cannot read the image, naming the role actions", function()
    local restricted = assert(azbatch.credential.client_secret { tenant = helper.DEV_TENANT,
      client_id = "00000000-0000-0000-0000-0000000000c2", client_secret = "dev-restricted-secret",
      authority = emu.url })
    local c2 = assert(azbatch.client { endpoint = emu.url, credential = restricted, account = "devbatch" })
    local r = assert(c2:preflight(pool(gallery(DEF .. "/versions/1.1.0")),
      { arm = assert(azbatch.arm { endpoint = emu.url, credential = restricted }) }))
    c2:close()
    local f = codes(r.findings).IMAGE_ACCESS_DENIED
    assert.truthy(f, azbatch.json.encode(r.findings))
    assert.equal("error", f.severity)
    assert.matches("Microsoft.Compute/galleries/images/versions/read", f.fix, 1, true)
  end)

  it("a user-subscription account needs Entra ID", function()
    local usersub = assert(azbatch.client { endpoint = emu.url, account = "devbatchusersub",
      credential = assert(azbatch.credential.shared_key("devbatchusersub", helper.DEV_KEY)) })
    local r = assert(usersub:preflight(pool("Canonical:0001-com-ubuntu-server-jammy:22_04-lts"), { arm = arm }))
    usersub:close()
    assert.equal("error", codes(r.findings).AUTH_USER_SUBSCRIPTION.severity)
  end)

  it("validates the spec before reading anything", function()
    local before = helper.control(emu, "stats").requests
    local ok, msg, err = batch:preflight { id = "bad id!", vmSize = "Standard_D2s_v3" }
    assert.is_nil(ok)
    assert.equal("validation", err.kind)
    assert.is_string(msg)
    assert.equal(before, helper.control(emu, "stats").requests)
  end)

  describe("the node agent chosen for you", function()
    local ways = {
      { "a marketplace image", "Canonical:0001-com-ubuntu-server-jammy:22_04-lts", "batch.node.ubuntu 22.04" },
      { "a gallery image, from its definition's name", gallery(DEF .. "/versions/1.1.0"), "batch.node.ubuntu 22.04" },
      { "a Windows gallery image", gallery(RG .. "/galleries/devgallery/images/windows2022/versions/1.0.0"),
        "batch.node.windows amd64" },
    }
    for _, w in ipairs(ways) do
      it("for " .. w[1], function()
        local sku, reason = assert(batch:choose_node_agent(w[2]))
        assert.equal(w[3], sku)
        assert.is_string(reason)
        local r, c = run(pool(w[2], { agent = "auto" }))
        assert.truthy(c.NODE_AGENT_CHOSEN, azbatch.json.encode(r.findings))
        assert.equal(w[3], r.derived.node_agent)
      end)
    end

    it("from the provenance a published version records", function()
      local source = RG .. "/images/ubuntu-managed"
      assert(batch:publish_image { source = source, gallery = "devgallery", definition = "opaque-name",
        version = "1.0.0", node_agent = "batch.node.el 8", publisher = "contoso", offer = "render", sku = "v1" })
      local sku, reason = assert(batch:choose_node_agent(gallery(RG .. "/galleries/devgallery/images/opaque-name"
        .. "/versions/1.0.0")))
      assert.equal("batch.node.el 8", sku)
      assert.matches("azbatch.nodeAgentSKUId", reason, 1, true)
    end)

    it("and create_pool says what it chose", function()
      local res = assert(batch:create_pool { id = "pf-auto", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 0,
        virtualMachineConfiguration = { imageReference = gallery(DEF .. "/versions/1.1.0") } })
      assert.equal("batch.node.ubuntu 22.04", res.node_agent)
      assert.is_string(res.node_agent_reason)
      local p = assert(batch:get_pool("pf-auto"))
      assert.equal("batch.node.ubuntu 22.04", p.virtualMachineConfiguration.nodeAgentSKUId)
      assert(batch:delete_pool("pf-auto"))
    end)
  end)

  it("the seed documents' 3000-node pool: 5 replicas and PT45M, then passing after image replicate", function()
    local spec = pool(gallery(DEF .. "/versions/1.0.0"), { id = "render-3000", targetDedicatedNodes = 3000 })
    local r, c = run(spec)
    assert.equal(5, r.derived.replicas_needed)
    assert.equal("PT45M", r.derived.resize_timeout_needed)
    assert.truthy(c.IMAGE_REPLICAS_TOO_FEW)
    assert.truthy(c.RESIZE_TIMEOUT_SHORT)
    assert(batch:replicate_image { image = DEF .. "/versions/1.0.0", nodes = 3000, interval = 0.05 })
    spec.resizeTimeout = "PT45M"
    r, c = run(spec)
    assert.is_nil(c.IMAGE_REPLICAS_TOO_FEW, azbatch.json.encode(r.findings))
    assert.is_nil(c.RESIZE_TIMEOUT_SHORT)
    assert.is_true(r.ok, azbatch.json.encode(r.findings))
  end)
end)
