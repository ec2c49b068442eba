-- The coroutine scheduler (lua/azbatch/parallel.lua): sleeping, plain
-- yields, errors, waiting on requests of one or several transports, and
-- transports closed or requests cancelled under waiting coroutines.
local parallel = require "azbatch.parallel"
local core = require "azbatch.core"
local server = dofile("tests/unit/support/server.lua")

describe("azbatch.parallel", function()
  it("returns one packed result per function, in order", function()
    local r = parallel.run {
      function() return 1, nil, 3 end,
      function() end,
      function() return "x" end,
    }
    assert.are.same({ { n = 3, 1, nil, 3 }, { n = 0 }, { n = 1, "x" } }, r)
  end)

  it("interleaves sleepers by their deadlines", function()
    local order = {}
    parallel.run {
      function() parallel.sleep(0.15); order[#order + 1] = "slow" end,
      function() parallel.sleep(0.05); order[#order + 1] = "fast" end,
      function() order[#order + 1] = "now" end,
    }
    assert.are.same({ "now", "fast", "slow" }, order)
  end)

  it("sleeps side by side, not one after another", function()
    local t0 = core.now()
    local fns = {}
    for i = 1, 10 do fns[i] = function() parallel.sleep(0.2) end end
    parallel.run(fns)
    assert.is_true(core.now() - t0 < 1.5)   -- ten in turn would take 2 s
  end)

  it("runs plain coroutine.yield callers again", function()
    local n = 0
    parallel.run { function() for _ = 1, 3 do coroutine.yield(); n = n + 1 end end }
    assert.are.equal(3, n)
  end)

  it("re-raises the first error after the others finish", function()
    local finished = false
    local ok, err = pcall(parallel.run, {
      function() error("boom", 0) end,
      function() parallel.sleep(0.05); finished = true end,
      function() error("second", 0) end,
    })
    assert.is_false(ok)
    assert.are.equal("boom", err)
    assert.is_true(finished)
  end)

  it("tells managed coroutines from others", function()
    assert.is_false(parallel.managed())
    local inside = parallel.run { function() return parallel.managed() end }
    assert.is_true(inside[1][1])
  end)

  it("raises on misuse", function()
    assert.error_matches(function() parallel.run(nil) end, "table expected")
    assert.error_matches(function() parallel.run { 42 } end, "item 1 is a number")
    for _, bad in ipairs { -1, 0 / 0, math.huge, "1" } do
      assert.error_matches(function() parallel.sleep(bad) end, "finite number of seconds")
    end
  end)

  it("sleep outside parallel blocks for the time asked", function()
    local t0 = core.now()
    parallel.sleep(0.1)
    parallel.sleep(0)
    assert.is_true(core.now() - t0 >= 0.09)
  end)

  describe("with requests", function()
    local srv
    setup(function() srv = server.start() end)
    teardown(function() server.stop(srv) end)

    local function get(http, path)
      local req = assert(http:start { method = "GET", url = srv.url .. path })
      parallel.await(http, req)
      return req:result()
    end

    it("waits on several transports in one wait", function()
      local a <close> = core.http {}
      local b <close> = core.http {}
      local order = {}
      parallel.run {
        function() get(a, "/sleep?s=0.4"); order[#order + 1] = "a" end,
        function()
          for _ = 1, 10 do assert.are.equal(200, (get(b, "/big?n=10"))) end
          order[#order + 1] = "b"
        end,
      }
      -- b's ten quick requests are not held behind a's slow one
      assert.are.same({ "b", "a" }, order)
    end)

    it("a parallel run inside a parallel run joins it: nobody's request is lost", function()
      local http <close> = core.http {}
      local order = {}
      local r = parallel.run {
        function()
          local inner = parallel.run {
            function() return (get(http, "/sleep?s=0.2")) end,
            function() parallel.sleep(0.05); order[#order + 1] = "inner sleeper"; return 7 end,
          }
          order[#order + 1] = "inner done"
          return inner[1][1], inner[2][1]
        end,
        function()
          for _ = 1, 5 do assert.are.equal(200, (get(http, "/big?n=3"))) end
          order[#order + 1] = "sibling"
          return "ok"
        end,
      }
      assert.are.same({ n = 2, 200, 7 }, r[1])
      assert.are.same({ n = 1, "ok" }, r[2])
      -- the sibling's requests went on while the inner run waited on its slow one
      assert.are.equal("inner done", order[3])
      table.sort(order)
      assert.are.same({ "inner done", "inner sleeper", "sibling" }, order)
    end)

    it("an error in an inner run is raised to its caller only", function()
      local r = parallel.run {
        function()
          local ok, err = pcall(parallel.run, { function() error("inner boom", 0) end, function() end })
          return ok, err
        end,
        function() parallel.sleep(0.01); return "fine" end,
      }
      assert.are.same({ n = 2, false, "inner boom" }, r[1])
      assert.are.same({ n = 1, "fine" }, r[2])
    end)

    it("wakes every task waiting on one request", function()
      local http <close> = core.http {}
      local req = assert(http:start { method = "GET", url = srv.url .. "/sleep?s=0.1" })
      local r = parallel.run {
        function() parallel.await(http, req); return (req:result()) end,
        function() parallel.await(http, req); return (req:result()) end,
      }
      assert.are.equal(200, r[1][1])
      assert.are.equal(200, r[2][1])
      -- and a request already done returns at once
      parallel.await(http, req)
    end)

    it("a transport closed under waiting tasks ends their requests with a fail", function()
      local h <close> = core.http {}
      local other <close> = core.http {}
      local r = parallel.run {
        function() return get(h, "/sleep?s=3") end,
        function() parallel.sleep(0.1); h:close() end,
        function() parallel.sleep(0.2); return get(other, "/big?n=3") end,
      }
      assert.is_nil(r[1][1])
      assert.matches("the azbatch.Http was closed$", r[1][2])
      assert.is_true(r[1][3].cancelled)
      assert.are.equal(200, r[3][1])    -- the rest went on
    end)

    it("a request cancelled under its waiting task wakes it with the reason", function()
      local h <close> = core.http {}
      local req
      local r = parallel.run {
        function()
          req = assert(h:start { method = "GET", url = srv.url .. "/sleep?s=3" })
          parallel.await(h, req)
          return req:result()
        end,
        function() parallel.sleep(0.1); req:cancel("stopped by the test") end,
      }
      assert.is_nil(r[1][1])
      assert.matches("stopped by the test$", r[1][2])
    end)
  end)

  describe("keyed", function()
    it("gets, puts and takes like a table, and counts the live keys", function()
      local m = parallel.keyed()
      local a, b = {}, {}
      m:put(a, 1)
      m:put(b, 2)
      m:put(a, 3)                                   -- a new value, not a new key
      assert.equal(3, m:get(a))
      assert.equal(2, m.live)
      assert.equal(3, m:take(a))
      assert.is_nil(m:get(a))
      assert.is_nil(m:take(a))                      -- taken twice: nothing
      assert.equal(1, m.live)
      m:put(a, 4)                                   -- back in: its old node again
      assert.equal(4, m:get(a))
      assert.same({ live = 2, dead = 0 }, { live = m.live, dead = m.dead })
    end)

    it("builds the table anew once the dead outnumber the live by more than 64, keeping every live key", function()
      local m = parallel.keyed()
      local keep = {}
      for i = 1, 32 do
        keep[i] = {}
        m:put(keep[i], i)
      end
      local first = m.t
      for i = 1, 97 do                              -- the 97th dead outnumbers 32 live by 65
        local k = {}
        m:put(k, true)
        m:take(k)
        if i < 97 then assert.equal(first, m.t, "rebuilt early, at " .. i) end
      end
      assert.are_not.equal(first, m.t)
      assert.equal(0, m.dead)
      assert.equal(32, m.live)
      for i = 1, 32 do assert.equal(i, m:get(keep[i])) end
      local n = 0
      for _, v in pairs(m.t) do if v then n = n + 1 end end
      assert.equal(32, n)
      assert.equal(32, #m:keys())
    end)

    it("with weak keys, stays weak after a rebuild", function()
      local m = parallel.keyed("k")
      for _ = 1, 100 do
        local k = {}
        m:put(k, true)
        m:take(k)
      end
      assert.equal("k", getmetatable(m.t).__mode)
      m:put({}, true)                               -- nothing holds this key
      collectgarbage()
      collectgarbage()
      assert.same({}, m:keys())
    end)

    it("keys() may be walked while the map changes", function()
      local m = parallel.keyed()
      for i = 1, 10 do m:put(i, true) end
      local seen = 0
      for _, k in ipairs(m:keys()) do
        m:take(k)
        seen = seen + 1
      end
      assert.equal(10, seen)
      assert.same({}, m:keys())
      assert.equal(0, m.live)
    end)
  end)
end)
