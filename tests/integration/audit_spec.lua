-- The pool image audit against the emulator: "is this pool on a custom
-- image?", the versions its nodes really run (a pool on a gallery
-- definition gains a new version's nodes after it is published), and what
-- is wrong with them.
local azbatch = require "azbatch"
local account = require "azbatch.account"
local helper = test_helper

local RG = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers/Microsoft.Compute"
local DEF = RG .. "/galleries/devgallery/images/ubuntu2204"

describe("the pool image audit", function()
  local emu, batch
  setup(function()
    emu = helper.emulator("--time-scale 500")
    local cred = assert(azbatch.credential.client_secret { tenant = helper.DEV_TENANT, client_id = helper.DEV_CLIENT,
      client_secret = helper.DEV_SECRET, authority = emu.url })
    batch = assert(azbatch.client { endpoint = emu.url, credential = cred, account = "devbatch" })
    batch.arm_cache = assert(azbatch.arm { endpoint = emu.url, credential = cred })
    account.forget()
  end)
  teardown(function()
    if batch then batch:close() end
    if emu then emu.stop() end
  end)

  local function create(id, image, nodes)
    assert(batch:create_pool { id = id, vmSize = "Standard_D2s_v3", targetDedicatedNodes = nodes or 2,
      virtualMachineConfiguration = { imageReference = image, nodeAgentSKUId = "batch.node.ubuntu 22.04" } })
    assert(batch:wait_pool(id, { interval = 0.05, timeout = 60 }))
  end

  it("says a marketplace pool is not on a custom image, and names the image as the portal does", function()
    create("au-market", "Canonical:0001-com-ubuntu-server-jammy:22_04-lts")
    local r = assert(batch:pool_image("au-market"))
    assert.equal("marketplace", r.kind)
    assert.is_false(r.custom)
    assert.equal("Canonical 0001-com-ubuntu-server-jammy 22_04-lts (latest)", r.operating_system)
    assert.equal("batch.node.ubuntu 22.04", r.node_agent)
    assert.equal(2, r.versions[1].nodes)
  end)

  it("finds the nodes of a pool on 'latest' running two versions once a new one is published", function()
    create("au-latest", { virtualMachineImageId = DEF }, 2)
    local r = assert(batch:pool_image("au-latest"))
    assert.equal("gallery_latest", r.kind)
    assert.is_true(r.custom)
    assert.equal("Custom VM image (" .. DEF .. ")", r.operating_system)
    assert.same({ { version = "1.1.0", nodes = 2 } }, r.versions)
    for _, f in ipairs(r.findings) do assert.is_not_equal("POOL_MIXED_VERSIONS", f.code) end
    assert(batch:publish_image { source = RG .. "/images/ubuntu-managed", gallery = "devgallery",
      definition = "ubuntu2204", version = "1.3.0" })
    assert(batch:resize_pool("au-latest", { targetDedicatedNodes = 4 }))
    assert(batch:wait_pool("au-latest", { interval = 0.05, timeout = 60 }))
    r = assert(batch:pool_image("au-latest"))
    assert.same({ { version = "1.1.0", nodes = 2 }, { version = "1.3.0", nodes = 2 } }, r.versions)
    local mixed
    for _, f in ipairs(r.findings) do if f.code == "POOL_MIXED_VERSIONS" then mixed = f end end
    assert.truthy(mixed)
    assert.matches("2 image versions %(1%.1%.0, 1%.3%.0%)", mixed.message)
  end)

  it("reports a version past its end of life", function()
    create("au-eol", { virtualMachineImageId = DEF .. "/versions/0.9.0" }, 1)
    local r = assert(batch:pool_image("au-eol"))
    local eol
    for _, f in ipairs(r.findings) do if f.code == "IMAGE_END_OF_LIFE" then eol = f end end
    assert.truthy(eol, azbatch.json.encode(r.findings))
    assert.equal("warning", eol.severity)
  end)

  it("audits every pool of the account at once", function()
    local reports = assert(batch:pool_images())
    local by_id = {}
    for _, r in ipairs(reports) do by_id[r.id] = r end
    assert.equal("marketplace", by_id["au-market"].kind)
    assert.equal("gallery_latest", by_id["au-latest"].kind)
    assert.equal("gallery_version", by_id["au-eol"].kind)
    assert.is_true(#reports >= 3)
  end)

  it("raises on misuse", function()
    assert.error_matches(function() batch:pool_image("") end, "the id is empty")
    assert.error_matches(function() batch:pool_images { concurency = 2 } end,
      "unknown option 'concurency' (did you mean 'concurrency'?)", 1, true)
  end)
end)
