-- The example C host (scripts/examples/host, built as build/azbatch-host)
-- against the emulator: the events it writes, its exit status, the pools a
-- policy leaves, signals, and its usage errors. tests/asan.sh runs this spec
-- with AZBATCH_HOST naming the ASan build, so the host runs leak-checked.
local json = require "azbatch.json"
local helper = test_helper

local BIN = os.getenv("AZBATCH_HOST") or helper.ROOT .. "/build/azbatch-host"
local POLICY = helper.ROOT .. "/scripts/examples/host/policy.lua"
local GALLERY = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers"
  .. "/Microsoft.Compute/galleries/devgallery/images/ubuntu2204"
local V2 = GALLERY .. "/versions/1.1.0"

local emu, batch

local function command(args, events)
  local parts = { helper.entra_env(emu), "ROLLOUT_POLL=0.05", helper.shq(BIN) }
  if events then parts[#parts + 1] = "--events " .. helper.shq(events) end
  for _, a in ipairs(args) do parts[#parts + 1] = helper.shq(a) end
  return table.concat(parts, " ")
end

local function read_events(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = assert(json.decode(line), line) end
  return out
end

--- Runs the host with its events in a file; returns status, events, stdout, stderr.
local function host(args, stdin)
  local events = os.tmpname()
  local status, out, err = helper.run(command(args, events) .. " <" .. (stdin or "/dev/null"))
  local evs = read_events(events)
  os.remove(events)
  return status, evs, out, err
end

--- A policy file with this text.
local function policy(text) return helper.tempfile(text) end

--- Runs the host in the background, sends 'signals' once its events hold
-- the text 'ready', and returns its status, events and stderr. With
-- hold_stdin its stdin is a FIFO that stays open and empty.
local function signalled(args, ready, signals, hold_stdin)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. helper.shq(dir)))
  local events, err = dir .. "/events", dir .. "/err"
  local script = table.concat({
    hold_stdin and ("mkfifo %s/in; exec 3<>%s/in"):format(dir, dir) or ":",
    ("%s <%s 2>%s & pid=$!"):format(command(args, events), hold_stdin and dir .. "/in" or "/dev/null", err),
    ("i=0; until grep -qF %s %s 2>/dev/null; do i=$((i+1)); [ $i -gt 400 ] && break; sleep 0.05; done")
      :format(helper.shq(ready), events),
    ("for s in %s; do kill -$s $pid; sleep 0.3; done"):format(table.concat(signals, " ")),
    "wait $pid; echo $?",
  }, "\n")
  local _, out = helper.run(script)
  local evs = read_events(events)
  local f = assert(io.open(err))
  local stderr = f:read("a")
  f:close()
  os.execute("rm -rf " .. helper.shq(dir))
  return tonumber(out:match("(%d+)%s*$")), evs, stderr
end

local function types(evs)
  local out = {}
  for _, e in ipairs(evs) do out[#out + 1] = e.type end
  return out
end

local function of_type(evs, t)
  local out = {}
  for _, e in ipairs(evs) do
    if e.type == t then out[#out + 1] = e end
  end
  return out
end

local function no_secret(...)
  for _, s in ipairs { ... } do assert.is_nil(s:find(helper.DEV_SECRET, 1, true), s) end
end

-- The pools left on the account: id -> {version, nodes}
local function pools()
  local out = {}
  for p in batch:list_pools() do
    if p.state ~= "deleting" then
      out[p.id] = { p.virtualMachineConfiguration.imageReference.virtualMachineImageId:match("[^/]+$"),
        p.targetDedicatedNodes }
    end
  end
  return out
end

describe("azbatch-host", function()
  setup(function()
    local f = io.open(BIN)
    assert(f, BIN .. " is missing: make host builds it (make test and make unit do)")
    f:close()
    local azbatch = require "azbatch"
    emu = helper.emulator("--time-scale 200")
    batch = assert(azbatch.client { endpoint = emu.url, credential = assert(azbatch.credential.client_secret {
      tenant = helper.DEV_TENANT, client_id = helper.DEV_CLIENT, client_secret = helper.DEV_SECRET,
      authority = emu.url }) })
  end)
  teardown(function()
    if batch then batch:close() end
    if emu then emu.stop() end
  end)
  before_each(function() helper.control(emu, "reset", {}) end)

  describe("runs the example policy, a canary then blue-green", function()
    it("done: exit 0, every step started and ended, approvals, counts, the new pool alone", function()
      local status, evs, out, err = host { "--approve=all", POLICY, "workers-v1", V2 }
      assert.equal(0, status, err)
      assert.equal("", err)
      assert.equal("", out)
      no_secret(json.encode(evs))
      local start, summary = evs[1], evs[#evs]
      assert.equal("start", start.type)
      assert.matches("^ro%-%x+$", start.rollout)
      assert.equal("done", evs[#evs - 1].type)
      assert.equal(start.rollout, evs[#evs - 1].rollout)
      for i, e in ipairs(evs) do
        assert.equal(i, e.seq)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", e.time)
      end
      local started, ended = of_type(evs, "step"), of_type(evs, "step_end")
      assert.equal(start.steps, #started)
      assert.equal(start.steps, #ended)
      for i, e in ipairs(ended) do
        assert.same({ i, "ok" }, { e.n, e.outcome })
        assert.equal(started[i].name, e.name)
        assert.is_true(e["end"] >= e.start)
      end
      local approvals = of_type(evs, "approval")
      assert.equal(3, #approvals)
      for _, a in ipairs(approvals) do assert.same({ true, "all" }, { a.approved, a.by }) end
      assert.matches("^approval: canary ", approvals[1].name)
      assert.equal("delete workers-v1", approvals[3].name)
      assert.same({ type = "summary", seq = #evs, time = summary.time, events = #evs - 1, outcome = "done", exit = 0,
        counts = { start = 1, step = start.steps, step_end = start.steps, approval = 3, done = 1 } }, summary)
      local new_id = "workers-v1-" .. start.rollout:gsub("%-", "")
      assert.same({ [new_id] = { "1.1.0", 2 } }, pools())
    end)

    it("nodes that end unusable: exit 3, the failed step, rollback and rolled_back, the old pool as it was", function()
      helper.control(emu, "failures", { image = V2, unusable = 1 })
      local status, evs, out, err = host { POLICY, "workers-v1", V2 }
      assert.equal(3, status, err)
      assert.equal("", out)
      local failed = of_type(evs, "step_end")[3]
      assert.same({ 3, "wait_pool", "failed" }, { failed.n, failed.call, failed.outcome })
      assert.matches("unusable", failed.message)
      local rollback = of_type(evs, "rollback")[1]
      assert.same({ 3, failed.message }, { rollback.step, rollback.message })
      local t = types(evs)
      assert.same({ "rolled_back", "summary" }, { t[#t - 1], t[#t] })
      assert.is_nil(of_type(evs, "done")[1])
      assert.same({}, of_type(evs, "approval"))
      -- the undo steps, numbered -1, -2, ...: jobs back, the canary deleted and gone
      local undo = {}
      for _, e in ipairs(of_type(evs, "step_end")) do
        if e.n < 0 then undo[#undo + 1] = e.call .. " " .. e.outcome end
      end
      assert.same({ "handover ok", "delete_pool ok", "wait_deleted ok" }, undo)
      assert.same({ outcome = "rolled_back", exit = 3 }, { outcome = evs[#evs].outcome, exit = evs[#evs].exit })
      assert.equal(1, evs[#evs].counts.rolled_back)
      assert.equal("azbatch-host: rolled back: " .. failed.message .. "\n", err)
      assert.same({ ["workers-v1"] = { "1.0.0", 2 } }, pools())
    end)

    it("--approve=none: the canary is not approved, exit 3", function()
      local status, evs, _, err = host { "--approve=none", POLICY, "workers-v1", V2 }
      assert.equal(3, status, err)
      local approvals = of_type(evs, "approval")
      assert.equal(1, #approvals)
      assert.same({ 5, false, "none" }, { approvals[1].step, approvals[1].approved, approvals[1].by })
      assert.matches("^azbatch%-host: rolled back: approval: canary workers%-v1%-%w+: not approved\n$", err)
      assert.equal("rolled_back", evs[#evs].outcome)
      assert.same({ ["workers-v1"] = { "1.0.0", 2 } }, pools())
    end)

    it("--approve=ask: one answer a line from stdin, prompts on stderr; no at the delete rolls back", function()
      -- a long line is one answer, its tail not the next
      local answers = helper.tempfile("yes" .. ("s"):rep(200) .. "\ny\nn\n")
      local status, evs, _, err = host({ "--approve", "ask", POLICY, "workers-v1", V2 }, answers)
      os.remove(answers)
      assert.equal(3, status, err)
      local got = {}
      for _, a in ipairs(of_type(evs, "approval")) do got[#got + 1] = { a.step, a.approved, a.by } end
      assert.same({ { 5, true, "ask" }, { 8, true, "ask" }, { 12, false, "ask" } }, got)
      assert.matches("azbatch%-host: approve step 5 %(approval: canary workers%-v1%-%w+%)%? %[y/N%] ", err)
      assert.matches("approve step 8 %(approval: hand jobs over%)%? %[y/N%] ", err)
      assert.matches("rolled back: approval: delete workers%-v1: not approved\n$", err)
      assert.same({ ["workers-v1"] = { "1.0.0", 2 } }, pools())
    end)

    it("SIGTERM while it asks: the approval is refused, the rollout rolls back, exit 143", function()
      local status, evs, err = signalled({ "--approve=ask", POLICY, "workers-v1", V2 },
        '"type":"step","name":"approval: canary', { "TERM" }, true)
      assert.equal(143, status, err)
      -- the step was announced, then the host was stopped while it waited for an answer
      local a = of_type(evs, "approval")
      assert.same({ 5, false, "SIGTERM" }, { a[1].step, a[1].approved, a[1].by })
      local t = types(evs)
      assert.same({ "rolled_back", "summary" }, { t[#t - 1], t[#t] })
      assert.same({ "rolled_back", 143 }, { evs[#evs].outcome, evs[#evs].exit })
      assert.matches("azbatch%-host: stopped by SIGTERM: approval: canary workers%-v1%-%w+: not approved\n$", err)
      assert.same({ ["workers-v1"] = { "1.0.0", 2 } }, pools())
    end)
  end)

  describe("the host table", function()
    it("host.emit copies scalar fields with string keys; host.args and ... carry ARGS; stdout by default", function()
      local p = policy [[
        local a, b = ...
        host.emit { type = "hello", s = "q\"uote\\ \n\t\1 é \255", i = 7, f = 1.5, big = 2^63, yes = true, no = false,
          nested = { 1 }, fn = print, [1] = "array part", seq = 99, time = "mine" }
        host.emit { n = #host.args, a = a, b = b, c = host.args[3] }
        host.emit { type = "stopping", value = host.stopping() }
        return true
      ]]
      local status, out, err = helper.run(command { p, "one", "two words", "--three" })
      os.remove(p)
      assert.equal(0, status, err)
      assert.equal("", err)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal(4, #lines)
      assert.matches('^{"seq":1,"time":"[^"]+","type":"hello","big":9.223372036854776e%+18,"f":1.5,"i":7,'
        .. '"no":false,"s":"q\\"uote\\\\ \\n\\t\\u0001 é \\ufffd","yes":true}$', lines[1])
      local e = assert(json.decode(lines[1]))
      assert.equal('q"uote\\ \n\t\1 é \u{FFFD}', e.s)
      assert.same({ seq = 2, type = "step_end", n = 3, a = "one", b = "two words", c = "--three" },
        (function(t) t.time = nil return t end)(assert(json.decode(lines[2]))))
      assert.is_false(assert(json.decode(lines[3])).value)
      assert.same({ hello = 1, step_end = 1, stopping = 1 }, assert(json.decode(lines[4])).counts)
      assert.is_true(json.decode(lines[4]).outcome == json.null or json.decode(lines[4]).outcome == nil)
    end)

    it("a policy that returns fail without a rollout: exit 4 and its message", function()
      local p = policy [[return nil, "nothing to roll out"]]
      local status, out, err = helper.run(command { p })
      os.remove(p)
      assert.equal(4, status)
      assert.equal("azbatch-host: no rollout finished: nothing to roll out\n", err)
      assert.matches('"exit":4}\n$', out)
    end)

    local errors = {
      { "raises", [[error("boom with " .. os.getenv("AZURE_CLIENT_SECRET"))]], ":1: boom with %*%*%*\n$" },
      { "raises a table", [[error({})]], "error: %(error object is a table value%)\n$" },
      { "does not parse", [[return (]], "error: .*unexpected symbol near <eof>\n$" },
      { "emits a non-table", [[host.emit(42)]], "bad argument #1 to 'emit' %(table expected, got number%)\n$" },
      { "emits a non-string type", [[host.emit { type = 1 }]],
        "bad argument #1 to 'emit' %(field 'type' must be a string%)" },
    }
    for _, case in ipairs(errors) do
      it("a policy that " .. case[1] .. ": exit 2, the message on stderr, never a secret", function()
        local p = policy(case[2])
        local status, out, err = helper.run(command { p })
        os.remove(p)
        assert.equal(2, status, err)
        assert.matches("^azbatch%-host: error: ", err)
        assert.matches(case[3], err)
        assert.matches('"type":"summary".*"exit":2}\n$', out)
        no_secret(out, err)
      end)
    end

    it("a policy file that is not there: exit 2", function()
      local status, _, err = helper.run(command { "/nonexistent/policy.lua" })
      assert.equal(2, status)
      assert.matches("^azbatch%-host: error: cannot open /nonexistent/policy%.lua", err)
    end)
  end)

  describe("signals without a rollout", function()
    it("one SIGINT: host.stopping() says so, the policy ends itself, exit 130", function()
      local p = policy [[
        local azbatch = require "azbatch"
        host.emit { type = "ready" }
        while not host.stopping() do azbatch.sleep(0.01) end
        host.emit { type = "stopping", by = host.stopping() }
        return true
      ]]
      local status, evs, err = signalled({ p }, '"type":"ready"', { "INT" })
      os.remove(p)
      assert.equal(130, status, err)
      assert.same({ "ready", "stopping", "summary" }, types(evs))
      assert.equal("SIGINT", evs[2].by)
      assert.equal(130, evs[3].exit)
      assert.equal("azbatch-host: stopped by SIGINT\n", err)
    end)

    it("a second signal interrupts a policy that does not listen; the state is still closed", function()
      local p = policy [[
        host.emit { type = "ready" }
        while true do end
      ]]
      local status, evs, err = signalled({ p }, '"type":"ready"', { "INT", "INT" })
      os.remove(p)
      assert.equal(130, status, err)
      assert.same({ "ready", "summary" }, types(evs))
      assert.equal("azbatch-host: stopped by SIGINT: interrupted\n", err)
    end)

    it("a third signal ends a policy stuck in C at once (no summary then)", function()
      local p = policy [[
        host.emit { type = "ready" }
        require("azbatch").sleep(20)   -- C: the hook of the second signal waits for Lua
      ]]
      local status, evs, err = signalled({ p }, '"type":"ready"', { "INT", "INT", "TERM" })
      os.remove(p)
      assert.equal(143, status, err)
      assert.same({ "ready" }, types(evs))
    end)
  end)

  describe("usage", function()
    local cases = {
      { {}, "^usage: azbatch%-host " },
      { { "--frobnicate", "p.lua" }, "^azbatch%-host: unknown option '%-%-frobnicate'\n$" },
      { { "--approve=maybe", "p.lua" }, "^azbatch%-host: %-%-approve: expected all, none or ask, got 'maybe'\n$" },
      { { "--events" }, "^azbatch%-host: %-%-events needs a value\n$" },
      { { "--events", "/nonexistent/dir/events", "p.lua" }, "^azbatch%-host: /nonexistent/dir/events: No such file" },
    }
    for _, case in ipairs(cases) do
      it(table.concat(case[1], " ") .. ": exit 1", function()
        local status, out, err = helper.run(command(case[1]))
        assert.equal(1, status)
        assert.equal("", out)
        assert.matches(case[2], err)
      end)
    end

    it("--help: usage on stdout, exit 0", function()
      local status, out = helper.run(command { "--help" })
      assert.equal(0, status)
      assert.matches("^usage: azbatch%-host %[%-%-events FILE%]", out)
    end)

    it("events that cannot be written: exit 1, said on stderr", function()
      local p = policy [[host.emit { type = "x" } return true]]
      local status, _, err = helper.run(command({ p }, "/dev/full"))
      os.remove(p)
      assert.equal(1, status)
      assert.equal("azbatch-host: /dev/full: No space left on device\n", err)
    end)
  end)
end)
