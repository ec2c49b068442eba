-- The custom-image verbs against the emulator's ARM side, with Microsoft
-- Entra ID from the environment as az finds it: preflight, the node agent
-- chosen for pool create, the image chain VHD -> managed image -> gallery
-- version -> replicas -> pool, and the pool image audit.
local azbatch = require "azbatch"
local helper = test_helper

local SUB = "00000000-0000-0000-0000-000000000001"
local RG = "/subscriptions/" .. SUB .. "/resourceGroups/azbatch-dev/providers"
local GALLERY = RG .. "/Microsoft.Compute/galleries/devgallery/images/ubuntu2204"
local VHD = "https://azbatchdevstore.blob.core.windows.net/vhds/ubuntu-2204.vhd"

local function decode(out) return assert(azbatch.json.decode(out)) end

describe("azbatch CLI custom-image verbs", function()
  local emu, entra
  setup(function()
    emu = helper.emulator("--time-scale 200")
    entra = { AZURE_BATCH_ENDPOINT = emu.url, AZURE_AUTHORITY_HOST = emu.url, AZURE_RESOURCE_MANAGER_ENDPOINT = emu.url,
      AZURE_TENANT_ID = helper.DEV_TENANT, AZURE_CLIENT_ID = helper.DEV_CLIENT, AZURE_CLIENT_SECRET = helper.DEV_SECRET,
      AZURE_BATCH_ACCOUNT = helper.DEV_ACCOUNT }
  end)
  teardown(function() if emu then emu.stop() end end)

  local function cli_env(vars, ...)
    local parts = { "env -u AZURE_BATCH_ACCOUNT -u AZURE_BATCH_ACCESS_KEY -u AZURE_BATCH_ENDPOINT -u AZURE_TENANT_ID "
      .. "-u AZURE_CLIENT_ID -u AZURE_CLIENT_SECRET -u AZURE_AUTHORITY_HOST -u AZURE_RESOURCE_MANAGER_ENDPOINT "
      .. "-u AZURE_BATCH_ACCOUNT_RESOURCE_ID -u AZURE_SUBSCRIPTION_ID -u AZURE_FEDERATED_TOKEN_FILE" }
    for k, v in pairs(vars) do parts[#parts + 1] = ("%s=%s"):format(k, helper.shq(v)) end
    parts[#parts + 1] = helper.sanitizer_env() .. helper.shq(helper.ROOT .. "/scripts/azbatch")
    for _, a in ipairs { ... } do parts[#parts + 1] = helper.shq(a) end
    return helper.run(table.concat(parts, " "))
  end
  local function cli(...) return cli_env(entra, ...) end
  local function shared_key(...)
    return cli_env({ AZURE_BATCH_ENDPOINT = emu.url, AZURE_BATCH_ACCOUNT = helper.DEV_ACCOUNT,
      AZURE_BATCH_ACCESS_KEY = helper.DEV_KEY }, ...)
  end
  local function writes() return #helper.control(emu, "journal").value end

  describe("preflight", function()
    local BIG = { "preflight", "--id", "pf", "--vm-size", "Standard_D2s_v3", "--target-dedicated-nodes", "2000",
      "--image", GALLERY .. "/versions/1.0.0", "--node-agent-sku-id", "batch.node.ubuntu 22.04" }

    it("prints the findings with their fixes and exits 1 on an error, writing nothing", function()
      local before = writes()
      local status, out, err = cli(table.unpack(BIG))
      assert.equal(1, status)
      assert.matches("^SEVERITY%s+CODE%s+FIELD\n", out)
      assert.matches("\nerror%s+QUOTA_DEDICATED_CORES%s+pool%.targetDedicatedNodes\n%s+2000 dedicated nodes[^\n]*\n"
        .. "%s+fix: [^\n]+\n", out)
      assert.matches("\nwarning%s+IMAGE_REPLICAS_TOO_FEW%s+[^\n]*\n[^\n]*\n%s+fix: azbatch image replicate "
        .. "%-%-image ", out)
      assert.matches("\nwarning%s+RESIZE_TIMEOUT_SHORT%s+pool%.resizeTimeout\n", out)
      assert.matches("\n1 error%(s%), 2 warning%(s%), 0 note%(s%)\n$", out)
      assert.equal("error: preflight: 1 error(s) found; the pool would fail as specified\n", err)
      assert.equal(before, writes())
    end)

    it("--output json gives {findings, facts}, secrets of the body redacted", function()
      local args = { table.unpack(BIG) }
      table.move({ "--output", "json", "--start-task-command-line", "x", "--start-task-environment-settings",
        "A=1" }, 1, 6, #args + 1, args)
      local path = helper.tempfile(assert(azbatch.json.encode { userAccounts = {
        { name = "u", password = "hunter2-not-for-print" } } }))
      args[#args + 1] = "--json-file"
      args[#args + 1] = path
      local status, out = cli(table.unpack(args))
      os.remove(path)
      assert.equal(1, status)
      local r = decode(out)
      local keys = {}
      for k in pairs(r) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.same({ "facts", "findings" }, keys)
      assert.equal("QUOTA_DEDICATED_CORES", r.findings[1].code)
      assert.equal("westeurope", r.facts.account.location)
      assert.equal("REDACTED", r.facts.pool.userAccounts[1].password)
      assert.falsy(out:find("hunter2", 1, true))
    end)

    it("exits 0 with no error, and says so", function()
      local status, out, err = cli("preflight", "--id", "pf2", "--vm-size", "Standard_D2s_v3",
        "--target-dedicated-nodes", "2", "--image", GALLERY .. "/versions/1.0.0", "--node-agent-sku-id",
        "batch.node.ubuntu 22.04")
      assert.equal(0, status, err)
      assert.equal("no findings: the pool spec passed every check that could be made\n", out)
    end)

    it("with a Shared Key checks what it can and says which ARM checks it skipped", function()
      local status, out = shared_key("preflight", "--id", "pf3", "--vm-size", "Standard_D2s_v3",
        "--target-dedicated-nodes", "2", "--image", GALLERY .. "/versions/1.0.0", "--node-agent-sku-id",
        "batch.node.ubuntu 22.04", "-o", "json", "--query", "findings[].code")
      assert.equal(1, status)
      local codes = decode(out)
      assert.is_true(#codes > 0)
      local saw_auth = false
      for _, c in ipairs(codes) do saw_auth = saw_auth or c:find("SHARED_KEY", 1, true) ~= nil end
      assert.is_true(saw_auth, table.concat(codes, ", "))
    end)

    it("takes the pool create flags' validation: a bad body is exit 1, naming the field", function()
      local status, out, err = cli("preflight", "--id", "bad id!", "--vm-size", "x", "--target-dedicated-nodes", "1",
        "--image", GALLERY, "--node-agent-sku-id", "batch.node.ubuntu 22.04")
      assert.equal(1, status)
      assert.equal("", out)
      assert.matches("^error: pool%.id: ", err)
    end)
  end)

  describe("pool create without --node-agent-sku-id", function()
    it("chooses the agent for the image and says so on stderr", function()
      local status, out, err = cli("pool", "create", "--id", "chosen", "--vm-size", "Standard_D2s_v3",
        "--target-dedicated-nodes", "0", "--image", GALLERY .. "/versions/1.0.0", "--dry-run")
      assert.equal(0, status, err)
      assert.matches("^note: no %-%-node%-agent%-sku%-id given: chose 'batch%.node%.ubuntu 22%.04' %(.+%)\n$", err)
      assert.equal("batch.node.ubuntu 22.04", decode(out).virtualMachineConfiguration.nodeAgentSKUId)
    end)

    it("chooses for --node-agent-sku-id auto too", function()
      local status, out, err = cli("pool", "create", "--id", "chosen", "--vm-size", "Standard_D2s_v3",
        "--target-dedicated-nodes", "0", "--image", GALLERY .. "/versions/1.0.0", "--node-agent-sku-id", "auto",
        "--dry-run")
      assert.equal(0, status, err)
      assert.matches("chose 'batch%.node%.ubuntu 22%.04'", err)
      assert.equal("batch.node.ubuntu 22.04", decode(out).virtualMachineConfiguration.nodeAgentSKUId)
    end)

    it("cannot choose without an account to ask, and says what to pass", function()
      local status, _, err = cli_env({}, "pool", "create", "--id", "x", "--vm-size", "v", "--target-dedicated-nodes",
        "1", "--image", GALLERY, "--dry-run")
      assert.equal(1, status)
      assert.matches("^error: pool%.virtualMachineConfiguration%.nodeAgentSKUId: required field missing %(with no "
        .. "account to ask, azbatch cannot choose one: pass %-%-node%-agent%-sku%-id%)\n$", err)
    end)
  end)

  describe("images end to end", function()
    local managed, version

    it("image from-vhd makes a managed image, with progress lines", function()
      local status, out, err = cli("image", "from-vhd", "--blob", VHD, "--name", "cli-vhd", "--os-type", "linux",
        "--hyperv-generation", "V2", "--interval", "0.05")
      assert.equal(0, status, err)
      local image = decode(out)
      managed = image.id
      assert.equal(RG .. "/Microsoft.Compute/images/cli-vhd", image.id)
      assert.equal("Succeeded", image.properties.provisioningState)
      assert.matches("%dZ cli%-vhd Succeeded\n$", err)
    end)

    it("image from-vhd refuses a blob outside the account's subscription, writing nothing", function()
      local before = writes()
      local status, out, err = cli("image", "from-vhd", "--blob",
        "https://azbatchotherstore.blob.core.windows.net/vhds/ubuntu-2204.vhd", "--name", "x")
      assert.equal(1, status)
      assert.equal("", out)
      assert.matches("error: image_from_vhd%.blob: the storage account [^\n]* is not in the Batch account's "
        .. "subscription", err)
      assert.equal(before, writes())
    end)

    it("image publish makes a gallery version with the replicas the pool needs", function()
      assert.truthy(managed, "needs the image made above")
      local status, out, err = cli("image", "publish", "--source", managed, "--gallery", "devgallery", "--definition",
        "cli-published", "--version", "1.0.0", "--nodes", "1300", "--node-agent-sku-id", "batch.node.ubuntu 22.04",
        "--interval", "0.05", "-o", "table")
      assert.equal(0, status, err)
      assert.matches("^Name%s+Location%s+State%s+Id\n[- ]+\n1%.0%.0%s+westeurope%s+Succeeded%s+/subscriptions/", out)
      version = RG .. "/Microsoft.Compute/galleries/devgallery/images/cli-published/versions/1.0.0"
      assert.truthy(out:find(version, 1, true))
    end)

    it("image replicate raises the region's replicas and waits for them", function()
      assert.truthy(version, "needs the version published above")
      local status, out, err = cli("image", "replicate", "--image", version, "--nodes", "2400", "--interval", "0.05",
        "--query",
        "properties.publishingProfile.targetRegions[?name=='westeurope'].regionalReplicaCount | [0]")
      assert.equal(0, status, err)
      assert.equal("4\n", out)
      assert.matches("%dZ replication Completed", err)
    end)

    it("a pool on the version gets its agent chosen from the version's tags, and pool images shows it", function()
      assert.truthy(version, "needs the version published above")
      local status, _, err = cli("pool", "create", "--id", "on-cli", "--vm-size", "Standard_D2s_v3",
        "--target-dedicated-nodes", "1", "--image", version, "--wait", "--interval", "0.05")
      assert.equal(0, status, err)
      assert.matches("chose 'batch%.node%.ubuntu 22%.04'", err)
      local out
      status, out, err = cli("pool", "images", "--pool-id", "on-cli")
      assert.equal(0, status, err)
      local r = decode(out)[1]
      assert.equal("on-cli", r.id)
      assert.equal("gallery_version", r.kind)
      assert.is_true(r.custom)
      assert.equal("batch.node.ubuntu 22.04", r.node_agent)
      assert.same({ { version = "1.0.0", nodes = 1 } }, r.versions)
    end)

    it("image verbs validate their flags before sending", function()
      local before = helper.control(emu, "stats").requests
      for _, argv in ipairs {
        { "image", "from-vhd", "--name", "x" }, { "image", "publish", "--source", "/x" },
        { "image", "replicate", "--image", version or "/x" },
      } do
        local status, _, err = cli(table.unpack(argv))
        assert.equal(2, status)
        assert.matches("^error: %-%-[%a-]+ is required\n", err)
      end
      assert.equal(before, helper.control(emu, "stats").requests)
    end)

    it("image verbs need Entra ID and say so with a Shared Key", function()
      local status, _, err = shared_key("image", "replicate", "--image", GALLERY .. "/versions/1.0.0", "--nodes", "10")
      assert.equal(1, status)
      assert.matches("^error: this needs Azure Resource Manager, which takes Microsoft Entra ID, not a Shared Key", err)
    end)
  end)

  describe("pool images", function()
    it("lists every pool with kind, image, versions, agent and findings", function()
      local status, out, err = cli("pool", "images", "-o", "table")
      assert.equal(0, status, err)
      assert.matches("^Pool%s+Kind%s+Custom%s+Image%s+Versions%s+NodeAgent%s+Findings\n", out)
      -- a table is for people: the gallery image as gallery/definition/version (JSON keeps the id)
      assert.matches("\nworkers%-v1%s+gallery_version%s+true%s+devgallery/ubuntu2204/1%.0%.0%s+"
        .. "1%.0%.0 %(2%)%s+"
        .. "batch%.node%.ubuntu 22%.04", out)
      status, out = cli("pool", "images", "--filter", "id eq 'workers-v1'", "--no-nodes")
      assert.equal(0, status)
      local reports = decode(out)
      assert.equal(1, #reports)
      assert.same({}, reports[1].versions)
    end)

    it("never prints a token or the client secret, even with --debug", function()
      local status, out, err = cli("pool", "images", "--debug", "--pool-id", "workers-v1")
      assert.equal(0, status, err)
      local text = out .. err
      assert.falsy(text:find(helper.DEV_SECRET, 1, true))
      assert.falsy(text:find("Bearer ", 1, true))
      assert.falsy(text:find("eyJ", 1, true))            -- the start of every JWT
      assert.matches("verbose: GET [^\n]*/subscriptions/[^\n]* %-> 200", err)
    end)
  end)
end)
