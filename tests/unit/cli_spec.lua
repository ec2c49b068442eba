-- The CLI as a user runs it: exit statuses, messages, the dry-run body.
local azbatch = require "azbatch"
local helper = test_helper

-- The CLI as a user runs it: scripts/azbatch ARGS...
local function run_cli(...)
  local parts = { "env " .. helper.sanitizer_env() .. helper.shq(helper.ROOT .. "/scripts/azbatch") }
  for _, a in ipairs { ... } do parts[#parts + 1] = helper.shq(a) end
  return helper.run(table.concat(parts, " "))
end

local GALLERY = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/imaging"
  .. "/providers/Microsoft.Compute/galleries/myGallery/images/myImage/versions/1.0.0"

describe("azbatch CLI (offline)", function()
  it("prints the seed az example's exact body on --dry-run", function()
    local status, out, err = run_cli("pool", "create", "--id", "mypool", "--vm-size", "Standard_A1_v2",
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
    local status, out, err = run_cli("pool", "create", "--json-file", path, "--target-dedicated-nodes", "7",
      "--dry-run")
    os.remove(path)
    assert.equal(0, status, err)
    local body = assert(azbatch.json.decode(out))
    assert.equal(7, body.targetDedicatedNodes)
    assert.equal("pool2", body.id)
  end)

  it("converts an ARM-shaped --json-file, says so, then validates what it made", function()
    local path = helper.tempfile('{"properties": {"vmSize": "STANDARD_D4"}}')
    local status, out, err = run_cli("pool", "create", "--json-file", path, "--dry-run")
    os.remove(path)
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^note: %-%-json%-file [^\n]*: converted from the ARM pool resource [^\n]* to the Batch "
      .. "data%-plane body\nerror: pool%.id: required field missing", err)
  end)

  it("exits 1 with the field path on a validation error, sending nothing", function()
    local status, out, err = run_cli("pool", "create", "--id", "mypool", "--vm-size", "Standard_A1_v2",
      "--target-dedicated-nodes", "2", "--image", GALLERY, "--dry-run")
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("pool%.virtualMachineConfiguration%.nodeAgentSKUId: required field missing", err)
  end)

  it("warns when the resize timeout is short for the pool size", function()
    local status, _, err = run_cli("pool", "create", "--id", "big", "--vm-size", "Standard_D4s_v5",
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
    { { "--frobnicate" }, "^error: unknown option '%-%-frobnicate' %(try 'azbatch %-%-help'%)" },
    { { "pool", "autoscale", "frob" }, "^error: unknown command 'pool autoscale frob'" },
    { { "pool" }, "^usage: azbatch pool <command>\n\ncommands:\n  pool autoscale disable " },
    { { "pool", "autoscale" }, "^usage: azbatch pool autoscale <command>\n\ncommands:\n  pool autoscale disable%s+"
      .. "Turn off autoscale[^\n]*\n  pool autoscale enable[^\n]*\n  pool autoscale evaluate[^\n]*\n$" },
  }
  for _, row in ipairs(usage_rows) do
    it("exits 2 on bad usage: " .. table.concat(row[1], " "), function()
      local status, _, err = run_cli(table.unpack(row[1]))
      assert.equal(2, status)
      assert.matches(row[2], err)
    end)
  end

  for _, verb in ipairs { { "pool", "create" }, { "pool", "show" }, { "pool", "list" }, { "pool", "delete" },
    { "pool", "resize" }, { "pool", "exists" }, { "plan" }, { "pool" } } do
    it("answers --help for " .. table.concat(verb, " "), function()
      local args = { table.unpack(verb) }
      args[#args + 1] = "--help"
      local status, out = run_cli(table.unpack(args))
      assert.equal(0, status)
      assert.matches("usage: azbatch " .. table.concat(verb, " "):gsub("%p", "%%%0"), out)
    end)
  end

  local plan_rows = {
    { 600, 1, "PT15M" }, { 601, 2, "PT15M" }, { 2000, 4, "PT30M" }, { 3000, 5, "PT45M" },
  }
  for _, row in ipairs(plan_rows) do
    it(("plans %d VMs: %d replicas, %s"):format(row[1], row[2], row[3]), function()
      local status, out = run_cli("plan", "--nodes", tostring(row[1]), "--output", "json")
      assert.equal(0, status)
      local p = assert(azbatch.json.decode(out))
      assert.equal(row[2], p.replicas)
      assert.equal(row[3], p.resizeTimeout)
    end)
  end

  it("prints a readable plan table with warnings", function()
    local status, out = run_cli("plan", "--nodes", "3000", "--resize-timeout", "PT15M")
    assert.equal(0, status)
    assert.matches("gallery replicas%s+5", out)
    assert.matches("resize timeout%s+PT45M", out)
    assert.matches("warning: ", out)
  end)

  it("exits 1 on a bad plan value, passed as --nodes=-5", function()
    local status, _, err = run_cli("plan", "--nodes=-5")
    assert.equal(1, status)
    assert.matches("plan%.nodes", err)
  end)

  it("exits 2 when no endpoint is known", function()
    local status, _, err = helper.run("env -u AZURE_BATCH_ENDPOINT " .. helper.sanitizer_env()
      .. helper.shq(helper.ROOT .. "/scripts/azbatch") .. " pool show --pool-id p")
    assert.equal(2, status)
    assert.matches("no Batch account endpoint", err)
  end)
end)

-- The CLI in this process: main(argv, out, err, env) with an environment
-- table, so nothing from the shell that runs the specs leaks in.
local cli = require "azbatch.cli"
local args = require "azbatch.args"

local KEY = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU="

local run = helper.cli_main

-- A usage error is one "error:" line and the verb's usage.
local function assert_usage(status, err, pattern)
  assert.equal(2, status, err)
  assert.matches("^error: [^\n]*\nusage: azbatch ", err)
  assert.matches(pattern, err:match("^error: ([^\n]*)"))
end

describe("azbatch CLI flag values", function()
  it("refuses a known flag as the value of the flag before it", function()
    local status, _, err = run { "pool", "delete", "--pool-id", "--yes" }
    assert_usage(status, err, "^%-%-pool%-id expects a value, got the flag %-%-yes$")
    status, _, err = run { "pool", "show", "--pool-id", "--output=table" }
    assert_usage(status, err, "^%-%-pool%-id expects a value, got the flag %-%-output$")
    status, _, err = run { "pool", "show", "--pool-id", "--" }
    assert_usage(status, err, "^%-%-pool%-id expects a value, got the flag %-%-$")
  end)

  it("takes a value that starts with '-' only as --flag=VALUE, and says so", function()
    local status, _, err = run { "pool", "show", "--pool-id", "-p" }
    assert_usage(status, err,
      "^%-%-pool%-id expects a value, got \"%-p\", which starts with '%-'; .*%-%-pool%-id=VALUE")
    status, _, err = run { "pool", "show", "--pool-id", "--no-such-flag" }
    assert_usage(status, err, "got \"%-%-no%-such%-flag\", which starts with '%-'")
    local o = assert(args.parse({ "--pool-id=-p", "--filter=--x", "--n=-3" }, {
      { name = "pool-id", key = "poolId", kind = "string" }, { name = "filter", key = "filter", kind = "string" },
      { name = "n", key = "n", kind = "integer" } }))
    assert.same({ poolId = "-p", filter = "--x", n = -3 }, o)
  end)

  it("never echoes a secret flag's value in a usage error", function()
    local status, _, err = run { "pool", "list", "--account-key", "-s3cr3t-key" }
    assert_usage(status, err, "^%-%-account%-key expects a value, got a value, which starts with '%-'")
    assert.falsy(err:find("s3cr3t", 1, true))
  end)

  it("refuses an empty value, next or attached", function()
    local status, _, err = run { "pool", "show", "--pool-id", "" }
    assert_usage(status, err, "^%-%-pool%-id expects a value, got an empty string$")
    status, _, err = run { "pool", "show", "--pool-id=" }
    assert_usage(status, err, "^%-%-pool%-id expects a value, got an empty string$")
    status, _, err = run { "pool", "show", "--pool-id" }
    assert_usage(status, err, "^%-%-pool%-id expects a value$")
  end)

  it("passes --target-dedicated-nodes=-1 to validation, which names the field (exit 1, nothing sent)", function()
    local status, out, err = run { "pool", "create", "--id", "p", "--vm-size", "Standard_A1_v2",
      "--target-dedicated-nodes=-1", "--image", "Canonical:0001-com-ubuntu-server-jammy:22_04-lts",
      "--node-agent-sku-id", "batch.node.ubuntu 22.04", "--dry-run" }
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^error: pool%.targetDedicatedNodes: must be an integer in %[0, ", err)
    -- no endpoint and no credential: validation comes before connecting
    status, out, err = run { "pool", "resize", "--pool-id", "p", "--target-dedicated-nodes=-1" }
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^error: resize%.targetDedicatedNodes: must be an integer in %[0, [^\n]*\n$", err)
  end)

  it("reads a negative number after a space as a missing value", function()
    local status, _, err = run { "pool", "resize", "--pool-id", "p", "--target-dedicated-nodes", "-1" }
    assert_usage(status, err, "^%-%-target%-dedicated%-nodes expects a value, got \"%-1\".*=VALUE")
  end)

  for _, bad in ipairs { "two", "0x10", "1e3", "2.0", " 5", "+5", "99999999999999999999" } do
    it(("takes integers as decimal digits only: %q is a usage error"):format(bad), function()
      local status, _, err = run { "plan", "--nodes=" .. bad }
      assert_usage(status, err, "^%-%-nodes expects an integer, got ")
    end)
  end

  it("takes a flag without a value and refuses one attached", function()
    local status, _, err = run { "pool", "create", "--dry-run=yes" }
    assert_usage(status, err, "^%-%-dry%-run takes no value$")
  end)

  it("names the choices and what was given", function()
    local status, _, err = run { "pool", "list", "--output", "yaml" }
    assert_usage(status, err, "^%-%-output must be one of: json, jsonc, table, tsv, none %(got \"yaml\"%)$")
  end)

  it("calls a one-dash argument an unrecognized flag, not a stray value", function()
    local status, _, err = run { "pool", "list", "-x", "table" }
    assert_usage(status, err, "^unrecognized argument %-x %(azbatch flags are long, e%.g%. %-%-output; the short ones "
      .. "are %-o%)$")
    status, _, err = run { "pool", "list", "stray" }
    assert_usage(status, err, "^unexpected argument 'stray'$")
  end)

  it("suggests the closest flag the way the core's edit distance does", function()
    -- two adjacent swaps: distance 2 for optimal string alignment, 4 for plain Levenshtein
    local _, _, err = run { "pool", "list", "--uoptut", "json" }
    assert.matches("unrecognized argument %-%-uoptut %(did you mean %-%-output%?%)", err)
    _, _, err = run { "pool", "list", "--OUTPUT", "json" }
    assert.matches("did you mean %-%-output%?", err)
    _, _, err = run { "pool", "list", "--out", "json" }     -- three letters short: no guess
    assert.matches("unrecognized argument %-%-out\n", err)
  end)

  it("explains the --flag=VALUE form in every verb's help", function()
    for name, cmd in pairs(cli.commands) do
      if cmd.hidden then goto continue end
      local argv = {}
      for w in name:gmatch("%S+") do argv[#argv + 1] = w end
      argv[#argv + 1] = "--help"
      local status, out = run(argv)
      assert.equal(0, status)
      assert.matches("A value that starts with '%-' must be attached: %-%-filter=%-x", out)
      ::continue::
    end
  end)

  it("answers --help before it parses, but not after --", function()
    local status, out = run { "pool", "show", "--pool-id", "--help" }
    assert.equal(0, status)
    assert.matches("^usage: azbatch pool show", out)
    local status2, _, err = run { "pool", "show", "--", "--help" }
    assert_usage(status2, err, "unexpected argument '%-%-help'")
  end)
end)

describe("azbatch CLI account name", function()
  local rows = {
    { "https://myacct.westeurope.batch.azure.com", "myacct" },
    { "https://MyAcct.WestEurope.Batch.Azure.COM/", "myacct" },
    { "HTTPS://acct2.eastus.batch.azure.com:443/pools", "acct2" },
    { "acct3.westus2.batch.azure.com", "acct3" },
    { "http://127.0.0.1:8080", nil },
    { "http://127.0.0.1.westeurope.batch.azure.com", nil },
    { "http://localhost:8080", nil },
    { "http://[::1]:8080", nil },
    { "https://192.0.2.4", nil },
    { "https://acct.batch.azure.com", nil },
    { "https://acct.region.extra.batch.azure.com", nil },
    { "https://acct.westeurope.batch.azure.com.example.net", nil },
    { "https://user@acct.westeurope.batch.azure.com", nil },
    { "https://acct.westeurope.batch.chinacloudapi.cn", nil },
    { "http://acct.westeurope.batch.azure.com", nil },
  }
  for _, row in ipairs(rows) do
    it(("%s names %s"):format(row[1], row[2] or "no account"), function()
      assert.equal(row[2], cli.account_from_endpoint(row[1]))
    end)
  end

  it("takes --account-name, then AZURE_BATCH_ACCOUNT, then the endpoint's host", function()
    local ep = "https://fromhost.westeurope.batch.azure.com"
    local env = { AZURE_BATCH_ACCOUNT = "fromenv" }
    assert.equal("fromflag", assert(cli.find_credential({ accountName = "fromflag", accountKey = KEY }, ep, env))
      :account())
    assert.equal("fromenv", assert(cli.find_credential({ accountKey = KEY }, ep, env)):account())
    assert.equal("fromhost", assert(cli.find_credential({ accountKey = KEY }, ep, {})):account())
    assert.equal("fromhost", assert(cli.find_credential({}, ep, { AZURE_BATCH_ACCESS_KEY = KEY })):account())
  end)

  for _, ep in ipairs { "http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9" } do
    it("refuses Shared Key without a name for " .. ep .. " (exit 2, names both ways to give one)", function()
      local status, out, err = run { "pool", "show", "--pool-id", "p", "--account-endpoint", ep,
        "--account-key", KEY }
      assert.equal(2, status)
      assert.equal("", out)
      assert.matches("^error: a Shared Key needs the Batch account name, and the endpoint " .. ep:gsub("%p", "%%%0")
        .. " does not give one .*: pass %-%-account%-name or set AZURE_BATCH_ACCOUNT\n$", err)
      assert.falsy(err:find(KEY, 1, true))
    end)
  end

  it("needs no account name with Entra ID", function()
    local cred = assert(cli.find_credential({}, "http://127.0.0.1:9", {}))
    assert.equal("chain", cred:kind())
  end)

  it("reports a bad key as an error (exit 1) without showing it", function()
    local status, _, err = run { "pool", "show", "--pool-id", "p", "--account-endpoint", "http://127.0.0.1:9",
      "--account-name", "a", "--account-key", "not*base64" }
    assert.equal(1, status)
    assert.matches("^error: shared key: account key is not valid base64\n$", err)
  end)
end)

describe("azbatch CLI --json-file", function()
  local function create(path)
    return run { "pool", "create", "--json-file", path, "--dry-run" }
  end

  local function assert_one_line(status, out, err, pattern)
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^error: [^\n]*\n$", err)
    assert.matches(pattern, err)
  end

  it("says a directory is a directory", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. helper.shq(dir)))
    local status, out, err = create(dir)
    os.execute("rmdir " .. helper.shq(dir))
    assert_one_line(status, out, err,
      "^error: %-%-json%-file " .. dir:gsub("%p", "%%%0") .. ": is a directory, not a JSON file\n$")
  end)

  it("says a file cannot be opened, and why", function()
    local status, out, err = create("/nonexistent/pool.json")
    assert_one_line(status, out, err,
      "^error: %-%-json%-file /nonexistent/pool%.json: cannot open it %(No such file or directory%)\n$")
  end)

  it("gives the line, column and byte offset of invalid JSON", function()
    local path = helper.tempfile('{\n  "id": "p",\n  "vmSize" "x"\n}')
    local status, out, err = create(path)
    os.remove(path)
    assert_one_line(status, out, err,
      ": invalid JSON at line 3, column 12 %(byte 27%): unexpected character '\"'\n$")
  end)

  it("calls the end of the file by its name", function()
    local path = helper.tempfile('{"id": "p"')
    local status, out, err = create(path)
    os.remove(path)
    assert_one_line(status, out, err, "invalid JSON at line 1, column 11 %(byte 11%): .*the end of the file")
  end)

  it("says an empty file is empty", function()
    local path = helper.tempfile(" \n")
    local status, out, err = create(path)
    os.remove(path)
    assert_one_line(status, out, err, ": the file is empty; expected a JSON object")
  end)

  for _, row in ipairs { { "[1, 2]", "an array" }, { "[]", "an array" }, { ' "pool"', "a string" },
    { "42", "a number" }, { "-1", "a number" }, { "null", "null" }, { "true", "true" } } do
    it(("refuses %s as the body: %s"):format(row[1], row[2]), function()
      local path = helper.tempfile(row[1])
      local status, out, err = create(path)
      os.remove(path)
      assert_one_line(status, out, err, ": expected a JSON object %(the pool body%), got " .. row[2] .. "\n$")
    end)
  end

  it("accepts a UTF-8 byte order mark and counts it in offsets", function()
    local path = helper.tempfile("\239\187\191" .. helper.fixture("pool_create_vmconfig.json"))
    local status, out, err = create(path)
    os.remove(path)
    assert.equal(0, status, err)
    assert.equal("pool2", assert(azbatch.json.decode(out)).id)
    path = helper.tempfile("\239\187\191{,}")
    status, out, err = create(path)
    os.remove(path)
    assert_one_line(status, out, err, "%(byte 5%)")
  end)

  it("sanitises a file name with control characters in the message", function()
    local status, _, err = create("/nonexistent/a\27[31m\nb.json")
    assert.equal(1, status)
    assert.falsy(err:find("\27", 1, true))
    assert.matches("^error: [^\n]*\n$", err)
  end)
end)

describe("azbatch CLI pool resize usage", function()
  local abort_conflicts = { { "--target-dedicated-nodes", "1" }, { "--target-low-priority-nodes", "0" },
    { "--resize-timeout", "PT20M" }, { "--node-deallocation-option", "requeue" } }
  for _, extra in ipairs(abort_conflicts) do
    it("refuses --abort with " .. extra[1], function()
      local status, _, err = run { "pool", "resize", "--pool-id", "p", "--abort", extra[1], extra[2],
        "--account-endpoint", "http://127.0.0.1:9" }
      assert_usage(status, err,
        "^%-%-abort stops the current resize and takes no " .. extra[1]:gsub("%p", "%%%0") .. "$")
    end)
  end

  for _, argv in ipairs { { "pool", "resize", "--pool-id", "p" },
    { "pool", "resize", "--pool-id", "p", "--resize-timeout", "PT20M" },
    { "pool", "resize", "--pool-id", "p", "--node-deallocation-option", "requeue" } } do
    it("refuses a resize with no target: " .. table.concat(argv, " ", 3), function()
      local status, _, err = run(argv)
      assert_usage(status, err, "^pool resize needs a target %(%-%-target%-dedicated%-nodes, "
        .. "%-%-target%-low%-priority%-nodes%) or %-%-abort$")
    end)
  end

  it("still needs --pool-id first", function()
    local status, _, err = run { "pool", "resize", "--abort" }
    assert_usage(status, err, "^%-%-pool%-id is required$")
  end)
end)

describe("azbatch CLI output", function()
  for _, row in ipairs { { 7, "7" }, { 2.0, "2" }, { 1e3, "1000" }, { -0.0, "0" }, { 1e20, "100000000000000000000" },
    { 0.1, "0.1" }, { 2.5, "2.5" }, { 1 / 3, "0.3333333333333333" } } do
    it(("prints %s as %s"):format(tostring(row[1]), row[2]), function()
      assert.equal(row[2], cli.number_text(row[1]))
    end)
  end

  it("indents JSON like az and writes integral numbers as decimal integers, leaving strings alone", function()
    assert.equal('{\n  "a": 100000000000000000000,\n  "b": [\n    1,\n    2.5,\n    -3\n  ],\n  "c": "1e+20",'
      .. '\n  "d": {},\n  "e": []\n}',
      cli.pretty('{"a":1e+20,"b":[1,2.5,-3],"c":"1e+20","d":{},"e":[]}'))
    assert.equal('"a\\"b,{"', cli.pretty('"a\\"b,{"'))
  end)

  it("sanitises table cells and aligns by characters, not bytes", function()
    local text = cli.table_text({ { name = "Ünïcode", n = 2.0 }, { name = "evil\27[2J\r\nrow\226\128\174", n = 1e3 } },
      { { "Name", function(r) return r.name end }, { "N", function(r) return r.n end } })
    assert.falsy(text:find("\27", 1, true))
    assert.falsy(text:find("\226\128\174", 1, true))
    assert.equal(4, select(2, text:gsub("\n", "")))       -- heading, rule, two rows
    local lines = {}
    for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal("Ünïcode      2", lines[3])
    assert.equal("evil[2J row  1000", lines[4])
    assert.equal(utf8.len(lines[3]) - 1, utf8.len(lines[1]:match("^Name%s*")))
  end)

  it("pretty-prints plan --output json", function()
    local status, out = run { "plan", "--nodes", "3000", "--output", "json" }
    assert.equal(0, status)
    assert.matches('^{\n  "autoscale": false,\n', out)
    assert.matches('\n  "replicas": 5,\n', out)
  end)

  it("prints a --dry-run as a pool table with --output table", function()
    local status, out, err = run { "pool", "create", "--id", "mypool", "--vm-size", "Standard_A1_v2",
      "--target-dedicated-nodes", "2", "--image", "Canonical:0001-com-ubuntu-server-jammy:22_04-lts",
      "--node-agent-sku-id", "batch.node.ubuntu 22.04", "--dry-run", "--output", "table" }
    assert.equal(0, status, err)
    assert.matches("^Id%s+State%s+Allocation%s+VmSize%s+Dedicated%s+LowPriority%s+Image\n%-%-", out)
    assert.matches("\nmypool%s+Standard_A1_v2%s+0/2%s+0/0%s+"
      .. "Canonical:0001%-com%-ubuntu%-server%-jammy:22_04%-lts:latest\n$", out)
  end)
end)

describe("azbatch CLI process", function()
  it("runs with core dumps off: its memory holds keys and tokens", function()
    local status = run { "version" }
    assert.equal(0, status)
    local limit
    for line in io.lines("/proc/self/limits") do
      limit = limit or line:match("^Max core file size%s+(%S+)%s+(%S+)")
    end
    assert.equal("0", limit)
    assert.is_true(require("azbatch.core").disable_core_dumps())
  end)

  it("tells a terminal from a pipe or a file (core.isatty)", function()
    local core = require "azbatch.core"
    -- a pipe is never a terminal; /dev/tty is, when the test has one
    local p = io.popen(("%s -e 'package.cpath=%q; io.write(tostring(require(\"azbatch.core\").isatty(1)))'")
      :format(helper.shq(os.getenv("LUA") or "lua5.4"), package.cpath))
    assert.equal("false", p:read("a"))
    p:close()
    assert.is_false(core.isatty(1000))                    -- not open
    assert.has_error(function() core.isatty(-1) end, "bad argument #1 to 'isatty' (a file descriptor expected)")
  end)
end)

describe("azbatch CLI error paths before the network", function()
  local ENTRA = { AZURE_BATCH_ENDPOINT = "http://127.0.0.1:9", AZURE_TENANT_ID = "00000000-0000-0000-0000-0000000000aa",
    AZURE_CLIENT_ID = "00000000-0000-0000-0000-0000000000c1", AZURE_CLIENT_SECRET = "s3cret-value" }

  it("reports an endpoint the client refuses (exit 1)", function()
    local status, out, err = run { "pool", "show", "--pool-id", "p", "--account-endpoint", "ftp://h",
      "--account-name", "a", "--account-key", KEY }
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^error: client%.endpoint: [^\n]*\n$", err)
  end)

  it("reports an ARM endpoint the ARM client refuses, before any request (exit 1)", function()
    local env = {}
    for k, v in pairs(ENTRA) do env[k] = v end
    env.AZURE_RESOURCE_MANAGER_ENDPOINT = "https://management.example/with/path"
    local status, out, err = run({ "image", "replicate", "--image", "/x", "--nodes", "1" }, env)
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^error: arm%.endpoint: ", err)
    assert.falsy(err:find("s3cret", 1, true))
  end)

  it("turns a bug into one error line, with the trace only under --debug", function()
    local plan = cli.commands.plan
    local real = plan.run
    plan.run = function() error("boom at the seams") end
    local ok, status, out, err = pcall(run, { "plan", "--nodes", "3" })
    local _, _, _, derr = pcall(run, { "plan", "--nodes", "3", "--debug" })
    plan.run = real
    assert.is_true(ok)
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^error: internal error: [^\n]*boom at the seams\n$", err)
    assert.matches("stack traceback:", derr)
    assert.matches("\nerror: internal error: [^\n]*boom at the seams\n$", derr)
  end)

  it("refuses pool images with both --pool-id and --filter", function()
    local status, _, err = run({ "pool", "images", "--pool-id", "p", "--filter", "x" }, ENTRA)
    assert.equal(2, status)
    assert.matches("^error: give %-%-pool%-id or %-%-filter, not both\n", err)
  end)

  it("refuses a malformed --json-file for pool set, reset and node delete (exit 1, naming the file)", function()
    for _, argv in ipairs { { "pool", "set", "--pool-id", "p" }, { "pool", "reset", "--pool-id", "p" },
      { "node", "delete", "--pool-id", "p" } } do
      argv[#argv + 1] = "--json-file"
      argv[#argv + 1] = "/nonexistent/body.json"
      local status, out, err = run(argv)
      assert.equal(1, status)
      assert.equal("", out)
      assert.matches("^error: %-%-json%-file /nonexistent/body%.json: cannot open it", err)
    end
  end)

  local invalid = {
    { { "pool", "reset", "--pool-id", "p", "--start-task-max-task-retry-count=-5" }, "^error: pool%.startTask" },
    { { "pool", "autoscale", "enable", "--pool-id", "p", "--auto-scale-formula", "$TargetDedicatedNodes=1;",
      "--auto-scale-evaluation-interval", "PT1M" }, "^error: [%w.]*autoScaleEvaluationInterval" },
    { { "node", "delete", "--pool-id", "p", "--node-list", "n1", "--resize-timeout", "soon" },
      "^error: [%w.]*resizeTimeout" },
    { { "pool", "resize", "--pool-id", "p", "--target-dedicated-nodes", "1", "--resize-timeout", "soon" },
      "^error: resize%.resizeTimeout" },
  }
  for _, row in ipairs(invalid) do
    it("validates before connecting: " .. table.concat(row[1], " "), function()
      local status, out, err = run(row[1])       -- no endpoint at all: validation must come first
      assert.equal(1, status, err)
      assert.equal("", out)
      assert.matches(row[2], err)
    end)
  end
end)
