-- The retry policy (lua/azbatch/retry.lua): which failures are retried,
-- how long to wait, and what a service's Retry-After is believed to say.
local retry = require "azbatch.retry"
local core = require "azbatch.core"

describe("azbatch.retry", function()
  describe("policy", function()
    it("starts from the defaults and takes overrides", function()
      local p = retry.policy()
      assert.are.same(retry.DEFAULTS, p)
      p = retry.policy { max_attempts = 2, base_delay = 0.1 }
      assert.are.equal(2, p.max_attempts)
      assert.are.equal(0.1, p.base_delay)
      assert.are.equal(retry.DEFAULTS.max_delay, p.max_delay)
    end)

    it("false means one attempt and no waiting", function()
      assert.are.same({ max_attempts = 1, max_elapsed = 0, base_delay = 0, max_delay = 0 }, retry.policy(false))
    end)

    it("raises on an unknown key (with a suggestion) and on bad values", function()
      assert.error_matches(function() retry.policy { max_atempts = 3 } end,
                           "unknown option 'max_atempts' (did you mean 'max_attempts'?)", 1, true)
      for _, bad in ipairs { -1, 0 / 0, math.huge, "3" } do
        assert.error_matches(function() retry.policy { base_delay = bad } end, "must be a finite number", 1, true)
      end
      assert.error_matches(function() retry.policy { max_attempts = 0 } end, "integer >= 1", 1, true)
      assert.error_matches(function() retry.policy { max_attempts = 1.5 } end, "integer >= 1", 1, true)
      assert.error_matches(function() retry.policy(7) end, "table expected", 1, true)
    end)
  end)

  describe("retryable", function()
    local rows = {
      { 408, true }, { 429, true }, { 500, true }, { 502, true }, { 503, true }, { 504, true },
      { 400, false }, { 401, false }, { 403, false }, { 404, false }, { 409, false }, { 412, false },
    }
    for _, r in ipairs(rows) do
      it(("status %d: %s"):format(r[1], tostring(r[2])), function()
        assert.are.equal(r[2], retry.retryable(r[1]))
      end)
    end
    it("transport failures by their err", function()
      assert.is_true(retry.retryable(nil, { kind = "transport", retryable = true }))
      assert.is_false(retry.retryable(nil, { kind = "transport", retryable = false }))
      assert.is_true(retry.retryable(nil, { kind = "timeout" }))
      assert.is_false(retry.retryable(nil, nil))
    end)
  end)

  describe("delay", function()
    it("doubles from base_delay with jitter in [half, full], capped at max_delay", function()
      local p = retry.policy { base_delay = 1, max_delay = 5 }
      for _ = 1, 200 do
        local d1, d3, d9 = retry.delay(p, 1), retry.delay(p, 3), retry.delay(p, 9)
        assert.is_true(d1 >= 0.5 and d1 <= 1, d1)
        assert.is_true(d3 >= 2 and d3 <= 4, d3)
        assert.is_true(d9 >= 2.5 and d9 <= 5, d9)
      end
    end)

    it("waits as long as the service asked when that is longer", function()
      local p = retry.policy { base_delay = 0.1, max_delay = 1 }
      assert.are.equal(7, retry.delay(p, 1, 7))
      local d = retry.delay(p, 1, 0.01)
      assert.is_true(d >= 0.05 and d <= 0.1)
    end)
  end)

  describe("retry_after", function()
    local now = math.floor(core.time())
    local rows = {
      { {}, nil },
      { { ["retry-after"] = "3" }, 3 },
      { { ["retry-after"] = " 12 " }, 12 },
      { { ["retry-after-ms"] = "250" }, 0.25 },
      { { ["x-ms-retry-after-ms"] = "1500" }, 1.5 },
      { { ["retry-after-ms"] = "100", ["retry-after"] = "9" }, 0.1 },   -- the finer one wins
      { { ["retry-after"] = "-5" }, nil },
      { { ["retry-after"] = "0x10" }, nil },
      { { ["retry-after"] = "1e3" }, nil },
      { { ["retry-after"] = "inf" }, nil },
      { { ["retry-after"] = "nan" }, nil },
      { { ["retry-after"] = "soon" }, nil },
      { { ["retry-after"] = "99999999" }, retry.MAX_RETRY_AFTER },        -- a day-long ask is capped
      { { ["retry-after-ms"] = "-1", ["retry-after"] = "2" }, 2 },
      { { ["retry-after"] = core.rfc1123(now - 60) }, 0 },               -- a date in the past: now
      { { ["retry-after"] = "Sun, 06 Nov 1994 08:49:37 GMT" }, 0 },
    }
    for i, r in ipairs(rows) do
      it(("row %d"):format(i), function()
        assert.are.equal(r[2], retry.retry_after(r[1]))
      end)
    end

    it("a date in the future: the seconds until then", function()
      local s = retry.retry_after { ["retry-after"] = core.rfc1123(core.time() + 30) }
      assert.is_true(s > 28 and s <= 30, s)
    end)

    it("parses RFC 1123 dates exactly", function()
      assert.are.equal(784111777, retry.parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
      assert.are.equal(0, retry.parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"))
      assert.are.equal(951782400, retry.parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"))
      assert.is_nil(retry.parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"))
      assert.is_nil(retry.parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"))
      assert.is_nil(retry.retry_after("not a table"))
    end)
  end)
end)
