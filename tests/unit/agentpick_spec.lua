-- core.choose_node_agent: the node agent SKU for an image, from the
-- account's supported images and what ARM says of a custom image.
local core = require "azbatch.core"

local FIELD = "pool.virtualMachineConfiguration.nodeAgentSKUId"
local SUB = "6e1c8d4e-4b2f-4a8e-9f3c-2d7a1b5c9e01"
local DEF = "/subscriptions/" .. SUB .. "/resourceGroups/rg/providers/Microsoft.Compute/galleries/gal/images/"

local function entry(sku, pub, offer, isku, os, extra)
  local e = { nodeAgentSKUId = sku, osType = os or "linux", verificationType = "verified",
    imageReference = { publisher = pub, offer = offer, sku = isku, version = "latest" } }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

-- what GET /supportedimages answers, in part
local function supported()
  return {
    entry("batch.node.ubuntu 20.04", "canonical", "0001-com-ubuntu-server-focal", "20_04-lts"),
    entry("batch.node.ubuntu 22.04", "canonical", "0001-com-ubuntu-server-jammy", "22_04-lts"),
    entry("batch.node.ubuntu 22.04", "canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-arm64"),
    entry("batch.node.ubuntu 24.04", "canonical", "ubuntu-24_04-lts", "server"),
    entry("batch.node.el 9", "almalinux", "almalinux-x86_64", "9-gen2"),
    entry("batch.node.el 8", "rockylinux", "rockylinux-x86_64", "8-gen2"),
    entry("batch.node.debian 12", "debian", "debian-12", "12"),
    entry("batch.node.windows amd64", "microsoftwindowsserver", "windowsserver", "2022-datacenter", "windows"),
    entry("batch.node.windows amd64", "microsoftwindowsserver", "windowsserver", "2019-datacenter", "windows"),
  }
end

local function gallery(name, props, version)
  return {
    image = { kind = "gallery_version", id = DEF .. name .. "/versions/1.0.0" },
    image_definition = { id = DEF .. name, name = name,
      properties = props or { osType = "Linux", osState = "Generalized",
        identifier = { publisher = "contoso", offer = "render", sku = "node" } } },
    image_version = version or { name = "1.0.0", properties = {} },
    supported_images = supported(),
  }
end

local function fails(facts)
  local sku, msg, err = core.choose_node_agent(facts)
  assert.is_nil(sku)
  assert.is_string(msg)
  assert.is_table(err)
  assert.equal("validation", err.kind)
  assert.equal(FIELD, err.field)
  assert.is_table(err.candidates)
  assert.equal(FIELD .. ": ", msg:sub(1, #FIELD + 2))
  assert.is_nil(msg:find("\n"))
  return msg, err
end

describe("core.choose_node_agent for a marketplace image", function()
  it("takes the supported images' agent, ignoring case and version", function()
    local sku, reason = core.choose_node_agent {
      image = { kind = "marketplace", publisher = "Canonical", offer = "0001-COM-ubuntu-server-jammy",
        sku = "22_04-LTS", version = "22.04.202401010" },
      supported_images = supported() }
    assert.equal("batch.node.ubuntu 22.04", sku)
    assert.equal("the account's supported images pair 'Canonical:0001-COM-ubuntu-server-jammy:22_04-LTS' "
      .. "with it", reason)
  end)

  it("fails for an image the account does not support, listing every agent", function()
    local msg, err = fails { image = { kind = "marketplace", publisher = "Canonical", offer = "UbuntuServer",
      sku = "16.04-LTS" }, supported_images = supported() }
    assert.truthy(msg:find("'Canonical:UbuntuServer:16.04-LTS' is not among the account's supported images", 1, true))
    assert.truthy(msg:find("candidates for any OS: 'batch.node.ubuntu 20.04', 'batch.node.ubuntu 22.04'", 1, true))
    assert.same({ "batch.node.ubuntu 20.04", "batch.node.ubuntu 22.04", "batch.node.ubuntu 24.04", "batch.node.el 9",
      "batch.node.el 8", "batch.node.debian 12", "batch.node.windows amd64" }, err.candidates)
  end)

  it("prefers a verified entry when entries pair one image with two agents", function()
    local si = supported()
    si[#si + 1] = entry("batch.node.ubuntu 99.99", "canonical", "ubuntu-24_04-lts", "server", "linux",
      { verificationType = "unverified" })
    assert.equal("batch.node.ubuntu 24.04", (core.choose_node_agent {
      image = { kind = "marketplace", publisher = "canonical", offer = "ubuntu-24_04-lts", sku = "server" },
      supported_images = si }))
    si[#si].verificationType = "verified"
    local msg = fails { image = { kind = "marketplace", publisher = "canonical", offer = "ubuntu-24_04-lts",
      sku = "server" }, supported_images = si }
    assert.truthy(msg:find("pair 'canonical:ubuntu-24_04-lts:server' with more than one agent", 1, true))
  end)
end)

describe("core.choose_node_agent for a gallery image", function()
  it("(1) follows the definition's identifier when it names a supported image", function()
    local f = gallery("render", { osType = "Linux", osState = "Generalized",
      identifier = { publisher = "Canonical", offer = "0001-com-ubuntu-server-jammy", sku = "22_04-lts" } })
    local sku, reason = core.choose_node_agent(f)
    assert.equal("batch.node.ubuntu 22.04", sku)
    assert.equal("from the image definition's identifier 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts'", reason)
  end)

  it("(1) ignores an identifier whose OS contradicts the definition's", function()
    local f = gallery("render", { osType = "Linux",
      identifier = { publisher = "MicrosoftWindowsServer", offer = "WindowsServer", sku = "2022-datacenter" } })
    fails(f)
  end)

  it("(2) follows the version's azbatch.nodeAgentSKUId tag, in the list's spelling", function()
    local f = gallery("render", nil, { name = "1.0.0", tags = { ["azbatch.nodeAgentSKUId"] = "Batch.Node.Debian 12" } })
    local sku, reason = core.choose_node_agent(f)
    assert.equal("batch.node.debian 12", sku)
    assert.equal("from the version's tag azbatch.nodeAgentSKUId", reason)
  end)

  it("(2) follows the version's azbatch.marketplace tag", function()
    local f = gallery("render", nil,
      { name = "1.0.0", tags = { ["azbatch.marketplace"] = "almalinux:almalinux-x86_64:9-gen2" } })
    local sku, reason = core.choose_node_agent(f)
    assert.equal("batch.node.el 9", sku)
    assert.equal("from the version's tag azbatch.marketplace 'almalinux:almalinux-x86_64:9-gen2'", reason)
  end)

  it("(2) passes over a tag naming an agent the account no longer supports", function()
    local f = gallery("render", nil, { name = "1.0.0", tags = { ["azbatch.nodeAgentSKUId"] = "batch.node.ubuntu 16.04",
      ["azbatch.marketplace"] = "canonical:ubuntu-24_04-lts:server" } })
    assert.equal("batch.node.ubuntu 24.04", (core.choose_node_agent(f)))
    f.image_version.tags["azbatch.marketplace"] = nil
    local msg = fails(f)
    assert.truthy(msg:find("its tag azbatch.nodeAgentSKUId 'batch.node.ubuntu 16.04' is not supported", 1, true))
  end)

  -- (3) the OS type and the one release the names point to
  local names = {
    { "ubuntu2204", "batch.node.ubuntu 22.04" },
    { "ubuntu-22_04-render", "batch.node.ubuntu 22.04" },
    { "render-ubuntu-24.04-gen2", "batch.node.ubuntu 24.04" },
    { "jammy-ubuntu-render", "batch.node.ubuntu 22.04" },
    { "focal-ubuntu", "batch.node.ubuntu 20.04" },
    { "rhel9-render", "batch.node.el 9" },
    { "alma-linux-8", nil },            -- "alma" alone is not a distro word
    { "almalinux-8", "batch.node.el 8" },
    { "rocky-8.9", "batch.node.el 8" }, -- 8.9 names 8, not 9
    { "debian-12-gen2", "batch.node.debian 12" },
    { "ubuntu-render", nil },           -- no release
    { "render-2204", nil },             -- no distro
    { "ubuntu-22_04-and-24_04", nil },  -- two agents fit
  }
  for _, row in ipairs(names) do
    local name, want = row[1], row[2]
    it(("(3) definition %q: %s"):format(name, want or "no single agent"), function()
      local f = gallery(name)
      if want then
        local sku, reason = core.choose_node_agent(f)
        assert.equal(want, sku)
        assert.equal(("the image's osType is Linux and its identifier or name names the release of '%s', the only "
          .. "supported agent that fits"):format(want), reason)
      else
        local msg, err = fails(f)
        assert.truthy(msg:find("cannot choose a node agent for the image definition '" .. name .. "'", 1, true))
        assert.truthy(msg:find("its names point to no single agent; candidates for Linux x64: ", 1, true))
        assert.same({ "batch.node.ubuntu 20.04", "batch.node.ubuntu 22.04", "batch.node.ubuntu 24.04",
          "batch.node.el 9", "batch.node.el 8", "batch.node.debian 12" }, err.candidates)
      end
    end)
  end

  it("(3) reads the release from the identifier too", function()
    local f = gallery("render", { osType = "Linux",
      identifier = { publisher = "contoso", offer = "ubuntu-hpc", sku = "2404" } })
    assert.equal("batch.node.ubuntu 24.04", (core.choose_node_agent(f)))
  end)

  it("(3) takes the only Windows agent for a Windows definition", function()
    local f = gallery("winrender", { osType = "Windows",
      identifier = { publisher = "contoso", offer = "render", sku = "win" } })
    local sku, reason = core.choose_node_agent(f)
    assert.equal("batch.node.windows amd64", sku)
    assert.equal("the only supported Windows agent, and the image's osType is Windows", reason)
  end)

  it("(3) keeps to the definition's architecture", function()
    local f = gallery("ubuntu-2204-arm", { osType = "Linux", architecture = "Arm64",
      identifier = { publisher = "contoso", offer = "render", sku = "arm" } })
    assert.equal("batch.node.ubuntu 22.04", (core.choose_node_agent(f)))
    f.image_definition.name = "ubuntu-2404-arm"
    local _, err = fails(f)
    assert.same({ "batch.node.ubuntu 22.04" }, err.candidates)
  end)

  it("fails without a definition, listing every agent", function()
    local f = gallery("render")
    f.image_definition = nil
    local msg, err = fails(f)
    assert.truthy(msg:find("no image definition was read, it has no azbatch provenance tags and its OS type is unknown",
      1, true))
    assert.equal(7, #err.candidates)
  end)

  it("uses the managed image's OS, name and tags", function()
    local f = { image = { kind = "managed_image", id = "/subscriptions/" .. SUB
        .. "/resourceGroups/rg/providers/Microsoft.Compute/images/render-ubuntu2404", name = "render-ubuntu2404" },
      managed_image = { name = "render-ubuntu2404",
        properties = { storageProfile = { osDisk = { osType = "Linux", osState = "Generalized" } } } },
      supported_images = supported() }
    assert.equal("batch.node.ubuntu 24.04", (core.choose_node_agent(f)))
    f.managed_image.tags = { ["azbatch.nodeAgentSKUId"] = "batch.node.el 9" }
    local sku, reason = core.choose_node_agent(f)
    assert.equal("batch.node.el 9", sku)
    assert.equal("from the managed image's tag azbatch.nodeAgentSKUId", reason)
  end)

  it("refuses a VHD and facts without the supported images", function()
    local msg = fails { image = { kind = "vhd", uri = "https://sa.blob.core.windows.net/c/x.vhd" },
      supported_images = supported() }
    assert.truthy(msg:find("Batch takes a managed image or a gallery version made from the VHD", 1, true))
    local f = gallery("ubuntu2204")
    f.supported_images = nil
    local msg2, err = fails(f)
    assert.truthy(msg2:find("facts.supported_images) were not read; candidates for any OS: none", 1, true))
    assert.same({}, err.candidates)
  end)

  it("cleans and quotes what it shows of the facts", function()
    local f = gallery("ubuntu\27[31m'x\n")
    local msg = fails(f)
    assert.truthy(msg:find("the image definition 'ubuntu[31m\\'x '", 1, true))
  end)

  it("treats mistyped sub-fields as unknown", function()
    local f = gallery("ubuntu2204")
    f.image_definition.properties = "Linux"
    f.supported_images[1] = "oops"
    f.supported_images[2].imageReference = 42
    f.image_version.tags = { ["azbatch.nodeAgentSKUId"] = true }
    local msg = fails(f)
    assert.truthy(msg:find("candidates for any OS", 1, true))
  end)
end)

describe("core.choose_node_agent misuse", function()
  local rows = {
    { nil, "bad argument #1 to 'choose_node_agent' %(table expected, got nil%)" },
    { "x", "table expected, got string" },
    { {}, "facts.image: table expected, got nil" },
    { { image = { kind = "iso" } }, "facts.image.kind: expected one of 'marketplace'" },
    { { image = { kind = "marketplace" }, supported_images = "none" },
      "facts.supported_images: table expected, got string" },
    { { image = { kind = "marketplace" }, image_definition = 1 },
      "facts.image_definition: table expected, got number" },
  }
  for i, row in ipairs(rows) do
    it("raises for misuse #" .. i, function()
      assert.error_matches(function() core.choose_node_agent(row[1]) end, row[2])
    end)
  end

  it("takes a JSON null for an absent fact", function()
    local msg = fails { image = { kind = "marketplace", publisher = "a", offer = "b", sku = "c" },
      supported_images = core.null }
    assert.truthy(msg:find("were not read", 1, true))
  end)
end)
