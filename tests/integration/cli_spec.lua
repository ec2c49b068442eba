-- The CLI against the emulator, finding the account the way az does.
local azbatch = require "azbatch"
local helper = test_helper

local MARKETPLACE = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts"

-- What the emulator has answered so far (its control API is not counted).
local function requests(emu)
  local http <close> = azbatch.http {}
  local status, _, body = http:request { method = "GET", url = emu.url .. "/_emulator/stats" }
  assert.equal(200, status)
  return assert(azbatch.json.decode(body)).requests
end

local function create_args(id, ...)
  return "pool", "create", "--id", id, "--vm-size", "Standard_A1_v2", "--target-dedicated-nodes", "1",
    "--image", MARKETPLACE, "--node-agent-sku-id", "batch.node.ubuntu 22.04", ...
end

-- The CLI with an environment that holds no account settings of the shell's.
local function cli_env(vars, ...)
  local parts = { "env -u AZURE_BATCH_ACCOUNT -u AZURE_BATCH_ACCESS_KEY -u AZURE_BATCH_ENDPOINT" }
  for k, v in pairs(vars) do parts[#parts + 1] = ("%s=%s"):format(k, helper.shq(v)) end
  parts[#parts + 1] = helper.sanitizer_env() .. helper.shq(helper.ROOT .. "/scripts/azbatch")
  for _, a in ipairs { ... } do parts[#parts + 1] = helper.shq(a) end
  return helper.run(table.concat(parts, " "))
end

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
    return cli_env({}, table.unpack(args))
  end

  it("creates, shows, lists, resizes, tests and deletes a pool, printing JSON for every verb", function()
    local status, out, err = cli(create_args("cli-pool"))
    assert.equal(0, status, err)
    local created = assert(azbatch.json.decode(out))
    assert.equal("cli-pool", created.id)
    assert.matches("^0x%x+$", created.eTag)
    assert.matches("^[%x-]+$", created.requestId)
    assert.is_false(created.recovered)
    assert.matches('^{\n  "eTag": ', out)            -- indented like az

    status, out, err = cli("pool", "show", "--pool-id", "cli-pool")
    assert.equal(0, status, err)
    assert.equal("cli-pool", assert(azbatch.json.decode(out)).id)
    assert.matches('\n  "targetDedicatedNodes": 1,?\n', out)

    status, out = cli("pool", "list")
    assert.equal(0, status)
    local pools = assert(azbatch.json.decode(out))
    assert.equal("cli-pool", pools[1].id)

    status, out = cli("pool", "exists", "--pool-id", "cli-pool")
    assert.equal(0, status)
    assert.equal("true\n", out)

    helper.sleep(0.3)   -- let the emulator's clock finish the allocation
    status, out, err = cli("pool", "resize", "--pool-id", "cli-pool", "--target-dedicated-nodes", "2")
    assert.equal(0, status, err)
    local resized = assert(azbatch.json.decode(out))
    assert.equal("resize", resized.operation)
    assert.equal("cli-pool", resized.id)
    assert.equal(2, resized.targetDedicatedNodes)
    assert.matches("^[%x-]+$", resized.requestId)

    status, out, err = cli("pool", "resize", "--pool-id", "cli-pool", "--abort")
    assert.equal(0, status, err)
    local stopped = assert(azbatch.json.decode(out))
    assert.matches("^[%x-]+$", stopped.requestId)
    assert.same({ id = "cli-pool", operation = "stopResize", requestId = stopped.requestId }, stopped)

    status, out, err = cli("pool", "delete", "--pool-id", "cli-pool", "--yes")
    assert.equal(0, status, err)
    local deleted = assert(azbatch.json.decode(out))
    assert.equal("delete", deleted.operation)
    assert.equal("cli-pool", deleted.id)
    assert.matches("^[%x-]+$", deleted.requestId)
  end)

  it("prints a table for every verb with --output table", function()
    local status, out, err = cli(create_args("tbl-pool", "--output", "table"))
    assert.equal(0, status, err)
    assert.matches("^Id%s+ETag%s+Recovered%s+RequestId\n[- ]+\ntbl%-pool%s+0x%x+%s+false%s+[%x-]+\n$", out)

    status, out = cli("pool", "show", "--pool-id", "tbl-pool", "--output", "table")
    assert.equal(0, status)
    assert.matches("^Id%s+State%s+Allocation%s+VmSize%s+Dedicated%s+LowPriority%s+Image\n", out)
    assert.matches("\ntbl%-pool%s+active%s+%a+%s+Standard_A1_v2%s+%d+/1%s+0/0%s+" .. MARKETPLACE:gsub("%p", "%%%0"),
      out)

    status, out = cli("pool", "list", "--output", "table")
    assert.equal(0, status)
    assert.matches("^Id%s+State.*\ntbl%-pool%s+active", out)

    status, out = cli("pool", "exists", "--pool-id", "tbl-pool", "--output", "table")
    assert.equal(0, status)
    assert.matches("^Id%s+Exists\n[- ]+\ntbl%-pool%s+true\n$", out)

    status, out = cli("pool", "exists", "--pool-id", "nope", "--output", "table")
    assert.equal(0, status)
    assert.matches("\nnope%s+false\n$", out)

    helper.sleep(0.3)
    status, out, err = cli("pool", "resize", "--pool-id", "tbl-pool", "--target-dedicated-nodes", "0",
      "--output", "table")
    assert.equal(0, status, err)
    assert.matches("^Id%s+Operation%s+RequestId\n[- ]+\ntbl%-pool%s+resize%s+[%x-]+\n$", out)

    status, out, err = cli("pool", "resize", "--pool-id", "tbl-pool", "--abort", "--output", "table")
    assert.equal(0, status, err)
    assert.matches("\ntbl%-pool%s+stopResize%s+[%x-]+\n$", out)

    status, out, err = cli("pool", "delete", "--pool-id", "tbl-pool", "--output", "table")
    assert.equal(0, status, err)
    assert.matches("\ntbl%-pool%s+delete%s+[%x-]+\n$", out)
  end)

  it("prints code: message and the request id on a service error, exit 1", function()
    local status, _, err = cli("pool", "show", "--pool-id", "missing")
    assert.equal(1, status)
    assert.matches("^error: PoolNotFound: .*%(request%-id [%x-]+%)\n$", err)
  end)

  it("prints false for a missing pool", function()
    local status, out = cli("pool", "exists", "--pool-id", "missing")
    assert.equal(0, status)
    assert.equal("false\n", out)
  end)

  it("sanitises a service message that echoes control characters: one line, no escapes", function()
    local status, out, err = cli("pool", "list", "--filter", "bogus \27[31m\nred")
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^error: InvalidQueryParameterValue: ", err)
    assert.matches("QueryParameterValue=bogus %[31m red", err)   -- the text stays, ESC and the newline go
    assert.falsy(err:find("\27", 1, true))
    assert.matches("^[^\n]*\n$", err)
  end)

  it("sanitises table cells from the service", function()
    -- the local checks let any vmSize string through; the emulator stores what it gets
    local evil = "Standard_A1_v2\27]0;owned\7\r\nX"
    local status, _, err = cli("pool", "create", "--id", "evil-cells", "--vm-size", evil,
      "--target-dedicated-nodes", "0", "--image", MARKETPLACE, "--node-agent-sku-id", "batch.node.ubuntu 22.04")
    assert.equal(0, status, err)
    local out
    status, out = cli("pool", "show", "--pool-id", "evil-cells")
    assert.equal(0, status)
    assert.equal(evil, assert(azbatch.json.decode(out)).vmSize)   -- JSON keeps it, escaped
    assert.falsy(out:find("\27", 1, true))
    status, out = cli("pool", "show", "--pool-id", "evil-cells", "--output", "table")
    assert.equal(0, status)
    assert.falsy((out:gsub("\n", "")):find("%c"))      -- no control character but the line ends
    assert.equal(3, select(2, out:gsub("\n", "")))
    assert.matches("\nevil%-cells%s+active%s+%a+%s+Standard_A1_v2%]0;owned X%s", out)
    assert.equal(0, (cli("pool", "delete", "--pool-id", "evil-cells")))
  end)

  it("validates a negative target before sending anything", function()
    local before = requests(emu)
    local status, out, err = cli("pool", "resize", "--pool-id", "p", "--target-dedicated-nodes=-1")
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^error: resize%.targetDedicatedNodes: ", err)
    assert.equal(before, requests(emu))
  end)

  it("refuses --abort with a target and a resize without one, before sending anything", function()
    local before = requests(emu)
    local status, _, err = cli("pool", "resize", "--pool-id", "p", "--abort", "--target-dedicated-nodes", "1")
    assert.equal(2, status)
    assert.matches("^error: %-%-abort stops the current resize and takes no %-%-target%-dedicated%-nodes\n", err)
    status, _, err = cli("pool", "resize", "--pool-id", "p")
    assert.equal(2, status)
    assert.matches("^error: pool resize needs a target", err)
    assert.equal(before, requests(emu))
  end)

  it("reads the account from the az environment variables", function()
    local status, out, err = cli_env({ AZURE_BATCH_ACCOUNT = helper.DEV_ACCOUNT,
      AZURE_BATCH_ACCESS_KEY = helper.DEV_KEY, AZURE_BATCH_ENDPOINT = emu.url }, "pool", "list", "--output", "table")
    assert.equal(0, status, err)
    assert.matches("Id%s+State", out)
  end)

  it("never takes the account name from an IP address (exit 2, nothing sent)", function()
    local before = requests(emu)
    local status, out, err = cli_env({ AZURE_BATCH_ACCESS_KEY = helper.DEV_KEY, AZURE_BATCH_ENDPOINT = emu.url },
      "pool", "list")
    assert.equal(2, status)
    assert.equal("", out)
    assert.matches("^error: a Shared Key needs the Batch account name, and the endpoint http://127%.0%.0%.1:%d+ "
      .. "does not give one .*pass %-%-account%-name or set AZURE_BATCH_ACCOUNT\n$", err)
    assert.equal(before, requests(emu))
  end)

  describe("spelled http://localhost:PORT", function()
    local localhost
    setup(function() localhost = emu.url:gsub("^http://127%.0%.0%.1:", "http://localhost:") end)

    it("works like 127.0.0.1", function()
      assert.matches("^http://localhost:%d+$", localhost)
      local status, out, err = cli_env({}, create_args("lh-pool", "--account-endpoint", localhost,
        "--account-name", helper.DEV_ACCOUNT, "--account-key", helper.DEV_KEY))
      assert.equal(0, status, err)
      assert.equal("lh-pool", assert(azbatch.json.decode(out)).id)
      status, out, err = cli_env({ AZURE_BATCH_ACCOUNT = helper.DEV_ACCOUNT, AZURE_BATCH_ACCESS_KEY = helper.DEV_KEY,
        AZURE_BATCH_ENDPOINT = localhost }, "pool", "show", "--pool-id", "lh-pool")
      assert.equal(0, status, err)
      assert.equal("lh-pool", assert(azbatch.json.decode(out)).id)
      status = cli_env({}, "pool", "delete", "--pool-id", "lh-pool", "--account-endpoint", localhost,
        "--account-name", helper.DEV_ACCOUNT, "--account-key", helper.DEV_KEY)
      assert.equal(0, status)
    end)

    it("needs the account name for Shared Key (exit 2, nothing sent)", function()
      local before = requests(emu)
      local status, _, err = cli_env({}, "pool", "list", "--account-endpoint", localhost,
        "--account-key", helper.DEV_KEY)
      assert.equal(2, status)
      assert.matches("^error: a Shared Key needs the Batch account name, and the endpoint http://localhost:%d+ "
        .. "does not give one", err)
      assert.equal(before, requests(emu))
    end)
  end)
end)

describe("azbatch CLI against the emulator on [::1]", function()
  local emu
  setup(function() emu = helper.emulator("--host ::1 --time-scale 500") end)
  teardown(function() if emu then emu.stop() end end)

  it("needs the account name for Shared Key (exit 2, nothing sent)", function()
    assert.matches("^http://%[::1%]:%d+$", emu.url)
    local before = requests(emu)
    local status, _, err = cli_env({}, "pool", "list", "--account-endpoint", emu.url, "--account-key", helper.DEV_KEY)
    assert.equal(2, status)
    assert.matches("^error: a Shared Key needs the Batch account name, and the endpoint http://%[::1%]:%d+ "
      .. "does not give one", err)
    assert.equal(before, requests(emu))
  end)

  it("works like 127.0.0.1", function()
    local acct = { "--account-endpoint", emu.url, "--account-name", helper.DEV_ACCOUNT,
      "--account-key", helper.DEV_KEY }
    local status, out, err = cli_env({}, create_args("v6-pool", table.unpack(acct)))
    assert.equal(0, status, err)
    assert.equal("v6-pool", assert(azbatch.json.decode(out)).id)
    status, out, err = cli_env({}, "pool", "show", "--pool-id", "v6-pool", "--output", "table", table.unpack(acct))
    assert.equal(0, status, err)
    assert.matches("\nv6%-pool%s+active", out)
    status, out, err = cli_env({}, "pool", "exists", "--pool-id", "v6-pool", table.unpack(acct))
    assert.equal(0, status, err)
    assert.equal("true\n", out)
  end)
end)
