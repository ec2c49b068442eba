-- ISO-8601 durations: core.parse_duration and core.format_duration.
local core = require "azbatch.core"

local EXPECTED = "expected ISO-8601 duration such as 'PT15M'"
local ORDER = "designators must appear once each, in the order W D T H M S"

-- How messages quote the input: "..." with C-style escapes.
local function q(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' or c == "\\" then return "\\" .. c end
    if c == "\n" then return "\\n" end
    return ("\\%03d"):format(c:byte())
  end) .. '"'
end

describe("core.parse_duration", function()
  local valid = {
    { "PT15M", 900 },
    { "PT5M", 300 },
    { "PT1H30M", 5400 },
    { "P1D", 86400 },
    { "P1DT2H", 93600 },
    { "PT0.5S", 0.5 },
    { "PT90S", 90 },
    { "PT0S", 0 },
    { "P1W", 604800 },
    { "P1W2D", 777600 },
    { "P1DT1H1M1S", 90061 },
    { "PT1M0.25S", 60.25 },
    { "PT1,5S", 1.5 },                   -- ISO-8601 allows a decimal comma
    { "pt15m", 900 },                    -- lowercase accepted
    { "p1dT2h", 93600 },
    { "PT0015M", 900 },                  -- leading zeros
    { "P10000D", 864000000 },            -- the cap itself
    { "PT864000000S", 864000000 },
    { "PT0.000000001S", 1e-9 },
    { "PT1.1234567891234567891234S", 1.1234567891234567 },  -- long fraction
  }
  for _, row in ipairs(valid) do
    it(("accepts %q as %s seconds"):format(row[1], row[2]), function()
      local s, msg, err = core.parse_duration(row[1])
      assert.is_nil(msg, msg)
      assert.is_nil(err)
      assert.near(row[2], s, 1e-12)
    end)
  end

  it("returns integers for whole seconds and floats otherwise", function()
    assert.equal("integer", math.type(core.parse_duration("PT15M")))
    assert.equal("integer", math.type(core.parse_duration("P10000D")))
    assert.equal("float", math.type(core.parse_duration("PT0.5S")))
  end)

  local invalid = {
    { "", EXPECTED },
    { "15M", EXPECTED },
    { "T15M", EXPECTED },
    { "15", EXPECTED },
    { "P", "'P' must be followed by a component, such as 'PT15M'" },
    { "PT", "'T' must be followed by hours, minutes or seconds" },
    { "P1DT", "'T' must be followed by hours, minutes or seconds" },
    { "PTT1M", "'T' may appear only once" },
    { "PT1HT1M", "'T' may appear only once" },
    { "P1Y", "years and months are not fixed lengths; use days" },
    { "P1M", "years and months are not fixed lengths; use days" },
    { "P1Y2M3D", "years and months are not fixed lengths; use days" },
    { "PT1H1H", ORDER },
    { "PT1M1H", ORDER },
    { "PT1S1M", ORDER },
    { "P1D1W", ORDER },
    { "P1D1D", ORDER },
    { "-PT5M", "negative durations are not allowed" },
    { "PT-5M", "negative durations are not allowed" },
    { "PT+5M", "negative durations are not allowed" },
    { "PT1.5H", "only the seconds may have a fraction" },
    { "PT1.5M", "only the seconds may have a fraction" },
    { "P1.5D", "only the seconds may have a fraction" },
    { "PT1.5S1M", ORDER },               -- seconds come last
    { "PT1.S", "expected digits after '.'" },
    { "PT.5S", "expected digits before '.'" },
    { "PT5M ", "must not contain whitespace" },
    { " PT5M", "must not contain whitespace" },
    { "PT 5M", "must not contain whitespace" },
    { "PT5M\n", "must not contain whitespace" },
    { "PT5", "a number must be followed by a designator such as 'M'" },
    { "PT5X", "expected H, M or S after a number in the time part" },
    { "PT5D", "expected H, M or S after a number in the time part" },
    { "P5H", "expected W or D after a number (hours, minutes and seconds follow 'T', as in 'PT15M')" },
    { "PT5Mgarbage", EXPECTED },
    { "PT5MS", EXPECTED },
    { "P10001D", "must not exceed 10000 days" },
    { "PT864000001S", "must not exceed 10000 days" },
    { "P9999DT24H1S", "must not exceed 10000 days" },
    { "PT99999999999999999999999999H", "must not exceed 10000 days" },
    { "P\0T5M", EXPECTED },
    { "PT5M\0", EXPECTED },
  }
  for _, row in ipairs(invalid) do
    it(("rejects %q"):format(row[1]), function()
      local s, msg, err = core.parse_duration(row[1])
      assert.is_nil(s)
      assert.equal("duration: " .. row[2] .. ", got " .. q(row[1]), msg)
      assert.same({ kind = "validation", field = "duration" }, err)
    end)
  end

  it("escapes control bytes in the message", function()
    assert.equal([[duration: expected ISO-8601 duration such as 'PT15M', got "P\000T5M"]],
      select(2, core.parse_duration("P\0T5M")))
    assert.equal([[duration: must not contain whitespace, got "PT5M\n"]],
      select(2, core.parse_duration("PT5M\n")))
  end)

  it("cuts a huge input in the message and never crashes", function()
    local big = "PT" .. ("9"):rep(1e6) .. "S"
    local s, msg, err = core.parse_duration(big)
    assert.is_nil(s)
    assert.equal('duration: must not exceed 10000 days, got "PT' .. ("9"):rep(78) .. '..."', msg)
    assert.equal("duration", err.field)
    assert.is_nil(core.parse_duration(("P"):rep(1e5)))
  end)

  local misuse = { { nil, "nil" }, { 900, "number" }, { {}, "table" }, { true, "boolean" } }
  for _, row in ipairs(misuse) do
    it("raises on a " .. row[2] .. " argument", function()
      assert.error_matches(function() core.parse_duration(row[1]) end,
        "bad argument #1 to 'parse_duration' %(string expected, got " .. row[2] .. "%)")
    end)
  end
end)

describe("core.format_duration", function()
  local rows = {
    { 0, "PT0S" }, { 300, "PT5M" }, { 900, "PT15M" }, { 1800, "PT30M" }, { 3600, "PT1H" },
    { 5400, "PT1H30M" }, { 86400, "P1D" }, { 93600, "P1DT2H" }, { 90061, "P1DT1H1M1S" },
    { 0.5, "PT0.5S" }, { 90, "PT1M30S" }, { 1.25, "PT1.25S" }, { 86400.5, "P1DT0.5S" },
    { 864000000, "P10000D" }, { 2700.0, "PT45M" }, { 1e-9, "PT0.000000001S" },
    { 59.9999999999, "PT1M" },           -- rounds to the nanosecond, carrying
  }
  for _, row in ipairs(rows) do
    it(("formats %s as %s"):format(row[1], row[2]), function()
      assert.equal(row[2], core.format_duration(row[1]))
    end)
  end

  it("round-trips through parse_duration", function()
    for _, s in ipairs { 0, 1, 59, 60, 61, 899, 900, 3599, 3601, 86399, 86401, 123456, 864000000 } do
      assert.equal(s, core.parse_duration(core.format_duration(s)))
    end
    for _, s in ipairs { 0.5, 0.25, 1.125, 3600.75 } do
      assert.equal(s, core.parse_duration(core.format_duration(s)))
    end
  end)

  local misuse = {
    { nil, "bad argument #1 to 'format_duration' %(number expected, got nil%)" },
    { "PT5M", "bad argument #1 to 'format_duration' %(number expected, got string%)" },
    { -1, "bad argument #1 to 'format_duration' %(non%-negative finite number of seconds expected%)" },
    { 0 / 0, "non%-negative finite number of seconds expected" },
    { math.huge, "non%-negative finite number of seconds expected" },
    { 1e16, "non%-negative finite number of seconds expected" },
  }
  for i, row in ipairs(misuse) do
    it("raises on misuse #" .. i, function()
      assert.error_matches(function() core.format_duration(row[1]) end, row[2])
    end)
  end
end)
