-- rollout start|status|resume|abort|forget against the emulator, with
-- Microsoft Entra ID from the environment (gallery images refuse Shared
-- Key): a plan that writes nothing, a blue-green to the end, a canary that
-- fails and rolls back, and a runner killed half-way, then aborted or
-- resumed from the service's records alone.
local azbatch = require "azbatch"
local helper = test_helper

local GALLERY = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers"
  .. "/Microsoft.Compute/galleries/devgallery/images/ubuntu2204"
local V11 = GALLERY .. "/versions/1.1.0"
local STAMP = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ"

local function decode(out) return assert(azbatch.json.decode(out)) end

describe("azbatch rollout verbs", function()
  local emu, env_prefix
  setup(function()
    emu = helper.emulator("--time-scale 100 --seed 3")
    local vars = { AZURE_BATCH_ENDPOINT = emu.url, AZURE_AUTHORITY_HOST = emu.url,
      AZURE_RESOURCE_MANAGER_ENDPOINT = emu.url, AZURE_TENANT_ID = helper.DEV_TENANT,
      AZURE_CLIENT_ID = helper.DEV_CLIENT, AZURE_CLIENT_SECRET = helper.DEV_SECRET,
      AZURE_BATCH_ACCOUNT = helper.DEV_ACCOUNT }
    local parts = { "env -u AZURE_BATCH_ACCESS_KEY -u AZURE_BATCH_ACCOUNT_RESOURCE_ID -u AZURE_SUBSCRIPTION_ID" }
    for k, v in pairs(vars) do parts[#parts + 1] = ("%s=%s"):format(k, helper.shq(v)) end
    env_prefix = table.concat(parts, " ") .. " " .. helper.sanitizer_env()
      .. helper.shq(helper.ROOT .. "/scripts/azbatch")
  end)
  teardown(function() if emu then emu.stop() end end)
  before_each(function() helper.control(emu, "reset", {}) end)

  local function argv_text(...)
    local parts = { env_prefix }
    for _, a in ipairs { ... } do parts[#parts + 1] = helper.shq(a) end
    return table.concat(parts, " ")
  end
  local function cli(...) return helper.run(argv_text(...)) end
  local function writes() return #helper.control(emu, "journal").value end
  local function pool_ids()
    local _, out = cli("pool", "list", "--query", "sort([].id)")
    return decode(out)
  end

  it("--dry-run prints the plan, each call with its body, and writes nothing", function()
    local before = writes()
    local status, out, err = cli("rollout", "start", "--strategy", "blue-green", "--pool", "workers-v1", "--image",
      V11, "--id", "ro-dry", "--dry-run")
    assert.equal(0, status, err)
    assert.matches("^rollout ro%-dry: blue%-green of workers%-v1 to [^\n]*/versions/1%.1%.0 %(%d+ steps, dry run: "
      .. "nothing is sent%)\n", out)
    assert.matches("\n%s+2%. create_pool%s+POST /pools%s+workers%-v1%-rodry\n%s+{\"", out)
    assert.matches("\n%s+%d+%. delete_pool%s+DELETE /pools/workers%-v1", out)
    assert.equal(before, writes())
    -- as JSON: the steps
    status, out = cli("rollout", "start", "--strategy", "blue-green", "--pool", "workers-v1", "--image", V11,
      "--dry-run", "-o", "json", "--query", "[].call")
    assert.equal(0, status)
    local calls = decode(out)
    assert.equal("preflight", calls[1])
    assert.equal("create_pool", calls[2])
    assert.equal(before, writes())
  end)

  it("runs a blue-green to the end: report on stdout, one line per step on stderr, the SVG, status, forget", function()
    local svg = os.tmpname()
    local status, out, err = cli("rollout", "start", "--strategy", "blue-green", "--pool", "workers-v1", "--image",
      V11, "--id", "ro-bg", "--poll", "0.1", "--svg", svg)
    assert.equal(0, status, err)
    assert.matches("^rollout ro%-bg %(blue%-green%): done\n", out)
    assert.matches("\n%s+1%s+ok%s+[^\n]*preflight", out)
    assert.matches("^" .. STAMP .. " ro%-bg step 1 preflight[^\n]* ok\n", err)
    assert.matches("\n" .. STAMP .. " ro%-bg step %d+ record the rollout as done ok\n$", err)
    local f = assert(io.open(svg))
    local picture = f:read("a")
    f:close()
    os.remove(svg)
    assert.matches("^<svg", picture)
    assert.same({ "workers-v1-robg" }, pool_ids())
    local _, st = cli("rollout", "status", "-o", "json", "--query", "[?id=='ro-bg'] | [0].[state, done, steps]")
    local row = decode(st)
    assert.equal("done", row[1])
    assert.equal(row[3], row[2])
    status, out = cli("rollout", "status", "--id", "ro-bg")
    assert.equal(0, status)
    assert.matches("^rollout ro%-bg %(blue%-green%): done\n", out)
    status, out = cli("rollout", "forget", "--id", "ro-bg")
    assert.equal(0, status)
    assert.same({ id = "ro-bg", forgotten = true }, decode(out))
    _, st = cli("rollout", "status", "-o", "json", "--query", "[?id=='ro-bg']")
    assert.same({}, decode(st))
  end)

  it("rolls a canary back when its nodes fail, exits 1 with the report and one error line", function()
    helper.control(emu, "failures", { image = V11, unusable = 1 })
    local status, out, err = cli("rollout", "start", "--strategy", "canary", "--canary-nodes", "1", "--then",
      "blue-green", "--pool", "workers-v1", "--image", V11, "--id", "ro-can", "--poll", "0.1")
    assert.equal(1, status)
    assert.matches("^rollout ro%-can %(canary%): rolled_back", out)
    assert.matches("\nerror: [^\n]*\n$", err)
    assert.equal(1, select(2, err:gsub("\nerror: ", "")) + (err:match("^error: ") and 1 or 0))
    assert.same({ "workers-v1" }, pool_ids())         -- the canary is gone, the old pool stays
  end)

  describe("a runner killed half-way", function()
    -- Start a rollout in the background, wait until it logs 'step N', kill it.
    local function start_and_kill(id, step)
      helper.control(emu, "clock", { timeScale = 2 })      -- slow enough to be caught in a wait
      local log = os.tmpname()
      local p = io.popen(argv_text("rollout", "start", "--strategy", "blue-green", "--pool", "workers-v1",
        "--image", V11, "--id", id, "--poll", "0.1") .. " >/dev/null 2>" .. helper.shq(log) .. " & echo $!")
      local pid = assert(tonumber(p:read("l")))
      p:close()
      local seen = false
      for _ = 1, 300 do
        local f = io.open(log)
        local text = f and f:read("a") or ""
        if f then f:close() end
        if text:find(" step " .. step .. " ", 1, true) then seen = true break end
        helper.sleep(0.05)
      end
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      os.remove(log)
      helper.control(emu, "clock", { timeScale = 100 })
      assert.is_true(seen, "the runner never reached step " .. step)
    end

    it("shows as running in status, and abort returns the pools to where they were", function()
      start_and_kill("ro-kill1", 2)
      local status, out = cli("rollout", "status", "-o", "json", "--query", "[?id=='ro-kill1'] | [0].state")
      assert.equal(0, status)
      assert.equal('"running"\n', out)
      local err
      status, out, err = cli("rollout", "abort", "--id", "ro-kill1", "--poll", "0.1")
      assert.equal(0, status, err)
      assert.matches("^rollout ro%-kill1 %(blue%-green%): aborted", out)
      assert.same({ "workers-v1" }, pool_ids())
    end)

    it("resume carries it to the end", function()
      start_and_kill("ro-kill2", 2)
      local status, out, err = cli("rollout", "resume", "--id", "ro-kill2", "--poll", "0.1")
      assert.equal(0, status, err)
      assert.matches("^rollout ro%-kill2 %(blue%-green%): done", out)
      assert.same({ "workers-v1-rokill2" }, pool_ids())
      -- a done rollout cannot be aborted
      status, out, err = cli("rollout", "abort", "--id", "ro-kill2")
      assert.equal("", out)
      assert.equal(1, status)
      assert.matches("^error: rollout ro%-kill2: finished; there is nothing to abort\n$", err)
    end)
  end)

  describe("errors", function()
    local usage = {
      { { "rollout", "start", "--pool", "workers-v1", "--image", V11 }, "^error: %-%-strategy is required\n" },
      { { "rollout", "start", "--strategy", "rolling", "--image", V11 }, "^error: %-%-pool is required\n" },
      { { "rollout", "start", "--strategy", "rolling", "--pool", "p" }, "^error: %-%-image is required\n" },
      { { "rollout", "start", "--strategy", "rolling", "--pool", "p", "--image", V11, "--canary-nodes", "2" },
        "^error: %-%-canary%-nodes, %-%-then and %-%-keep%-canary go with %-%-strategy canary\n" },
      { { "rollout", "start", "--strategy", "rolling", "--pool", "p", "--image", V11, "--names", "p" },
        "^error: %-%-names expects OLD=NEW, got \"p\"\n" },
      { { "rollout", "start", "--strategy", "rolling", "--pool", "p", "--image", V11, "--batch", "0" },
        "^error: option 'batch' must be an integer >= 1\n" },
      { { "rollout", "start", "--strategy", "rolling", "--pool", "p,p", "--image", V11 },
        "^error: pools%[2%]: \"p\" is named twice\n" },
      { { "rollout", "resume" }, "^error: %-%-id is required\n" },
      { { "rollout", "abort" }, "^error: %-%-id is required\n" },
      { { "rollout", "forget" }, "^error: %-%-id is required\n" },
    }
    for _, row in ipairs(usage) do
      it("is a usage error, sending nothing: " .. table.concat(row[1], " ", 2), function()
        local before = helper.control(emu, "stats").requests
        local status, out, err = cli(table.unpack(row[1]))
        assert.equal(2, status, err)
        assert.equal("", out)
        assert.matches(row[2], err)
        assert.equal(before, helper.control(emu, "stats").requests)
      end)
    end

    local failures = {
      { { "rollout", "start", "--strategy", "rolling", "--pool", "p", "--image", V11, "--id", "bad id!" },
        "^error: rollout%.id: " },
      { { "rollout", "start", "--strategy", "blue-green", "--pool", "p", "--image", "not an image" },
        "^error: rollout%.image: " },
      { { "rollout", "start", "--strategy", "blue-green", "--pool", "no-such-pool", "--image", V11, "--dry-run" },
        "^error: rollout: pool no%-such%-pool does not exist\n$" },
      { { "rollout", "resume", "--id", "ro-none" }, "^error: rollout ro%-none: no pool holds it\n$" },
      { { "rollout", "abort", "--id", "ro-none" }, "^error: rollout ro%-none: no pool holds it\n$" },
      { { "rollout", "forget", "--id", "ro-none" }, "^error: rollout ro%-none: no pool holds it\n$" },
      { { "rollout", "status", "--id", "ro-none" }, "^error: rollout ro%-none: no pool holds it\n$" },
      { { "rollout", "start", "--strategy", "blue-green", "--pool", "workers-v1", "--image", V11,
        "--json-file", "/nonexistent/spec.json" }, "^error: %-%-json%-file /nonexistent/spec%.json: cannot open it" },
    }
    for _, row in ipairs(failures) do
      it("fails with exit 1: " .. table.concat(row[1], " ", 2), function()
        local status, out, err = cli(table.unpack(row[1]))
        assert.equal(1, status, err)
        assert.equal("", out)
        assert.matches(row[2], err)
      end)
    end

    it("says when the SVG cannot be written, after the rollout's report", function()
      local status, out, err = cli("rollout", "start", "--strategy", "blue-green", "--pool", "workers-v1", "--image",
        V11, "--id", "ro-svg", "--poll", "0.1", "--svg", "/nonexistent/dir/t.svg")
      assert.equal(1, status)
      assert.matches("^rollout ro%-svg %(blue%-green%): done", out)
      assert.matches("\nerror: %-%-svg /nonexistent/dir/t%.svg: cannot write it %(No such file or directory%)\n$", err)
    end)
  end)
end)
