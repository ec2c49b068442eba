-- Image references: ARM id grammar, URNs, REST tables, the ImageReference
-- class, and nodeAgentSKUId against the image.
local core = require "azbatch.core"

local SUB = "6e1c8d4e-4b2f-4a8e-9f3c-2d7a1b5c9e01"
local RG = "/subscriptions/" .. SUB .. "/resourceGroups/rg-images"
local COMPUTE = RG .. "/providers/Microsoft.Compute"
local DEF = COMPUTE .. "/galleries/myGallery/images/ubuntu-2204"
local GAL = DEF .. "/versions/1.4.0"
local MANAGED = COMPUTE .. "/images/render-node-v14"
local SHARED_NAME = SUB .. "-MYGALLERY"
local SHARED = "/SharedGalleries/" .. SHARED_NAME .. "/Images/ubuntu-2204/Versions/1.0.0"
local COMMUNITY_NAME = "ContosoPublic-4f2d9a3c-1b7e-4c5a-9d8f-0e6b2a1c3d4f"
local COMMUNITY = "/CommunityGalleries/" .. COMMUNITY_NAME .. "/Images/ubuntu-2204/Versions/latest"

local TEMPLATE = "expected '/subscriptions/{subscriptionId}/resourceGroups/...', "
  .. "'/SharedGalleries/...' or '/CommunityGalleries/...'"
local INCOMPLETE = "incomplete resource id; expected '/subscriptions/{subscriptionId}/"
  .. "resourceGroups/{resourceGroup}/providers/Microsoft.Compute/galleries/{gallery}/"
  .. "images/{image}[/versions/{version}]' or '.../providers/Microsoft.Compute/images/{name}'"
local INCOMPLETE_SHARED = "incomplete resource id; expected '/SharedGalleries/"
  .. "{galleryUniqueName}/Images/{image}[/Versions/{version}]'"
local INCOMPLETE_COMMUNITY = "incomplete resource id; expected '/CommunityGalleries/"
  .. "{publicName}/Images/{image}[/Versions/{version}]'"
local BAD_VERSION = "version must be 'major.minor.patch' or 'latest'"
local BAD_RG = "resource group name must be 1-90 letters, digits, '_', '-', '.', '(' or ')', "
  .. "not ending in '.'"
local BAD_GALLERY = "gallery name must be 1-80 letters, digits, '.' or '_', "
  .. "not starting or ending with '.'"
local BAD_DEF = "image definition name must be 1-80 letters, digits, '_', '-' or '.', "
  .. "starting with a letter or digit and ending with a letter, digit or '_'"
local BAD_NAME = "image name must be 1-80 letters, digits, '_', '-' or '.', "
  .. "starting with a letter or digit and ending with a letter, digit or '_'"
local BAD_CHARS = "resource id must not contain whitespace, control characters, '?' or '#'"
local EMPTY_SEG = "empty segment in resource id (doubled or trailing '/')"
local URN = "expected 'publisher:offer:sku[:version]' or an image resource id starting with '/'"
local NO_IMAGE = "expected publisher, offer and sku, or one of virtualMachineImageId, "
  .. "sharedGalleryImageId or communityGalleryImageId"
local VERSION_ONLY = "Specified property version can only have a value when publisher is set; "
  .. "put the version in the id ('.../versions/{version}')"
local MARKET_MISSING = "required field missing (a marketplace image needs publisher, offer and sku)"
local AGENT = "expected 'batch.node.<os> <version>' such as 'batch.node.ubuntu 22.04'"

-- How messages quote input: "..." with C-style escapes, cut after 80 bytes.
-- Bytes that are not UTF-8 are escaped too.
local function q(s)
  local out, i = {}, 1
  while i <= #s do
    local c = s:byte(i)
    local n = c < 0x80 and 1 or c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC2 and 2 or 0
    if n > 1 and utf8.len(s:sub(i, i + n - 1)) ~= 1 then n = 0 end
    if i - 1 + math.max(n, 1) > 80 then
      out[#out + 1] = "..."
      break
    end
    local ch = s:sub(i, i + math.max(n, 1) - 1)
    if n == 0 then ch = ("\\%03d"):format(c)
    elseif ch == '"' or ch == "\\" then ch = "\\" .. ch
    elseif ch == "\n" then ch = "\\n"
    elseif ch == "\r" then ch = "\\r"
    elseif ch == "\t" then ch = "\\t"
    elseif n == 1 and (c < 0x20 or c == 0x7f) then ch = ("\\%03d"):format(c) end
    out[#out + 1] = ch
    i = i + math.max(n, 1)
  end
  return '"' .. table.concat(out) .. '"'
end

-- Assert the whole fail triple.
local function fails(message, field, v, msg, err)
  assert.is_nil(v)
  assert.equal(message, msg)
  assert.is_table(err)
  assert.equal("validation", err.kind)
  assert.equal(field, err.field)
end

local function raw(t)   -- the REST fields, without the metatable
  local copy = {}
  for k, v in pairs(t) do copy[k] = v end
  return copy
end

describe("core.image_reference with resource ids", function()
  local valid = {
    { GAL, "virtualMachineImageId", "gallery_version",
      { subscription = SUB, resourceGroup = "rg-images", gallery = "myGallery",
        image = "ubuntu-2204", version = "1.4.0" } },
    { DEF, "virtualMachineImageId", "gallery_latest",
      { subscription = SUB, resourceGroup = "rg-images", gallery = "myGallery",
        image = "ubuntu-2204" } },
    { DEF .. "/versions/latest", "virtualMachineImageId", "gallery_latest",
      { subscription = SUB, resourceGroup = "rg-images", gallery = "myGallery",
        image = "ubuntu-2204", version = "latest" } },
    { DEF .. "/versions/LATEST", "virtualMachineImageId", "gallery_latest",
      { subscription = SUB, resourceGroup = "rg-images", gallery = "myGallery",
        image = "ubuntu-2204", version = "LATEST" } },
    { MANAGED, "virtualMachineImageId", "managed_image",
      { subscription = SUB, resourceGroup = "rg-images", name = "render-node-v14" } },
    { SHARED, "sharedGalleryImageId", "shared_gallery",
      { gallery = SHARED_NAME, image = "ubuntu-2204", version = "1.0.0" } },
    { "/SharedGalleries/" .. SHARED_NAME .. "/Images/ubuntu-2204", "sharedGalleryImageId",
      "shared_gallery", { gallery = SHARED_NAME, image = "ubuntu-2204" } },
    { COMMUNITY, "communityGalleryImageId", "community_gallery",
      { gallery = COMMUNITY_NAME, image = "ubuntu-2204", version = "latest" } },
    { "/CommunityGalleries/" .. COMMUNITY_NAME .. "/Images/ubuntu-2204", "communityGalleryImageId",
      "community_gallery", { gallery = COMMUNITY_NAME, image = "ubuntu-2204" } },
    -- keywords match in any case, as ARM matches them
    { "/SUBSCRIPTIONS/" .. SUB:upper() .. "/RESOURCEGROUPS/RG/PROVIDERS/microsoft.compute"
        .. "/GALLERIES/g/IMAGES/i/VERSIONS/0.0.1", "virtualMachineImageId", "gallery_version",
      { subscription = SUB:upper(), resourceGroup = "RG", gallery = "g", image = "i",
        version = "0.0.1" } },
    { "/sharedGalleries/u/images/i/versions/1.2.3", "sharedGalleryImageId", "shared_gallery",
      { gallery = "u", image = "i", version = "1.2.3" } },
    -- name rules at their edges
    { "/subscriptions/" .. SUB .. "/resourceGroups/" .. ("r"):rep(90)
        .. "/providers/Microsoft.Compute/images/" .. ("n"):rep(79) .. "_",
      "virtualMachineImageId", "managed_image",
      { subscription = SUB, resourceGroup = ("r"):rep(90), name = ("n"):rep(79) .. "_" } },
    { "/subscriptions/" .. SUB .. "/resourceGroups/my_rg-(1).x/providers/Microsoft.Compute"
        .. "/galleries/g.a_l/images/9.def-x_/versions/2147483647.0.0123456789",
      "virtualMachineImageId", "gallery_version",
      { subscription = SUB, resourceGroup = "my_rg-(1).x", gallery = "g.a_l", image = "9.def-x_",
        version = "2147483647.0.0123456789" } },
    { "/subscriptions/" .. SUB .. "/resourceGroups/grupo-ñandú/providers/Microsoft.Compute"
        .. "/images/n", "virtualMachineImageId", "managed_image",
      { subscription = SUB, resourceGroup = "grupo-ñandú", name = "n" } },
    { "/subscriptions/" .. SUB .. "/resourceGroups/" .. ("é"):rep(90) .. "/providers/Microsoft.Compute"
        .. "/images/n", "virtualMachineImageId", "managed_image",
      { subscription = SUB, resourceGroup = ("é"):rep(90), name = "n" } },
  }
  for _, row in ipairs(valid) do
    local id, field, kind, parts = row[1], row[2], row[3], row[4]
    parts.kind = kind
    it(("takes a %s id as a string and as %s"):format(kind, field), function()
      for _, input in ipairs { id, { [field] = id } } do
        local ref, msg, err = core.image_reference(input)
        assert.is_nil(msg, msg)
        assert.is_nil(err)
        assert.same({ [field] = id }, raw(ref))
        assert.equal("azbatch.ImageReference", getmetatable(ref).__name)
        assert.equal(kind, ref:kind())
        assert.same(parts, ref:parts())
        assert.is_true(ref:is_custom())
        assert.is_nil(ref:urn())
        assert.equal("azbatch.ImageReference(" .. id .. ")", tostring(ref))
      end
    end)
  end

  -- id, message, the part quoted after "got" (nil: the whole id)
  local invalid = {
    { "/subscriptions/not-a-guid/resourceGroups/rg", "subscription id must be a GUID", "not-a-guid" },
    { "/subscriptions/6e1c8d4e4b2f-4a8e-9f3c-2d7a1b5c9e01-0000/resourceGroups/rg/providers/"
        .. "Microsoft.Compute/images/n", "subscription id must be a GUID",
      "6e1c8d4e4b2f-4a8e-9f3c-2d7a1b5c9e01-0000" },
    { "/subscriptions/6e1c8d4e-4b2f-4a8e-9f3c-2d7a1b5c9e0g/resourceGroups/rg",
      "subscription id must be a GUID", "6e1c8d4e-4b2f-4a8e-9f3c-2d7a1b5c9e0g" },
    { "/subscriptions/" .. SUB .. "/resourceGroup/rg/providers/Microsoft.Compute/images/n",
      "expected 'resourceGroups' after the subscription id", "resourceGroup" },
    { "/subscriptions/" .. SUB .. "/resourceGroups/rg./providers/Microsoft.Compute/images/n",
      BAD_RG, "rg." },
    { "/subscriptions/" .. SUB .. "/resourceGroups/rg!x/providers/Microsoft.Compute/images/n",
      BAD_RG, "rg!x" },
    { "/subscriptions/" .. SUB .. "/resourceGroups/" .. ("r"):rep(91)
        .. "/providers/Microsoft.Compute/images/n", BAD_RG, ("r"):rep(91) },
    { "/subscriptions/" .. SUB .. "/resourceGroups/" .. ("é"):rep(91)
        .. "/providers/Microsoft.Compute/images/n", BAD_RG, ("é"):rep(91) },
    { RG .. "/provider/Microsoft.Compute/images/n",
      "expected 'providers' after the resource group name", "provider" },
    { RG .. "/providers/Microsoft.Batch/images/n", "provider must be Microsoft.Compute",
      "Microsoft.Batch" },
    { COMPUTE .. "/virtualMachines/vm1",
      "expected 'galleries' or 'images' after providers/Microsoft.Compute", "virtualMachines" },
    { COMPUTE .. "/galleries/my-gallery/images/d", BAD_GALLERY, "my-gallery" },
    { COMPUTE .. "/galleries/.gal/images/d", BAD_GALLERY, ".gal" },
    { COMPUTE .. "/galleries/gal./images/d", BAD_GALLERY, "gal." },
    { COMPUTE .. "/galleries/" .. ("g"):rep(81) .. "/images/d", BAD_GALLERY, ("g"):rep(81) },
    { COMPUTE .. "/galleries/g/image/d", "expected 'images' after galleries/{gallery}", "image" },
    { COMPUTE .. "/galleries/g/images/-ubuntu", BAD_DEF, "-ubuntu" },
    { COMPUTE .. "/galleries/g/images/ubuntu-", BAD_DEF, "ubuntu-" },
    { COMPUTE .. "/galleries/g/images/ubuntu.", BAD_DEF, "ubuntu." },
    { COMPUTE .. "/galleries/g/images/" .. ("d"):rep(81), BAD_DEF, ("d"):rep(81) },
    { DEF .. "/version/1.0.0", "expected 'versions' after images/{image}", "version" },
    { DEF .. "/versions/1.4", BAD_VERSION, "1.4" },
    { DEF .. "/versions/1.4.0.1", BAD_VERSION, "1.4.0.1" },
    { DEF .. "/versions/v1.4.0", BAD_VERSION, "v1.4.0" },
    { DEF .. "/versions/1.4.x", BAD_VERSION, "1.4.x" },
    { DEF .. "/versions/1..0", BAD_VERSION, "1..0" },
    { DEF .. "/versions/1.2147483648.0", BAD_VERSION, "1.2147483648.0" },
    { DEF .. "/versions/12345678901.0.0", BAD_VERSION, "12345678901.0.0" },
    { DEF .. "/versions/latest2", BAD_VERSION, "latest2" },
    { GAL .. "/extra", "unexpected segment after versions/{version}", "extra" },
    { DEF .. "/versions", INCOMPLETE },
    { COMPUTE .. "/galleries/g", INCOMPLETE },
    { COMPUTE .. "/galleries/g/images", INCOMPLETE },
    { COMPUTE .. "/images", INCOMPLETE },
    { COMPUTE, INCOMPLETE },
    { "/subscriptions/" .. SUB, INCOMPLETE },
    { "/subscriptions", INCOMPLETE },
    { MANAGED .. "/versions/1.0.0", "unexpected segment after images/{name}", "versions" },
    { COMPUTE .. "/images/-bad", BAD_NAME, "-bad" },
    { GAL .. "/", EMPTY_SEG },
    { RG .. "//providers/Microsoft.Compute/images/n", EMPTY_SEG },
    { "/", EMPTY_SEG },
    { GAL .. "?api-version=2025-03-03", BAD_CHARS },
    { GAL .. "#frag", BAD_CHARS },
    { GAL .. " ", BAD_CHARS },
    { " " .. GAL, BAD_CHARS },
    { GAL:sub(1, 30) .. "\0" .. GAL:sub(31), BAD_CHARS },
    { "subscriptions/" .. SUB, TEMPLATE },
    { "/foo/bar", TEMPLATE },
    { "/providers/Microsoft.Compute/images/n", TEMPLATE },
    { ("/a"):rep(17), "resource id has too many segments for an image id" },
    { "/SharedGalleries/u", INCOMPLETE_SHARED },
    { "/SharedGalleries/u/Images", INCOMPLETE_SHARED },
    { "/SharedGalleries/u/Images/i/Versions", INCOMPLETE_SHARED },
    { "/SharedGalleries/-u/Images/i", "shared gallery unique name must be 1-160 letters, digits, "
        .. "'_', '-' or '.', starting and ending with a letter or digit", "-u" },
    { "/SharedGalleries/u/Image/i", "expected 'Images' after SharedGalleries/{galleryUniqueName}",
      "Image" },
    { "/SharedGalleries/u/Images/i/Version/1.0.0", "expected 'Versions' after Images/{image}",
      "Version" },
    { "/SharedGalleries/u/Images/i/Versions/1.0", BAD_VERSION, "1.0" },
    { "/SharedGalleries/u/Images/i/Versions/1.0.0/x", "unexpected segment after Versions/{version}",
      "x" },
    { "/SharedGalleries/u/Images/i_-/Versions/1.0.0", BAD_DEF, "i_-" },
    { "/CommunityGalleries/c", INCOMPLETE_COMMUNITY },
    { "/CommunityGalleries/c!/Images/i", "community gallery public name must be 1-160 letters, "
        .. "digits, '_', '-' or '.', starting and ending with a letter or digit", "c!" },
    { "/CommunityGalleries/c/Imgs/i", "expected 'Images' after CommunityGalleries/{publicName}",
      "Imgs" },
    { "/CommunityGalleries/c/Images/i/Versions/one", BAD_VERSION, "one" },
  }
  for _, row in ipairs(invalid) do
    local id, why, got = row[1], row[2], row[3] or row[1]
    it(("rejects %s: %s"):format(q(id), why), function()
      local text = why .. ", got " .. q(got)
      local field = "virtualMachineImageId"
      if id:lower():find("^/sharedgalleries") then field = "sharedGalleryImageId" end
      if id:lower():find("^/communitygalleries") then field = "communityGalleryImageId" end
      fails("imageReference." .. field .. ": " .. text, "imageReference." .. field,
        core.image_reference { [field] = id })
      if id:sub(1, 1) == "/" then   -- the string form reports at the root
        fails("imageReference: " .. text, "imageReference", core.image_reference(id))
      end
    end)
  end

  it("fuzz finding: a resource group of bytes that are not UTF-8 is refused", function()
    -- stray continuation bytes once counted as no characters at all
    for _, rg in ipairs { ("\x97"):rep(1000) .. "ub", "ub\xff", "\xc3", ("\xbf"):rep(91) } do
      local id = "/subscriptions/" .. SUB .. "/resourceGroups/" .. rg
        .. "/providers/Microsoft.Compute/galleries/g/images/u1"
      fails("imageReference: " .. BAD_RG .. ", got " .. q(rg), "imageReference", core.image_reference(id))
      local _, msg, err = core.image_reference { virtualMachineImageId = id }
      assert.equal("imageReference.virtualMachineImageId: not valid UTF-8 (and 1 more)", msg)
      assert.equal(2, err.count)
    end
    assert.equal('"ub\\255"', q("ub\xff"))   -- the helper escapes as the core does
  end)

  local wrong_field = {
    { "virtualMachineImageId", SHARED, "expected a gallery image or managed image id "
      .. "('/subscriptions/.../providers/Microsoft.Compute/...'); '/SharedGalleries/...' ids go "
      .. "in sharedGalleryImageId and '/CommunityGalleries/...' ids in communityGalleryImageId" },
    { "virtualMachineImageId", COMMUNITY, "expected a gallery image or managed image id "
      .. "('/subscriptions/.../providers/Microsoft.Compute/...'); '/SharedGalleries/...' ids go "
      .. "in sharedGalleryImageId and '/CommunityGalleries/...' ids in communityGalleryImageId" },
    { "sharedGalleryImageId", GAL,
      "expected '/SharedGalleries/{galleryUniqueName}/Images/{image}[/Versions/{version}]'" },
    { "sharedGalleryImageId", COMMUNITY,
      "expected '/SharedGalleries/{galleryUniqueName}/Images/{image}[/Versions/{version}]'" },
    { "communityGalleryImageId", MANAGED,
      "expected '/CommunityGalleries/{publicName}/Images/{image}[/Versions/{version}]'" },
    { "communityGalleryImageId", SHARED,
      "expected '/CommunityGalleries/{publicName}/Images/{image}[/Versions/{version}]'" },
  }
  for _, row in ipairs(wrong_field) do
    it(("says where a %s id goes when given in %s"):format(row[2]:match("^/(%a+)"), row[1]),
      function()
        fails(("imageReference.%s: %s, got %s"):format(row[1], row[3], q(row[2])),
          "imageReference." .. row[1], core.image_reference { [row[1]] = row[2] })
      end)
  end

  it("keeps the seed document's gallery id form", function()
    local id = "/subscriptions/a1b2c3d4-e5f6-4a5b-8c7d-0123456789ab/resourceGroups/batch-rg"
      .. "/providers/Microsoft.Compute/galleries/BatchGallery/images/ubuntu-22.04-batch"
      .. "/versions/2024.1.15"
    local ref = assert(core.image_reference(id))
    assert.same({ virtualMachineImageId = id }, raw(ref))
    assert.equal("gallery_version", ref:kind())
  end)
end)

describe("core.image_reference with URNs", function()
  local valid = {
    { "Canonical:ubuntu-24_04-lts:server", { publisher = "Canonical", offer = "ubuntu-24_04-lts",
      sku = "server", version = "latest" } },
    { "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:22.04.202401010",
      { publisher = "Canonical", offer = "0001-com-ubuntu-server-jammy", sku = "22_04-lts-gen2",
        version = "22.04.202401010" } },
    { "MicrosoftWindowsServer:WindowsServer:2022-datacenter:latest",
      { publisher = "MicrosoftWindowsServer", offer = "WindowsServer", sku = "2022-datacenter",
        version = "latest" } },
  }
  for _, row in ipairs(valid) do
    it("takes " .. row[1], function()
      local ref, msg = core.image_reference(row[1])
      assert.is_nil(msg, msg)
      assert.same(row[2], raw(ref))
      assert.equal("marketplace", ref:kind())
      local parts = raw(row[2])
      parts.kind = "marketplace"
      assert.same(parts, ref:parts())
      assert.is_false(ref:is_custom())
      local urn = ("%s:%s:%s:%s"):format(row[2].publisher, row[2].offer, row[2].sku, row[2].version)
      assert.equal(urn, ref:urn())
      assert.equal("azbatch.ImageReference(" .. urn .. ")", tostring(ref))
    end)
  end

  local invalid = {
    "", "Canonical", "Canonical:ubuntu", "Canonical::server", ":ubuntu:server",
    "Canonical:ubuntu:server:", "a:b:c:d:e", "Canonical:ubuntu lts:server",
    "Canonical:ubuntu:server\n", "Canonical:ubuntu\0:server", "subscriptions/x/y",
  }
  for _, urn in ipairs(invalid) do
    it("rejects " .. q(urn), function()
      fails("imageReference: " .. URN .. ", got " .. q(urn), "imageReference",
        core.image_reference(urn))
    end)
  end
end)

describe("core.image_reference with tables", function()
  local OS = { publisher = "Canonical", offer = "ubuntu-24_04-lts", sku = "server" }

  it("keeps only the fields given (no version default for tables)", function()
    local ref = assert(core.image_reference(raw(OS)))
    assert.same(OS, raw(ref))
    assert.equal("Canonical:ubuntu-24_04-lts:server:latest", ref:urn())
    assert.same({ kind = "marketplace", publisher = "Canonical", offer = "ubuntu-24_04-lts",
      sku = "server" }, ref:parts())
  end)

  it("round-trips a GET response with exactVersion", function()
    local got = { publisher = "Canonical", offer = "ubuntu-24_04-lts", sku = "server",
      version = "latest", exactVersion = "latest" }
    assert.same(got, raw(assert(core.image_reference(got))))
    local gal = { virtualMachineImageId = DEF, exactVersion = "1.4.0" }
    local ref = assert(core.image_reference(gal))
    assert.same(gal, raw(ref))
    assert.equal("gallery_latest", ref:kind())
  end)

  it("returns an ImageReference that is still valid as is", function()
    local ref = assert(core.image_reference(GAL))
    assert.equal(ref, core.image_reference(ref))
    ref.virtualMachineImageId = MANAGED          -- edited, still valid
    assert.equal(ref, core.image_reference(ref))
    assert.equal("managed_image", ref:kind())
    ref.virtualMachineImageId = DEF .. "/versions/1"
    fails("imageReference.virtualMachineImageId: " .. BAD_VERSION .. ', got "1"',
      "imageReference.virtualMachineImageId", core.image_reference(ref))
  end)

  it("copies a table of another class", function()
    local t = setmetatable(raw(OS), { __index = function() return "x" end })
    local ref = assert(core.image_reference(t))
    assert.not_equal(t, ref)
    assert.same(OS, raw(ref))
  end)

  -- input, message after "imageReference", field after "imageReference", more errors
  -- an unknown key is reported at its own path; one that looks like a
  -- missing field stands for it (no second "required field missing")
  local invalid = {
    { { virtualMachineImageID = GAL },
      ".virtualMachineImageID: unknown field (did you mean 'virtualMachineImageId'?)",
      ".virtualMachineImageID" },
    { { virtualMachineImageId = GAL, vmImageId = "x" }, ".vmImageId: unknown field", ".vmImageId" },
    { { Publisher = "Canonical", offer = "o", sku = "s" },
      ".Publisher: unknown field (did you mean 'publisher'?)", ".Publisher" },
    { { publisher = "Canonical", ofer = "o", sku = "s" },
      ".ofer: unknown field (did you mean 'offer'?)", ".ofer" },
    { { publisher = "Canonical", offer = "o", sku = "s", verison = "1" },
      ".verison: unknown field (did you mean 'version'?)", ".verison" },
    { { publisher = "Canonical", Publisher = "x", offer = "o", sku = "s" },
      ".Publisher: unknown field (did you mean 'publisher'?)", ".Publisher" },
    { { publisher = "Canonical", offer = "o", sku = "s", id = "x" }, ".id: unknown field", ".id" },
    { { publisher = "Canonical", offer = "o", sku = "s", ["it's"] = 1 },
      "[\"it's\"]: unknown field", "[\"it's\"]" },
    { { publisher = "Canonical", offer = "o", sku = "s", ["a\"b"] = 1 },
      "[\"a\\\"b\"]: unknown field", "[\"a\\\"b\"]" },
    { { ofer = "o", sku = "s" }, ".ofer: unknown field (did you mean 'offer'?) (and 1 more)", ".ofer", 2 },
    { {}, ": " .. NO_IMAGE, "" },
    { { exactVersion = "1.0.0" }, ": " .. NO_IMAGE, "" },
    { { version = "1.0.0" }, ": " .. NO_IMAGE, "" },
    { { publisher = "Canonical", offer = "o" }, ".sku: " .. MARKET_MISSING, ".sku" },
    { { offer = "o", sku = "s", version = "1" }, ".publisher: " .. MARKET_MISSING, ".publisher" },
    { { publisher = "p" }, ".offer: " .. MARKET_MISSING .. " (and 1 more)", ".offer", 2 },
    { { virtualMachineImageId = GAL, version = "1.4.0" }, ".version: " .. VERSION_ONLY, ".version" },
    { { sharedGalleryImageId = SHARED, version = "latest" }, ".version: " .. VERSION_ONLY,
      ".version" },
    { { virtualMachineImageId = GAL, publisher = "Canonical", offer = "o", sku = "s" },
      ".publisher: cannot be combined with virtualMachineImageId; name the image one way only",
      ".publisher" },
    { { virtualMachineImageId = GAL, sku = "s" },
      ".sku: cannot be combined with virtualMachineImageId; name the image one way only", ".sku" },
    { { virtualMachineImageId = GAL, sharedGalleryImageId = SHARED },
      ".sharedGalleryImageId: cannot be combined with virtualMachineImageId; name the image one "
        .. "way only", ".sharedGalleryImageId" },
    { { sharedGalleryImageId = SHARED, communityGalleryImageId = COMMUNITY },
      ".communityGalleryImageId: cannot be combined with sharedGalleryImageId; name the image "
        .. "one way only", ".communityGalleryImageId" },
    { { publisher = "", offer = "o", sku = "s" }, ".publisher: must not be empty", ".publisher" },
    { { virtualMachineImageId = "" }, ".virtualMachineImageId: must not be empty",
      ".virtualMachineImageId" },
    { { publisher = "Canonical", offer = "o", sku = "s", exactVersion = "" },
      ".exactVersion: must not be empty", ".exactVersion" },
    { { publisher = "Canonical", offer = "o", sku = "s", version = 1 },
      ".version: expected string, got number", ".version" },
    { { publisher = "Canonical", offer = { "nested" }, sku = "s" },
      ".offer: expected string, got table", ".offer" },
    { { virtualMachineImageId = { GAL } }, ".virtualMachineImageId: expected string, got table",
      ".virtualMachineImageId" },
    { { publisher = true, offer = "o", sku = "s" }, ".publisher: expected string, got boolean",
      ".publisher" },
    { { publisher = "Canonical", offer = "o", sku = "2022 datacenter" },
      ".sku: must not contain whitespace or control characters", ".sku" },
    { { publisher = "Canonical", offer = "o\0x", sku = "s" },
      ".offer: must not contain whitespace or control characters", ".offer" },
    { { publisher = "Canonical", offer = "o", sku = "s", [1] = "x" },
      "[1]: unexpected number key (field names are strings)", "[1]" },
    { { publisher = "Canonical", offer = "o", sku = "s", [1.5] = "x" },
      ": unexpected number key (field names are strings)", "" },
    { { publisher = "Canonical", offer = "o", sku = "s", [true] = "x" },
      ": unexpected boolean key (field names are strings)", "" },
    { { publisher = "Canonical", offer = "o", sku = "s", [{}] = "x" },
      ": unexpected table key (field names are strings)", "" },
    { { "Canonical", "o", "s" }, ": " .. NO_IMAGE .. " (and 3 more)", "", 4 },
  }
  for i, row in ipairs(invalid) do
    it(("rejects table #%d: %s"):format(i, row[2]), function()
      local v, msg, err = core.image_reference(row[1])
      fails("imageReference" .. row[2], "imageReference" .. row[3], v, msg, err)
      assert.equal(row[4] or 1, err.count)
      assert.equal(row[4] or 1, #err.errors)
      assert.equal("imageReference" .. row[3], err.errors[1].field)
    end)
  end

  it("never crashes on weird input", function()
    local huge = ("x"):rep(1 << 20)
    fails("imageReference: " .. URN .. ", got " .. q(huge), "imageReference",
      core.image_reference(huge))
    fails("imageReference: " .. TEMPLATE .. ", got " .. q("/" .. huge), "imageReference",
      core.image_reference("/" .. huge))
    local v, msg = core.image_reference { [huge] = 1, publisher = "p", offer = "o", sku = "s" }
    assert.is_nil(v)
    assert.equal('imageReference["' .. ("x"):rep(80) .. '..."]: unknown field', msg)
    v, msg = core.image_reference { ["\0\1\255"] = 1, publisher = "p", offer = "o", sku = "s" }
    assert.is_nil(v)
    assert.equal('imageReference["\\000\\001\\255"]: unknown field', msg)
    v, msg = core.image_reference { virtualMachineImageId = GAL .. ("/x"):rep(1000) }
    assert.is_nil(v)
    assert.equal("imageReference.virtualMachineImageId: resource id has too many segments for an "
      .. "image id, got " .. q(GAL .. ("/x"):rep(1000)), msg)
    local many = {}
    for k = 1, 100 do many["bad" .. k] = k end
    local _, _, err = core.image_reference(many)
    assert.equal(101, err.count)
    assert.equal(20, #err.errors)
    -- a self-referencing table and a table full of nested tables
    local loop = {}
    loop.publisher = loop
    assert.is_nil(core.image_reference(loop))
    assert.is_nil(core.image_reference { publisher = { offer = { sku = {} } } })
  end)

  local misuse = { { nil, "nil" }, { 42, "number" }, { true, "boolean" }, { print, "function" } }
  for _, row in ipairs(misuse) do
    it("raises on a " .. row[2], function()
      assert.error_matches(function() core.image_reference(row[1]) end,
        "bad argument #1 to 'image_reference' %(table or string expected, got " .. row[2] .. "%)")
    end)
  end
end)

describe("ImageReference methods", function()
  local ref = assert(core.image_reference(GAL))
  local methods = { "kind", "parts", "is_custom", "urn" }
  for _, name in ipairs(methods) do
    it(name .. " raises on something that is not an ImageReference", function()
      assert.error_matches(function() ref[name]({ virtualMachineImageId = GAL }) end,
        "azbatch.ImageReference expected, got table")
      assert.error_matches(function() ref[name]("x") end,
        "azbatch.ImageReference expected, got string")
    end)
    it(name .. " raises on an ImageReference edited into nonsense", function()
      local bad = assert(core.image_reference(MANAGED))
      bad.virtualMachineImageId = "/nope"
      assert.error_matches(function() bad[name](bad) end,
        "invalid azbatch.ImageReference %(modified after creation%?%)")
    end)
  end

  it("tostring never raises", function()
    local bad = assert(core.image_reference(MANAGED))
    bad.virtualMachineImageId = nil
    assert.equal("azbatch.ImageReference(invalid)", tostring(bad))
  end)

  it("methods live outside the table, so it holds only REST fields", function()
    assert.is_nil(rawget(ref, "kind"))
    local keys = {}
    for k in pairs(ref) do keys[#keys + 1] = k end
    assert.same({ "virtualMachineImageId" }, keys)
  end)
end)

describe("core.check_node_agent", function()
  local WIN = "MicrosoftWindowsServer:WindowsServer:2022-datacenter"
  local FIELD = "vmConfiguration.nodeAgentSKUId"

  local ok_rows = {
    { "Canonical:ubuntu-24_04-lts:server", "batch.node.ubuntu 24.04" },
    { "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2", "batch.node.ubuntu 22.04" },
    { "Canonical:0001-com-ubuntu-server-focal:20_04-lts", "batch.node.ubuntu 20.04" },
    { "Canonical:UbuntuServer:18.04-LTS", "batch.node.ubuntu 18.04" },
    { "Canonical:UbuntuServer:18.04-LTS", "BATCH.NODE.UBUNTU 18.04" },
    { WIN, "batch.node.windows amd64" },
    { "MicrosoftWindowsDesktop:windows-11:win11-23h2-pro", "batch.node.windows amd64" },
    { "microsoft-dsvm:dsvm-win-2019:winserver-2019", "batch.node.windows amd64" },
    { "microsoft-azure-batch:ubuntu-server-container:20-04-lts", "batch.node.ubuntu 20.04" },
    { "microsoft-azure-batch:centos-container:7-8", "batch.node.centos 7" },
    { "OpenLogic:CentOS:7.2", "batch.node.centos 7" },
    { "credativ:Debian:8", "batch.node.debian 8" },
    { "Debian:debian-12:12", "batch.node.debian 12" },
    { "almalinux:almalinux-x86_64:9-gen2", "batch.node.el 9" },
    { "RedHat:RHEL:9_4", "batch.node.el 9" },
    { "MicrosoftCBLMariner:cbl-mariner:cbl-mariner-2", "batch.node.mariner 2.0" },
    { "MicrosoftCBLMariner:azure-linux-3:azure-linux-3", "batch.node.azurelinux 3.0" },
    { "SomePublisher:some-offer:some-sku", "batch.node.windows amd64" },   -- unknown OS
    { "SomePublisher:some-offer:some-sku", "batch.node.ubuntu 22.04" },
    { GAL, "batch.node.ubuntu 22.04" },         -- custom images: nothing to tell offline
    { MANAGED, "batch.node.windows amd64" },
    { SHARED, "batch.node.el 9" },
    { COMMUNITY, "batch.node.debian 12" },
  }
  for _, row in ipairs(ok_rows) do
    it(("accepts %s with %s"):format(row[1], row[2]), function()
      local ok, warnings = core.check_node_agent(row[1], row[2])
      assert.is_true(ok, warnings)
      assert.same({}, warnings)
    end)
  end

  -- the official REST example pairs ubuntu-24_04-lts with batch.node.ubuntu 20.04
  local warn_rows = {
    { { publisher = "Canonical", offer = "ubuntu-24_04-lts", sku = "server", version = "latest" },
      "batch.node.ubuntu 20.04", "batch.node.ubuntu 24.04",
      "'batch.node.ubuntu 20.04' is for another Ubuntu release than the image "
        .. "Canonical:ubuntu-24_04-lts:server (Ubuntu 24.04); check the pair with GET /supportedimages" },
    { "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2", "batch.node.ubuntu 20.04",
      "batch.node.ubuntu 22.04",
      "'batch.node.ubuntu 20.04' is for another Ubuntu release than the image "
        .. "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2 (Ubuntu 22.04); check the pair "
        .. "with GET /supportedimages" },
    { "Canonical:0001-com-ubuntu-server-focal:20_04-lts", "batch.node.ubuntu 22.04",
      "batch.node.ubuntu 20.04",
      "'batch.node.ubuntu 22.04' is for another Ubuntu release than the image "
        .. "Canonical:0001-com-ubuntu-server-focal:20_04-lts (Ubuntu 20.04); check the pair with "
        .. "GET /supportedimages" },
    { "Canonical:UbuntuServer:18.04-LTS", "batch.node.el 9", "batch.node.ubuntu 18.04",
      "'batch.node.el 9' is not an Ubuntu agent but the image Canonical:UbuntuServer:18.04-LTS "
        .. "is Ubuntu 18.04" },
  }
  for _, row in ipairs(warn_rows) do
    it(("warns, without failing, on %s"):format(row[2]), function()
      local ok, warnings = core.check_node_agent(row[1], row[2])
      assert.is_true(ok, warnings)
      assert.same({ { field = FIELD, message = row[4], recommended = row[3] } }, warnings)
    end)
  end

  local fail_rows = {
    { WIN, "batch.node.ubuntu 22.04", FIELD .. ": 'batch.node.ubuntu 22.04' is a Linux agent but the "
      .. "image MicrosoftWindowsServer:WindowsServer:2022-datacenter is Windows; use "
      .. "'batch.node.windows amd64'", FIELD },
    { "SomePublisher:windows-server-custom:s", "batch.node.el 9", FIELD .. ": 'batch.node.el 9' is a "
      .. "Linux agent but the image SomePublisher:windows-server-custom:s is Windows; use "
      .. "'batch.node.windows amd64'", FIELD },
    { "Canonical:ubuntu-24_04-lts:server", "batch.node.windows amd64", FIELD .. ": "
      .. "'batch.node.windows amd64' is a Windows agent but the image "
      .. "Canonical:ubuntu-24_04-lts:server is Linux; use 'batch.node.ubuntu 24.04'", FIELD },
    { "RedHat:RHEL:9_4", "batch.node.Windows amd64", FIELD .. ": 'batch.node.Windows amd64' is a "
      .. "Windows agent but the image RedHat:RHEL:9_4 is Linux; use the Linux agent GET "
      .. "/supportedimages lists for it", FIELD },
    { GAL, "ubuntu 22.04", FIELD .. ": " .. AGENT .. ', got "ubuntu 22.04"', FIELD },
    { GAL, "batch.node.ubuntu", FIELD .. ": " .. AGENT .. ', got "batch.node.ubuntu"', FIELD },
    { GAL, "batch.node.ubuntu  22.04", FIELD .. ": " .. AGENT .. ', got "batch.node.ubuntu  22.04"',
      FIELD },
    { GAL, "batch.node. 22.04", FIELD .. ": " .. AGENT .. ', got "batch.node. 22.04"', FIELD },
    { GAL, "batch.node.ubuntu 22.04 ", FIELD .. ": " .. AGENT .. ', got "batch.node.ubuntu 22.04 "',
      FIELD },
    { GAL, "batch.node.ubuntu 22.04\0x", FIELD .. ": " .. AGENT
      .. ', got "batch.node.ubuntu 22.04\\000x"', FIELD },
    { GAL, "", FIELD .. ": " .. AGENT .. ', got ""', FIELD },
    { "Canonical:ubuntu", "batch.node.ubuntu 22.04", "vmConfiguration.imageReference: " .. URN
      .. ', got "Canonical:ubuntu"', "vmConfiguration.imageReference" },
    { { virtualMachineImageId = DEF .. "/versions/1" }, "batch.node.ubuntu 22.04",
      "vmConfiguration.imageReference.virtualMachineImageId: " .. BAD_VERSION .. ', got "1"',
      "vmConfiguration.imageReference.virtualMachineImageId" },
  }
  for _, row in ipairs(fail_rows) do
    it(("rejects %s with %s"):format(type(row[1]) == "string" and row[1] or "a table", q(row[2])),
      function()
        fails(row[3], row[4], core.check_node_agent(row[1], row[2]))
      end)
  end

  it("raises on misuse", function()
    assert.error_matches(function() core.check_node_agent(GAL) end,
      "bad argument #2 to 'check_node_agent' %(string expected, got no value%)")
    assert.error_matches(function() core.check_node_agent(nil, "batch.node.ubuntu 22.04") end,
      "bad argument #1 to 'check_node_agent' %(table or string expected, got nil%)")
  end)
end)

describe("image_reference and UTF-8", function()
  local azbatch = require "azbatch"
  it("rejects invalid UTF-8 in a marketplace field, which could not be sent as JSON", function()
    local ref, msg, err = azbatch.image_reference { publisher = "Canonical", offer = "ubuntu\xff", sku = "server" }
    assert.is_nil(ref)
    assert.equal("imageReference.offer: not valid UTF-8", msg)
    assert.same({ "validation", "imageReference.offer" }, { err.kind, err.field })
  end)
  it("rejects invalid UTF-8 in a URN", function()
    local ref, msg, err = azbatch.image_reference "Canonical:ubuntu\xc3:server"
    assert.is_nil(ref)
    assert.equal("imageReference: not valid UTF-8", msg)
    assert.equal("imageReference", err.field)
  end)
end)

describe("a VHD given as the image", function()
  local VHD = "https://devstore.blob.core.windows.net/vhds/ubuntu-2204.vhd"
  local WHAT = "a VHD blob: Batch takes a managed image or a Compute Gallery image version made from the VHD"

  it("is told apart from other URLs", function()
    assert.is_true(core.is_vhd(VHD))
    assert.is_true(core.is_vhd("http://127.0.0.1:10000/devstoreaccount1/vhds/a.VHD"))
    assert.is_false(core.is_vhd("https://devstore.blob.core.windows.net/vhds/notes.txt"))
    assert.is_false(core.is_vhd("/subscriptions/x/images/y.vhd"))
    assert.is_false(core.is_vhd("https://.vhd"))
  end)

  it("is refused as an image reference, with what to do instead", function()
    for _, x in ipairs { VHD, { virtualMachineImageId = VHD } } do
      local ref, msg, err = core.image_reference(x)
      assert.is_nil(ref)
      assert.truthy(msg:find(WHAT, 1, true), msg)
      assert.truthy(msg:find("azbatch image from-vhd --blob URL --name NAME", 1, true), msg)
      assert.are.equal("validation", err.kind)
    end
  end)

  it("is refused as the legacy osDisk.imageUris, at its own path", function()
    local ok, msg, err = core.pool_spec { id = "p", vmSize = "Standard_A1_v2", targetDedicatedNodes = 1,
      virtualMachineConfiguration = { imageReference = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts",
        nodeAgentSKUId = "batch.node.ubuntu 22.04", osDisk = { imageUris = { VHD } } } }
    assert.is_nil(ok)
    assert.are.equal("pool.virtualMachineConfiguration.osDisk.imageUris", err.field)
    assert.truthy(msg:find(WHAT, 1, true), msg)
  end)
end)
