-- The CLI as a user runs it: exit statuses, messages, the dry-run body.
local azbatch = require "azbatch"
local helper = test_helper

local GALLERY = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/imaging"
  .. "/providers/Microsoft.Compute/galleries/myGallery/images/myImage/versions/1.0.0"

describe("azbatch CLI (offline)", function()
  it("prints the seed az example's exact body on --dry-run", function()
    local status, out, err = helper.cli("pool", "create", "--id", "mypool", "--vm-size", "Standard_A1_v2",
      "--target-dedicated-nodes", "2", "--image", GALLERY, "--node-agent-sku-id", "batch.node.ubuntu 16.04",
      "--dry-run")
    assert.equal(0, status, err)
    local body = assert(azbatch.json.decode(out))
    assert.same({ id = "mypool", vmSize = "Standard_A1_v2", targetDedicatedNodes = 2,
      virtualMachineConfiguration = { imageReference = { virtualMachineImageId = GALLERY },
        nodeAgentSKUId = "batch.node.ubuntu 16.04" } }, body)
    assert.truthy(out:find(GALLERY, 1, true), "'/' must not be escaped")
    assert.truthy(out:find('"targetDedicatedNodes":2', 1, true))
  end)

  it("takes a REST body from --json-file, with flags overriding it", function()
    local path = helper.tempfile(helper.fixture("pool_create_vmconfig.json"))
    local status, out, err = helper.cli("pool", "create", "--json-file", path, "--target-dedicated-nodes", "7",
      "--dry-run")
    os.remove(path)
    assert.equal(0, status, err)
    local body = assert(azbatch.json.decode(out))
    assert.equal(7, body.targetDedicatedNodes)
    assert.equal("pool2", body.id)
  end)

  it("explains an ARM-shaped --json-file", function()
    local path = helper.tempfile('{"properties": {"vmSize": "STANDARD_D4"}}')
    local status, _, err = helper.cli("pool", "create", "--json-file", path, "--dry-run")
    os.remove(path)
    assert.equal(1, status)
    assert.matches("ARM %(management%-plane%) pool resource", err)
  end)

  it("exits 1 with the field path on a validation error, sending nothing", function()
    local status, out, err = helper.cli("pool", "create", "--id", "mypool", "--vm-size", "Standard_A1_v2",
      "--target-dedicated-nodes", "2", "--image", GALLERY, "--dry-run")
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("pool%.virtualMachineConfiguration%.nodeAgentSKUId: required field missing", err)
  end)

  it("warns when the resize timeout is short for the pool size", function()
    local status, _, err = helper.cli("pool", "create", "--id", "big", "--vm-size", "Standard_D4s_v5",
      "--target-dedicated-nodes", "2000", "--image", GALLERY, "--node-agent-sku-id", "batch.node.ubuntu 22.04",
      "--dry-run")
    assert.equal(0, status)
    assert.matches("warning: pool%.resizeTimeout: .*PT30M", err)
  end)

  local usage_rows = {
    { { "pool", "create", "--vmsize", "x" }, "unrecognized argument %-%-vmsize %(did you mean %-%-vm%-size%?%)" },
    { { "pool", "create", "--target-dedicated-nodes", "two" }, "expects an integer" },
    { { "pool", "frobnicate" }, "unknown command" },
    { { "plan" }, "usage: azbatch plan" },
    { { "plan", "--nodes" }, "expects a value" },
    { { "pool", "show", "--account-endpoint", "http://127.0.0.1:9" }, "%-%-pool%-id is required" },
    { {}, "usage: azbatch <command>" },
  }
  for _, row in ipairs(usage_rows) do
    it("exits 2 on bad usage: " .. table.concat(row[1], " "), function()
      local status, _, err = helper.cli(table.unpack(row[1]))
      assert.equal(2, status)
      assert.matches(row[2], err)
    end)
  end

  for _, verb in ipairs { { "pool", "create" }, { "pool", "show" }, { "pool", "list" }, { "pool", "delete" },
    { "pool", "resize" }, { "pool", "exists" }, { "plan" }, { "pool" } } do
    it("answers --help for " .. table.concat(verb, " "), function()
      local args = { table.unpack(verb) }
      args[#args + 1] = "--help"
      local status, out = helper.cli(table.unpack(args))
      assert.equal(0, status)
      assert.matches("usage: azbatch " .. table.concat(verb, " "):gsub("%p", "%%%0"), out)
    end)
  end

  local plan_rows = {
    { 600, 1, "PT15M" }, { 601, 2, "PT15M" }, { 2000, 4, "PT30M" }, { 3000, 5, "PT45M" },
  }
  for _, row in ipairs(plan_rows) do
    it(("plans %d VMs: %d replicas, %s"):format(row[1], row[2], row[3]), function()
      local status, out = helper.cli("plan", "--nodes", tostring(row[1]), "--output", "json")
      assert.equal(0, status)
      local p = assert(azbatch.json.decode(out))
      assert.equal(row[2], p.replicas)
      assert.equal(row[3], p.resizeTimeout)
    end)
  end

  it("prints a readable plan table with warnings", function()
    local status, out = helper.cli("plan", "--nodes", "3000", "--resize-timeout", "PT15M")
    assert.equal(0, status)
    assert.matches("gallery replicas%s+5", out)
    assert.matches("resize timeout%s+PT45M", out)
    assert.matches("warning: ", out)
  end)

  it("exits 1 on a bad plan value", function()
    local status, _, err = helper.cli("plan", "--nodes", "-5")
    assert.equal(1, status)
    assert.matches("plan%.nodes", err)
  end)

  it("exits 2 when no endpoint is known", function()
    local status, _, err = helper.run("env -u AZURE_BATCH_ENDPOINT " .. helper.shq(helper.ROOT .. "/scripts/azbatch")
      .. " pool show --pool-id p")
    assert.equal(2, status)
    assert.matches("no Batch account endpoint", err)
  end)
end)
