-- The CLI against the emulator, finding the account the way az does.
local azbatch = require "azbatch"
local helper = test_helper

describe("azbatch CLI against the emulator", function()
  local emu, acct
  setup(function()
    emu = helper.emulator("--time-scale 500")
    acct = { "--account-name", helper.DEV_ACCOUNT, "--account-key", helper.DEV_KEY, "--account-endpoint", emu.url }
  end)
  teardown(function() if emu then emu.stop() end end)

  local function cli(...)
    local args = { ... }
    for _, a in ipairs(acct) do args[#args + 1] = a end
    return helper.cli(table.unpack(args))
  end

  it("creates, shows, lists, resizes, tests and deletes a pool", function()
    local status, out, err = cli("pool", "create", "--id", "cli-pool", "--vm-size", "Standard_A1_v2",
      "--target-dedicated-nodes", "1", "--image", "Canonical:0001-com-ubuntu-server-jammy:22_04-lts",
      "--node-agent-sku-id", "batch.node.ubuntu 22.04", "--output", "table")
    assert.equal(0, status, err)
    assert.matches("created pool cli%-pool", out)

    status, out, err = cli("pool", "show", "--pool-id", "cli-pool")
    assert.equal(0, status, err)
    assert.equal("cli-pool", assert(azbatch.json.decode(out)).id)

    status, out = cli("pool", "show", "--pool-id", "cli-pool", "--output", "table")
    assert.equal(0, status)
    assert.matches("Id%s+State", out)
    assert.matches("cli%-pool%s+active", out)

    status, out = cli("pool", "list")
    assert.equal(0, status)
    local pools = assert(azbatch.json.decode(out))
    assert.equal("cli-pool", pools[1].id)

    status, out = cli("pool", "exists", "--pool-id", "cli-pool")
    assert.equal(0, status)
    assert.equal("true\n", out)

    helper.sleep(0.3)   -- let the emulator's clock finish the allocation
    status, out, err = cli("pool", "resize", "--pool-id", "cli-pool", "--target-dedicated-nodes", "0",
      "--output", "table")
    assert.equal(0, status, err)
    assert.matches("resizing pool cli%-pool", out)

    status = cli("pool", "delete", "--pool-id", "cli-pool", "--yes")
    assert.equal(0, status)
  end)

  it("prints code: message and the request id on a service error, exit 1", function()
    local status, _, err = cli("pool", "show", "--pool-id", "missing")
    assert.equal(1, status)
    assert.matches("^error: PoolNotFound: .*%(request%-id [%x-]+%)", err)
  end)

  it("prints false for a missing pool", function()
    local status, out = cli("pool", "exists", "--pool-id", "missing")
    assert.equal(0, status)
    assert.equal("false\n", out)
  end)

  it("reads the account from the az environment variables", function()
    local cmd = ("AZURE_BATCH_ACCOUNT=%s AZURE_BATCH_ACCESS_KEY=%s AZURE_BATCH_ENDPOINT=%s %s pool list --output table")
      :format(helper.DEV_ACCOUNT, helper.DEV_KEY, emu.url, helper.shq(helper.ROOT .. "/scripts/azbatch"))
    local status, out, err = helper.run(cmd)
    assert.equal(0, status, err)
    assert.matches("Id%s+State", out)
  end)
end)
