-- tests/outcomes.lua: the judge that reliability_spec and the soak share.
-- Every verdict, on made-up calls and journals (no emulator).
local outcomes = require "outcomes"

local function ok(crid, recovered) return { client_request_id = crid, recovered = recovered } end
local function fail(crid, outcome) return { kind = "api", client_request_id = crid, outcome = outcome } end

describe("outcomes.applied", function()
  it("counts the writes applied under each client-request-id, and adds to a set given", function()
    local entries = { { clientRequestId = "a", method = "POST", path = "/pools", status = 201, answered = false },
      { clientRequestId = "b", method = "DELETE", path = "/pools/p", status = 202, answered = true },
      { clientRequestId = "a", method = "POST", path = "/pools", status = 201, answered = true },
      { method = "PUT", path = "/subscriptions/x", status = 200, answered = true } }      -- no id: not counted
    assert.same({ a = 2, b = 1 }, outcomes.applied(entries))
    local into = { c = 1 }
    assert.equal(into, outcomes.applied({ { clientRequestId = "c" } }, into))
    assert.same({ c = 2 }, into)
    assert.same({}, outcomes.applied({}))
  end)
end)

describe("outcomes.call, crid, reported", function()
  it("keeps what a call returned and reads its id and its word", function()
    local c = outcomes.call("create", "p1", ok("a"), nil, nil, { id = "p1" })
    assert.same({ kind = "create", id = "p1", ok = true, result = ok("a"), args = { id = "p1" } }, c)
    assert.equal("a", outcomes.crid(c))
    assert.equal("success", outcomes.reported(c))
    local f = outcomes.call("delete", "p1", nil, "api: PoolNotFound", fail("b"))
    assert.is_false(f.ok)
    assert.equal("api: PoolNotFound", f.why)
    assert.equal("b", outcomes.crid(f))
    assert.equal("failure", outcomes.reported(f))
    assert.equal("unknown", outcomes.reported(outcomes.call("resize", "p1", nil, "lost", fail("c", "unknown"))))
    -- a validation failure sent nothing: it has no id
    local v = outcomes.call("patch", "p1", nil, "pool.metadata: ...", { kind = "validation" })
    assert.is_nil(outcomes.crid(v))
    assert.equal("failure", outcomes.reported(v))
  end)
end)

describe("Tally:judge", function()
  local applied = { a = 1, b = 2 }
  -- call, settled, expected word, happened, the counts that move, a problem matching
  local rows = {
    { "success, applied", outcomes.call("k", "p", ok("a")), nil, "success", true, { successes = 1 } },
    { "recovered success", outcomes.call("k", "p", ok("b", true)), nil, "success", true,
      { successes = 1, recovered = 1 } },
    { "false success", outcomes.call("k", "p", ok("x")), nil, "success", false,
      { successes = 1, false_success = 1 }, "k p: reported success, never applied" },
    { "failure, not applied", outcomes.call("k", "p", nil, "no", fail("x")), nil, "failure", false,
      { failures = 1 } },
    { "false failure", outcomes.call("k", "p", nil, "api: 409", fail("a")), nil, "failure", true,
      { failures = 1, false_failure = 1 }, "k p: reported failure %(api: 409%), but applied" },
    { "validation failure", outcomes.call("k", "p", nil, "bad", { kind = "validation" }), nil, "failure", false,
      { failures = 1 } },
    { "unknown, unsettled", outcomes.call("k", "p", nil, "lost", fail("a", "unknown")), nil, "unknown", true,
      { unknown = 1 } },
    { "unknown, settled right (applied)", outcomes.call("k", "p", nil, "lost", fail("a", "unknown")), true,
      "unknown", true, { unknown = 1, settled = 1 } },
    { "unknown, settled right (not applied)", outcomes.call("k", "p", nil, "lost", fail("x", "unknown")), false,
      "unknown", false, { unknown = 1, settled = 1 } },
    { "unknown, settled wrong", outcomes.call("k", "p", nil, "lost", fail("x", "unknown")), true, "unknown", false,
      { unknown = 1, settled = 1, settled_wrong = 1 },
      "k p: outcome unknown, read back as applied, but the journal says not applied" },
    { "unknown, settled wrong the other way", outcomes.call("k", "p", nil, "lost", fail("b", "unknown")), false,
      "unknown", true, { unknown = 1, settled = 1, settled_wrong = 1 },
      "read back as not applied, but the journal says applied" },
  }
  for _, row in ipairs(rows) do
    local name, c, settled, word, happened, moved, pattern = table.unpack(row, 1, 7)
    it(name, function()
      c.settled = settled
      local tally = outcomes.tally()
      local said, was = tally:judge(c, applied)
      assert.equal(word, said)
      assert.equal(happened, was)
      local want = { ops = 1 }
      for _, col in ipairs(outcomes.COLUMNS) do want[col] = want[col] or moved[col] or 0 end
      assert.same(want, tally.kinds.k)
      if pattern then
        assert.equal(1, #tally.problems)
        assert.matches(pattern, tally.problems[1])
      else
        assert.same({}, tally.problems)
      end
    end)
  end

  it("sums kinds and prints an aligned table with a total", function()
    local tally = outcomes.tally()
    tally:judge(outcomes.call("create", "p", ok("a")), applied)
    tally:judge(outcomes.call("create", "q", ok("b", true)), applied)
    tally:judge(outcomes.call("delete", "p", nil, "no", fail("x")), applied)
    local total = tally:totals()
    assert.equal(3, total.ops)
    assert.equal(2, total.successes)
    assert.equal(1, total.recovered)
    assert.equal(1, total.failures)
    local lines = tally:lines()
    assert.equal(4, #lines)
    assert.matches("^kind%s+ops%s+successes%s+recovered%s+failures%s+unknown%s+settled%s+false_success", lines[1])
    assert.matches("^create%s+2%s+2%s+1%s+0", lines[2])
    assert.matches("^delete%s+1%s+0%s+0%s+1", lines[3])
    assert.matches("^total%s+3%s+2%s+1%s+1", lines[4])
    for i = 2, #lines do assert.equal(#lines[1], #lines[i]) end
    local empty = outcomes.tally():lines()
    assert.equal(2, #empty)
    assert.equal("total", empty[2]:match("^%S+"))
    assert.equal(#outcomes.COLUMNS, select(2, empty[2]:gsub(" 0", "")))
  end)
end)
