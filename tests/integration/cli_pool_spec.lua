-- The pool and node verbs against the emulator, as a user runs them
-- (stdout is a pipe here: progress comes as timestamped lines on stderr).
local azbatch = require "azbatch"
local helper = test_helper

local MARKETPLACE = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts"
local AGENT = "batch.node.ubuntu 22.04"
local STAMP = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ"

local function decode(out) return assert(azbatch.json.decode(out)) end

describe("azbatch CLI pool and node verbs", function()
  local emu, base_env
  setup(function()
    -- deletions take 1.2 s here, so that a wait sees one in progress even
    -- from a CLI slowed down by valgrind
    local world = helper.world(function(w) w.allocation.deleteSeconds = 600 end)
    emu = helper.emulator("--time-scale 500 --seed 7 --world " .. helper.shq(world))
    base_env = { AZURE_BATCH_ENDPOINT = emu.url, AZURE_BATCH_ACCOUNT = helper.DEV_ACCOUNT,
      AZURE_BATCH_ACCESS_KEY = helper.DEV_KEY }
  end)
  teardown(function() if emu then emu.stop() end end)

  -- The CLI with exactly these account settings in its environment.
  local function cli_env(vars, ...)
    local parts = { "env -u AZURE_BATCH_ACCOUNT -u AZURE_BATCH_ACCESS_KEY -u AZURE_BATCH_ENDPOINT -u AZURE_TENANT_ID "
      .. "-u AZURE_CLIENT_ID -u AZURE_CLIENT_SECRET -u NO_COLOR" }
    for k, v in pairs(vars) do parts[#parts + 1] = ("%s=%s"):format(k, helper.shq(v)) end
    parts[#parts + 1] = helper.sanitizer_env() .. helper.shq(helper.ROOT .. "/scripts/azbatch")
    for _, a in ipairs { ... } do parts[#parts + 1] = helper.shq(a) end
    return helper.run(table.concat(parts, " "))
  end
  local function cli(...) return cli_env(base_env, ...) end

  local function requests() return helper.control(emu, "stats").requests end

  local function create(id, nodes, ...)
    local status, out, err = cli("pool", "create", "--id", id, "--vm-size", "Standard_A1_v2",
      "--target-dedicated-nodes", tostring(nodes), "--image", MARKETPLACE, "--node-agent-sku-id", AGENT, ...)
    assert.equal(0, status, err)
    return out, err
  end

  describe("waiting", function()
    it("pool create --wait prints the ready pool, with one timestamped line per change on stderr", function()
      local out, err = create("w-create", 3, "--wait", "--interval", "0.05")
      local pool = decode(out)
      assert.equal("w-create", pool.id)
      assert.equal("steady", pool.allocationState)
      assert.equal(3, pool.currentDedicatedNodes)
      local lines = {}
      for line in err:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.is_true(#lines >= 1, err)
      for i, line in ipairs(lines) do
        assert.matches("^" .. STAMP .. " w%-create %a+ %d+/3", line)
        if i > 1 then assert.not_equal(lines[i - 1]:sub(22), line:sub(22)) end   -- only changes
      end
      assert.matches("^" .. STAMP .. " w%-create steady 3/3 idle=3$", lines[#lines])
      assert.falsy(err:find("\r", 1, true))
      assert.falsy(err:find("\27", 1, true))
    end)

    it("pool wait prints the pool, and --output none prints nothing but the progress", function()
      create("w-wait", 2)
      local status, out, err = cli("pool", "wait", "--pool-id", "w-wait", "--interval", "0.05", "--output", "none")
      assert.equal(0, status, err)
      assert.equal("", out)
      assert.matches(STAMP .. " w%-wait steady 2/2 idle=2\n$", err)
      status, out = cli("pool", "wait", "--pool-id", "w-wait", "--interval", "0.05", "--query", "currentDedicatedNodes",
        "--only-show-errors")
      assert.equal(0, status)
      assert.equal("2\n", out)
    end)

    it("pool resize --wait reaches the new target; --abort --wait stops at what was allocated", function()
      create("w-resize", 1, "--wait", "--interval", "0.05")
      local status, out, err = cli("pool", "resize", "--pool-id", "w-resize", "--target-dedicated-nodes", "2",
        "--wait", "--interval", "0.05")
      assert.equal(0, status, err)
      assert.equal(2, decode(out).currentDedicatedNodes)
      assert.matches("w%-resize steady 2/2 idle=2\n$", err)
      assert.equal(0, (cli("pool", "resize", "--pool-id", "w-resize", "--target-dedicated-nodes", "40")))
      status, out, err = cli("pool", "resize", "--pool-id", "w-resize", "--abort", "--wait", "--interval", "0.05")
      assert.equal(0, status, err)
      assert.equal("steady", decode(out).allocationState)
    end)

    it("pool delete --wait returns once the pool is gone", function()
      create("w-delete", 1)
      local status, out, err = cli("pool", "delete", "--pool-id", "w-delete", "--wait", "--interval", "0.05")
      assert.equal(0, status, err)
      assert.same({ id = "w-delete", deleted = true }, decode(out))
      assert.matches(STAMP .. " w%-delete deleting %d+ node%(s%) left", err)
      assert.equal("false\n", select(2, cli("pool", "exists", "--pool-id", "w-delete")))
    end)

    it("pool wait --deleted on a pool that is already gone succeeds at once", function()
      local status, out = cli("pool", "wait", "--pool-id", "never-was", "--deleted")
      assert.equal(0, status)
      assert.same({ id = "never-was", deleted = true }, decode(out))
    end)

    it("fails with the resize error of this resize (exit 1, one error line)", function()
      -- 600 one-core nodes against a 500-core quota
      create("w-quota", 600)
      finally(function() cli("pool", "delete", "--pool-id", "w-quota", "--wait", "--interval", "0.05") end)
      local status, out, err = cli("pool", "wait", "--pool-id", "w-quota", "--interval", "0.05", "--nodes", "allocated")
      assert.equal(1, status)
      assert.equal("", out)
      -- seen while resizing, or only once steady short of its target (a slow run)
      assert.matches("\nerror: pool w%-quota: [^\n]*resize error AccountCoreQuotaReached: [^\n]*\n$", "\n" .. err)
      assert.equal(1, select(2, err:gsub("error:", "")))
    end)

    it("fails early on unusable nodes, naming the first one's error", function()
      helper.control(emu, "failures", { image = MARKETPLACE, unusable = 1 })
      finally(function() helper.control(emu, "failures", { rules = azbatch.json.array {} }) end)
      local status, _, err = cli("pool", "create", "--id", "w-unusable", "--vm-size", "Standard_A1_v2",
        "--target-dedicated-nodes", "2", "--image", MARKETPLACE, "--node-agent-sku-id", AGENT, "--wait",
        "--interval", "0.05")
      assert.equal(1, status)
      assert.matches("unusable=%d", err)
      assert.matches("\nerror: pool w%-unusable: %d node%(s%) unusable %(more than the 0 tolerated%): tvmps_%x+_d: "
        .. "NodeAgentNotResponding: ", err)
    end)

    it("gives up after --timeout with what it saw", function()
      helper.control(emu, "clock", { timeScale = 1e-9 })
      finally(function() helper.control(emu, "clock", { timeScale = 500 }) end)
      create("w-slow", 3)
      local status, _, err = cli("pool", "wait", "--pool-id", "w-slow", "--timeout", "0.3", "--interval", "0.05")
      assert.equal(1, status)
      assert.matches("\nerror: pool w%-slow: still resizing %(%d of 3 nodes%) after 0%.3s\n$", err)
    end)

    it("says a missing pool is missing (exit 1)", function()
      local status, _, err = cli("pool", "wait", "--pool-id", "no-such-pool")
      assert.equal(1, status)
      assert.matches("^error: PoolNotFound: [^\n]*%(request%-id [%x-]+%)\n$", err)
    end)

    it("refuses waiting flags without --wait, and --deleted with node options, before sending", function()
      local before = requests()
      local status, _, err = cli("pool", "resize", "--pool-id", "p", "--target-dedicated-nodes", "1", "--timeout", "5")
      assert.equal(2, status)
      assert.matches("^error: %-%-timeout is for waiting: give %-%-wait with it\n", err)
      status, _, err = cli("pool", "wait", "--pool-id", "p", "--deleted", "--nodes", "ready")
      assert.equal(2, status)
      assert.matches("^error: %-%-deleted waits for the pool to go", err)
      assert.equal(before, requests())
    end)
  end)

  describe("set and reset", function()
    setup(function() create("sr-pool", 0) end)

    it("pool set changes only what is given and prints the pool", function()
      local status, out, err = cli("pool", "set", "--pool-id", "sr-pool", "--metadata", "team=vfx", "owner=me",
        "--start-task-command-line", "/bin/true", "--start-task-wait-for-success", "false")
      assert.equal(0, status, err)
      local pool = decode(out)
      assert.same({ { name = "team", value = "vfx" }, { name = "owner", value = "me" } }, pool.metadata)
      assert.equal("/bin/true", pool.startTask.commandLine)
      assert.is_false(pool.startTask.waitForSuccess)
      status, out = cli("pool", "set", "--pool-id", "sr-pool", "--display-name", "renamed", "--query",
        "[displayName, length(metadata), startTask.commandLine]")
      assert.equal(0, status)
      assert.same({ "renamed", 2, "/bin/true" }, decode(out))        -- the PATCH kept the rest
    end)

    it("pool reset replaces the properties: what is not given is removed", function()
      local status, out, err = cli("pool", "reset", "--pool-id", "sr-pool", "--metadata", "only=this")
      assert.equal(0, status, err)
      local pool = decode(out)
      assert.same({ { name = "only", value = "this" } }, pool.metadata)
      assert.is_nil(pool.startTask)
    end)

    it("pool set needs a property; a bad one fails validation; neither sends anything", function()
      local before = requests()
      local status, _, err = cli("pool", "set", "--pool-id", "sr-pool")
      assert.equal(2, status)
      assert.matches("^error: pool set needs a property to set", err)
      status, _, err = cli("pool", "set", "--pool-id", "sr-pool", "--task-slots-per-node=-1")
      assert.equal(1, status)
      assert.matches("^error: pool%.taskSlotsPerNode: must be an integer", err)
      assert.equal(before, requests())
    end)

    it("takes the PATCH body from --json-file", function()
      local path = helper.tempfile('{"metadata": [{"name": "from", "value": "file"}]}')
      local status, out, err = cli("pool", "set", "--pool-id", "sr-pool", "--json-file", path, "--query", "metadata")
      os.remove(path)
      assert.equal(0, status, err)
      assert.same({ { name = "from", value = "file" } }, decode(out))
    end)
  end)

  describe("autoscale", function()
    setup(function() create("as-pool", 0, "--wait", "--interval", "0.05") end)

    it("enables, evaluates and disables, printing the pool and the run", function()
      local status, out, err = cli("pool", "autoscale", "enable", "--pool-id", "as-pool", "--auto-scale-formula",
        "$TargetDedicatedNodes=1;", "--auto-scale-evaluation-interval", "PT5M", "--query",
        "{on: enableAutoScale, f: autoScaleFormula}")
      assert.equal(0, status, err)
      assert.same({ on = true, f = "$TargetDedicatedNodes=1;" }, decode(out))
      status, out, err = cli("pool", "autoscale", "evaluate", "--pool-id", "as-pool", "--auto-scale-formula",
        "$TargetDedicatedNodes=4;", "--output", "table")
      assert.equal(0, status, err)
      assert.matches("^Timestamp%s+Results%s+Error\n[- ]+\n%S+%s+%$TargetDedicatedNodes=4;", out)
      status, out = cli("pool", "autoscale", "evaluate", "--pool-id", "as-pool", "--auto-scale-formula",
        "$TargetDedicatedNodes=1/0;", "--query", "error.code")
      assert.equal(0, status)
      assert.equal('"AutoScalingFormulaEvaluationError"\n', out)
      status, out = cli("pool", "autoscale", "disable", "--pool-id", "as-pool", "--query", "enableAutoScale")
      assert.equal(0, status)
      assert.equal("false\n", out)
    end)

    it("needs a formula to evaluate; a service refusal is exit 1 with the code", function()
      local status, _, err = cli("pool", "autoscale", "evaluate", "--pool-id", "as-pool")
      assert.equal(2, status)
      assert.matches("^error: %-%-auto%-scale%-formula is required\n", err)
      status, _, err = cli("pool", "autoscale", "evaluate", "--pool-id", "as-pool", "--auto-scale-formula",
        "$TargetDedicatedNodes=1;")
      assert.equal(1, status)
      assert.matches("^error: AutoScalingNotEnabled: [^\n]*%(request%-id [%x-]+%)\n$", err)
    end)
  end)

  describe("nodes", function()
    setup(function() create("n-pool", 2, "--wait", "--interval", "0.05") end)

    it("lists, shows and deletes nodes", function()
      local status, out, err = cli("node", "list", "--pool-id", "n-pool", "--query", "[].id", "-o", "tsv")
      assert.equal(0, status, err)
      local ids = {}
      for id in out:gmatch("[^\n]+") do ids[#ids + 1] = id end
      assert.equal(2, #ids)
      status, out = cli("node", "show", "--pool-id", "n-pool", "--node-id", ids[1], "-o", "table")
      assert.equal(0, status)
      assert.matches("^Id%s+State%s+SchedulingState%s+VmSize%s+IpAddress%s+Dedicated%s+Error\n", out)
      assert.matches("\n" .. ids[1] .. "%s+idle%s+enabled%s+Standard_A1_v2%s+198%.1[89]%.[%d.]+%s+true\n$", out)
      status, out, err = cli("node", "delete", "--pool-id", "n-pool", "--node-list", ids[1],
        "--node-deallocation-option", "requeue")
      assert.equal(0, status, err)
      local res = decode(out)
      assert.equal("removeNodes", res.operation)
      assert.same({ ids[1] }, res.nodeList)
      status, out = cli("pool", "show", "--pool-id", "n-pool", "--query", "targetDedicatedNodes")
      assert.equal(0, status)
      assert.equal("1\n", out)
    end)

    it("says a missing node is missing, and needs the nodes to delete", function()
      local status, _, err = cli("node", "show", "--pool-id", "n-pool", "--node-id", "tvmps_nope")
      assert.equal(1, status)
      assert.matches("^error: NodeNotFound: ", err)
      local before = requests()
      status, _, err = cli("node", "delete", "--pool-id", "n-pool")
      assert.equal(2, status)
      assert.matches("^error: give the nodes: %-%-node%-list", err)
      status, _, err = cli("node", "list")
      assert.equal(2, status)
      assert.matches("^error: %-%-pool%-id is required", err)
      assert.equal(before, requests())
    end)
  end)

  describe("lists", function()
    it("pool node-counts list counts nodes by state", function()
      create("nc-pool", 1, "--wait", "--interval", "0.05")
      local status, out, err = cli("pool", "node-counts", "list", "--filter", "poolId eq 'nc-pool'", "-o", "table")
      assert.equal(0, status, err)
      assert.matches("^PoolId%s+Dedicated%s+LowPriority%s+Idle%s+Running%s+Starting%s+Unusable%s+StartTaskFailed%s+"
        .. "LeavingPool\n[- ]+\nnc%-pool%s+1%s+0%s+1%s+0%s+0%s+0%s+0%s+0\n$", out)
    end)

    it("supported-images lists end-of-life dates, and pool supported-images list is the same", function()
      local status, out, err = cli("supported-images", "-o", "table")
      assert.equal(0, status, err)
      assert.matches("\nbatch%.node%.ubuntu 20%.04%s+linux%s+Canonical%s+%S+%s+20_04%-lts%s+verified%s+"
        .. "2025%-04%-30 %(past%)\n", out)
      local _, json1 = cli("supported-images")
      local _, json2 = cli("pool", "supported-images", "list")
      assert.equal(json1, json2)
      assert.is_true(#decode(json1) >= 4)
    end)
  end)

  describe("output", function()
    setup(function() create("o-pool", 0) end)

    it("jsonc is plain JSON when stdout is not a terminal; tsv has no header; none prints nothing", function()
      local _, jsonc = cli("pool", "show", "--pool-id", "o-pool", "-o", "jsonc")
      local _, json = cli("pool", "show", "--pool-id", "o-pool", "-o", "json")
      assert.falsy(jsonc:find("\27", 1, true))
      assert.equal(decode(json).id, decode(jsonc).id)
      local _, tsv = cli("pool", "list", "--filter", "id eq 'o-pool'", "-o", "tsv")
      assert.matches("^o%-pool\tactive\t%a+\tStandard_A1_v2\t0/0\t0/0\t" .. MARKETPLACE:gsub("%p", "%%%0")
        .. ":latest\n$", tsv)
      local status, none = cli("pool", "show", "--pool-id", "o-pool", "-o", "none")
      assert.equal(0, status)
      assert.equal("", none)
    end)

    it("applies --query before the table, as az does", function()
      local status, out = cli("pool", "list", "--query", "[?id=='o-pool'].{id: id, dedicated: targetDedicatedNodes}",
        "-o", "table")
      assert.equal(0, status)
      assert.equal("Dedicated  Id\n---------  ------\n0          o-pool\n", out)
    end)

    it("refuses an invalid query before sending anything (exit 2, naming the column)", function()
      local before = requests()
      local status, out, err = cli("pool", "list", "--query", "[?id=='x'")
      assert.equal(2, status)
      assert.equal("", out)
      assert.matches("^error: %-%-query: invalid query at column 10: ", err)
      assert.equal(before, requests())
    end)

    it("reports a query that fails on the answer (exit 1)", function()
      local status, out, err = cli("pool", "show", "--pool-id", "o-pool", "--query", "sum(id)")
      assert.equal(1, status)
      assert.equal("", out)
      assert.matches("^error: %-%-query: query: sum%(%) expects an array of numbers", err)
    end)
  end)

  describe("--verbose and --debug", function()
    local SECRETS = { helper.DEV_KEY, "SharedKey devbatch:", "ocp-date", "Authorization", "authorization:" }

    local function assert_no_secret(text)
      for _, s in ipairs(SECRETS) do
        assert.falsy(text:find(s, 1, true), s)
      end
      -- no base64 signature of 44 characters (a SharedKey HMAC) either
      assert.falsy(text:find("[%w+/]" .. string.rep("[%w+/]", 42) .. "=", 1, false))
    end

    it("--verbose prints each request's method, URL, status and time, never the key", function()
      create("v-pool", 0)
      local status, out, err = cli("pool", "show", "--pool-id", "v-pool", "--verbose")
      assert.equal(0, status, err)
      assert.equal("v-pool", decode(out).id)
      assert.matches("^verbose: GET " .. emu.url:gsub("%p", "%%%0") .. "/pools/v%-pool%?api%-version=2025%-06%-01 %-> "
        .. "200 request%-id [%x-]+ %(%d+ ms%)\n$", err)
      assert_no_secret(out .. err)
    end)

    it("--verbose shows a failed request's status and code", function()
      local _, _, err = cli("pool", "show", "--pool-id", "v-missing", "--verbose")
      assert.matches("^verbose: GET [^\n]* %-> 404 PoolNotFound request%-id [%x-]+ %(%d+ ms%)\n"
        .. "error: PoolNotFound: ", err)
    end)

    it("--debug adds libcurl's connection events, redacted, and never a secret", function()
      local status, _, err = cli("pool", "list", "--debug", "--filter", "id eq 'v-pool'")
      assert.equal(0, status, err)
      assert.matches("\n?%* azbatch: ", err)
      assert.matches("verbose: GET [^\n]*/pools%?%$filter=id eq 'v%-pool'&api%-version=2025%-06%-01 %-> 200", err)
      assert_no_secret(err)
    end)

    it("redacts query values that could be secrets in a URL it shows", function()
      local cli_mod = require "azbatch.cli"
      assert.equal("https://h/p?sig=REDACTED&x=1&sv=2020", cli_mod.shown_url("https://h", "/p",
        { url = "https://h/p?sig=abc%2F&x=1&sv=2020" }))
      assert.equal("https://h/p?$skiptoken=t1&api-version=v&client_secret=REDACTED",
        cli_mod.shown_url("https://h", "/p", { query = { ["$skiptoken"] = "t1", client_secret = "s",
          ["api-version"] = "v" } }))
    end)
  end)

  describe("service errors", function()
    setup(function() create("err-pool", 1, "--wait", "--interval", "0.05") end)

    -- Each: exit 1, nothing on stdout, one line: error: CODE: message (request-id ...).
    local rows = {
      { { "pool", "create", "--id", "err-pool", "--vm-size", "Standard_A1_v2", "--target-dedicated-nodes", "0",
        "--image", MARKETPLACE, "--node-agent-sku-id", AGENT }, "PoolExists" },
      { { "pool", "show", "--pool-id", "missing" }, "PoolNotFound" },
      { { "pool", "delete", "--pool-id", "missing" }, "PoolNotFound" },
      { { "pool", "delete", "--pool-id", "missing", "--wait" }, "PoolNotFound" },
      { { "pool", "resize", "--pool-id", "missing", "--target-dedicated-nodes", "1" }, "PoolNotFound" },
      { { "pool", "resize", "--pool-id", "missing", "--target-dedicated-nodes", "1", "--wait" }, "PoolNotFound" },
      { { "pool", "resize", "--pool-id", "missing", "--abort" }, "PoolNotFound" },
      { { "pool", "resize", "--pool-id", "err-pool", "--target-dedicated-nodes", "2", "--if-match", "0x1" },
        "ConditionNotMet" },
      { { "pool", "set", "--pool-id", "missing", "--metadata", "a=b" }, "PoolNotFound" },
      { { "pool", "reset", "--pool-id", "missing" }, "PoolNotFound" },
      { { "pool", "autoscale", "enable", "--pool-id", "missing", "--auto-scale-formula", "$TargetDedicatedNodes=1;" },
        "PoolNotFound" },
      { { "pool", "autoscale", "enable", "--pool-id", "err-pool", "--auto-scale-formula", "$TargetDedicatedNodes=(;" },
        "AutoScalingFormulaSyntaxError" },
      { { "pool", "autoscale", "disable", "--pool-id", "missing" }, "PoolNotFound" },
      { { "pool", "node-counts", "list", "--filter", "bogus" }, "InvalidQueryParameterValue" },
      { { "node", "list", "--pool-id", "missing" }, "PoolNotFound" },
      { { "node", "delete", "--pool-id", "err-pool", "--node-list", "tvmps_nope" }, "NodeNotFound" },
      { { "supported-images", "--filter", "bogus" }, "InvalidQueryParameterValue" },
      { { "pool", "images", "--pool-id", "missing" }, "PoolNotFound" },
      { { "pool", "images", "--filter", "bogus" }, "InvalidQueryParameterValue" },
    }
    for _, row in ipairs(rows) do
      it(table.concat(row[1], " ") .. " -> " .. row[2], function()
        local status, out, err = cli(table.unpack(row[1]))
        assert.equal(1, status, err)
        assert.equal("", out)
        assert.matches("^error: " .. row[2] .. ": [^\n]*%(request%-id [%x-]+%)\n$", err)
      end)
    end

    it("gives up waiting for a deletion after --timeout", function()
      create("err-del", 1, "--wait", "--interval", "0.05")
      helper.control(emu, "clock", { timeScale = 1e-9 })
      finally(function() helper.control(emu, "clock", { timeScale = 500 }) end)
      local status, out, err = cli("pool", "delete", "--pool-id", "err-del", "--wait", "--timeout", "0.3",
        "--interval", "0.05")
      assert.equal(1, status)
      assert.equal("", out)
      assert.matches("\nerror: pool err%-del: still deleting after 0%.3s\n$", err)
    end)
  end)

  describe("run SCRIPT", function()
    local function script(text)
      return helper.tempfile(text)
    end

    it("gives the script azbatch, a ready client and its arguments; its integer is the exit status", function()
      create("run-pool", 0)
      local path = script([[
        local n = 0
        for p in client:list_pools { filter = "id eq 'run-pool'" } do n = n + 1 end
        print(azbatch._VERSION ~= nil, n, arg[0] ~= nil, arg[1], arg[2], select("#", ...))
        return tonumber(arg[1])
      ]])
      local status, out, err = cli("run", path, "3", "--not-azbatch-s")
      os.remove(path)
      assert.equal(3, status, err)
      assert.equal("true\t1\ttrue\t3\t--not-azbatch-s\t2\n", out)
    end)

    local outcomes = {
      { "return true", 0, "" },
      { "return nil", 0, "" },
      { "return false", 1, "" },
      { "return nil, 'pool p: not steady'", 1, "^error: pool p: not steady\n$" },
      { "error('boom')", 1, "^error: [^\n]*:1: boom\n$" },
      { "error({ message = 'table error' })", 1, "^error: table error\n$" },
      { "return 300", 255, "" },
      { "this is not lua", 1, "^error: [^\n]*: syntax error near 'is'\n$" },
    }
    for _, row in ipairs(outcomes) do
      it(("exits %d when the script does: %s"):format(row[2], row[1]), function()
        local path = script(row[1])
        local status, _, err = cli("run", path)
        os.remove(path)
        assert.equal(row[2], status)
        if row[3] == "" then assert.equal("", err) else assert.matches(row[3], err) end
      end)
    end

    it("needs a script it can open", function()
      local status, _, err = cli("run")
      assert.equal(2, status)
      assert.matches("^error: run needs a script", err)
      status, _, err = cli("run", "/nonexistent/x.lua")
      assert.equal(1, status)
      assert.matches("^error: /nonexistent/x%.lua: cannot open the script\n$", err)
    end)

    it("logs the script's requests with --verbose before the script", function()
      local path = script("assert(client:pool_exists('run-pool'))")
      local status, _, err = cli("run", "--verbose", path)
      os.remove(path)
      assert.equal(0, status, err)
      assert.matches("^verbose: HEAD [^\n]*/pools/run%-pool%?api%-version=2025%-06%-01 %-> 200", err)
    end)
  end)
end)
