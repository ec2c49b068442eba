-- core.sanitize: strings from the network, cleaned for one line of a
-- message or a terminal (ext/azb_text.c; quoting is covered by the
-- messages in schema_spec, image_spec and json_spec).
local core = require "azbatch.core"

describe("core.sanitize", function()
  local rows = {
    { "plain text passes", "PoolExists: The specified pool already exists.", nil,
      "PoolExists: The specified pool already exists." },
    { "UTF-8 passes", "héllo ✓ 😀", nil, "héllo ✓ 😀" },
    { "CR LF is one space", "a\r\nb", nil, "a b" },
    { "tab and LF are spaces", "a\tb\nc", nil, "a b c" },
    { "a space then a newline stays one space", "a \nb", nil, "a b" },
    { "ESC and the rest of C0 are dropped", "\27[31mred\27[0m\0\1", nil, "[31mred[0m" },
    { "DEL is dropped", "x\127y", nil, "xy" },
    { "C1 controls are dropped (CSI)", "a\u{9b}31mb", nil, "a31mb" },
    { "bidirectional overrides are dropped", "abc\u{202e}fed\u{2066}x\u{2069}", nil, "abcfedx" },
    { "bytes that are not UTF-8 become '?'", "ok\xffno\xc3", nil, "ok?no?" },
    { "a surrogate encoded in UTF-8 is not UTF-8", "\xed\xa0\x80", nil, "???" },
    { "cut at 512 bytes by default", ("x"):rep(600), nil, ("x"):rep(509) .. "..." },
    { "exactly max bytes is not cut", ("x"):rep(512), nil, ("x"):rep(512) },
    { "a cut never splits a character", ("é"):rep(10), 9, "ééé..." },
    { "the smallest max", "abcde", 4, "a..." },
    { "short enough for the smallest max", "abcd", 4, "abcd" },
    { "a number is a string", 5, nil, "5" },
  }
  for _, row in ipairs(rows) do
    it(row[1], function()
      local got = core.sanitize(row[2], row[3])
      assert.equal(row[4], got)
      assert.is_true(#got <= (row[3] or 512))
    end)
  end

  it("misuse raises", function()
    assert.error_matches(function() core.sanitize(nil) end, "bad argument #1 to '[%w%.]*sanitize' %(string expected")
    assert.error_matches(function() core.sanitize({}) end, "bad argument #1 to '[%w%.]*sanitize' %(string expected")
    for _, max in ipairs { 3, 0, -1, (1 << 20) + 1 } do
      assert.error_matches(function() core.sanitize("x", max) end, "must be in %[4, 1048576%]")
    end
    assert.error_matches(function() core.sanitize("x", 4.5) end, "number has no integer representation")
  end)
end)
