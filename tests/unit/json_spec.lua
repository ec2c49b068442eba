-- core.json_encode / core.json_decode / core.array / core.null
local core = require "azbatch.core"
local json = require "azbatch.json"

local ARRAY_MT = getmetatable(core.array {})

local function fails(v, field, message, kind)
  local s, msg, err = core.json_encode(v, kind)
  assert.is_nil(s)
  assert.equal(field .. ": " .. message, msg)
  assert.equal("validation", err.kind)
  assert.equal(field, err.field)
end

local function nest(n)
  local t = {}
  for _ = 2, n do t = { t } end
  return t
end

-- a valid pool body, with changes
local function pool(changes)
  local t = { id = "p", vmSize = "v", targetDedicatedNodes = 2,
    virtualMachineConfiguration = { imageReference = { publisher = "a", offer = "b", sku = "c" },
                                    nodeAgentSKUId = "batch.node.ubuntu 22.04" } }
  for k, v in pairs(changes or {}) do t[k] = v end
  return t
end
local POOL_VM = '"virtualMachineConfiguration":{"imageReference":{"publisher":"a","offer":"b","sku":"c"},'
  .. '"nodeAgentSKUId":"batch.node.ubuntu 22.04"}'

describe("json_encode: generic values", function()
  local rows = {
    { "nil", nil, "null" },
    { "JSON null", core.null, "null" },
    { "true", true, "true" },
    { "false", false, "false" },
    { "integer", 42, "42" },
    { "negative integer", -7, "-7" },
    { "maxinteger", math.maxinteger, "9223372036854775807" },
    { "mininteger", math.mininteger, "-9223372036854775808" },
    { "integral float is an integer", 2.0, "2" },
    { "negative zero", -0.0, "0" },
    { "2^53 as a float", 2.0 ^ 53, "9007199254740992" },
    { "2^54 as a float: exact digits", 2.0 ^ 54, "18014398509481984" },
    { "1e17 as a float", 1e17, "1e+17" },
    { "0.1 shortest form", 0.1, "0.1" },
    { "1/3 round-trips", 1 / 3, "0.3333333333333333" },
    { "a float that needs 17 digits", 0.30000000000000004, "0.30000000000000004" },
    { "1e300", 1e300, "1e+300" },
    { "tiny, shortest that reads back", 5e-324, "4.94065645841247e-324" },
    { "empty string", "", '""' },
    { "slash is not escaped", "a/b", '"a/b"' },
    { "quote and backslash", 'say "hi" \\', '"say \\"hi\\" \\\\"' },
    { "short escapes", "\n\r\t\b\f", '"\\n\\r\\t\\b\\f"' },
    { "other control bytes", "\0\1\31", '"\\u0000\\u0001\\u001f"' },
    { "DEL passes", "\127", '"\127"' },
    { "UTF-8 passes unchanged", "héllo ✓ 😀 \u{2028}", '"héllo ✓ 😀 \u{2028}"' },
    { "U+10FFFF", "\u{10FFFF}", '"\u{10FFFF}"' },
    { "empty table is an object", {}, "{}" },
    { "core.array() is an array", core.array(), "[]" },
    { "a sequence", { 1, "two", true, core.null }, '[1,"two",true,null]' },
    { "keys sorted", { b = 1, a = 2, c = { z = 1, y = 2 }, A = 0 }, '{"A":0,"a":2,"b":1,"c":{"y":2,"z":1}}' },
    { "keys sorted bytewise, prefixes first", { ab = 1, a = 2, ["a\0"] = 3 }, '{"a":2,"a\\u0000":3,"ab":1}' },
    { "nested arrays", { { {} }, core.array {} }, "[[{}],[]]" },
    { "200 levels", nest(200), ("["):rep(199) .. "{}" .. ("]"):rep(199) },
    { "a table of another class is a plain table", setmetatable({ x = 1 }, { __index = print }), '{"x":1}' },
  }
  for _, row in ipairs(rows) do
    it(row[1], function()
      assert.equal(row[3], core.json_encode(row[2]))
    end)
  end

  it("json_decode reads back what we write", function()
    local v = { s = "a/b\n\"é\"", n = { 1, 2.5, -3 }, e = {}, a = core.array {}, t = true }
    local back = core.json_decode(core.json_encode(v))
    assert.same(v, back)
    assert.equal(ARRAY_MT, getmetatable(back.a))
    assert.is_nil(getmetatable(back.e))
  end)
end)

describe("json_encode: what cannot be encoded", function()
  local rows = {
    { "invalid UTF-8", "\xff", "value", "not valid UTF-8" },
    { "overlong", "\xc0\xaf", "value", "not valid UTF-8" },
    { "surrogate", "\xed\xa0\x80", "value", "not valid UTF-8" },
    { "beyond U+10FFFF", "\xf4\x90\x80\x80", "value", "not valid UTF-8" },
    { "truncated sequence", "ok\xe2\x82", "value", "not valid UTF-8" },
    { "invalid UTF-8 in a key", { ["\xff"] = 1 }, "value", "a key is not valid UTF-8" },
    { "the path names the spot", { a = { b = { 1, "\xff" } } }, "value.a.b[2]", "not valid UTF-8" },
    { "a key that is no Lua name is quoted in the path", { ["a b"] = { ["\n"] = 0 / 0 } },
      'value["a b"]["\\n"]', "cannot encode NaN" },
    { "NaN", 0 / 0, "value", "cannot encode NaN" },
    { "inf", math.huge, "value", "cannot encode inf" },
    { "-inf", { x = -math.huge }, "value.x", "cannot encode -inf" },
    { "a function", { f = print }, "value.f", "cannot encode a function" },
    { "a userdata", io.stdout, "value", "cannot encode a userdata" },
    { "a thread", { coroutine.create(print) }, "value[1]", "cannot encode a thread" },
    { "a light userdata other than null", { core.null, debug.upvalueid(fails, 1) }, "value[2]",
      "cannot encode a userdata" },
    { "a sparse array", { [1] = 1, [3] = 3 }, "value", "expected array, got table with key 3" },
    { "array and object keys", { 1, a = 2 }, "value", "cannot encode a table with both array and object keys" },
    { "a boolean key", { [true] = 1 }, "value", "expected string keys, got key of type boolean" },
    { "a float key", { [1.5] = 1 }, "value", "expected string keys, got key of type number" },
    { "key 0", { [0] = 1 }, "value", "expected string keys, got key of type number" },
    { "an array with a string key", core.array { 1, x = 2 }, "value",
      "expected array, got table with key of type string" },
    { "an array with another key", core.array { [true] = 2 }, "value",
      "expected array, got table with key of type boolean" },
    { "201 levels", nest(201), "value" .. ("[1]"):rep(24) .. "...", "nested too deeply (more than 200 levels)" },
  }
  for _, row in ipairs(rows) do
    it(row[1], function() fails(row[2], row[3], row[4]) end)
  end

  it("a cycle", function()
    local t = { a = {} }
    t.a.b = t
    fails(t, "value.a.b", "cannot encode a cyclic table")
    local s = {}
    s[1] = s
    fails(s, "value[1]", "cannot encode a cyclic table")
  end)

  it("a shared table that is not a cycle is fine", function()
    local shared = { 1 }
    assert.equal('{"a":[1],"b":[1]}', core.json_encode { a = shared, b = shared })
  end)

  it("misuse raises", function()
    assert.error_matches(function() core.json_encode() end,
      "bad argument #1 to '[%w%.]*json_encode' %(value expected%)")
    assert.error_matches(function() core.json_encode({}, "nope") end,
      "bad argument #2 to '[%w%.]*json_encode' %(unknown kind 'nope'%)")
    assert.error_matches(function() core.json_encode({}, 5) end,
      "bad argument #2 to '[%w%.]*json_encode' %(unknown kind '5'%)")
    assert.error_matches(function() core.json_encode({}, {}) end,
      "bad argument #2 to '[%w%.]*json_encode' %(string expected, got table%)")
  end)
end)

describe("json_encode: shaped by a kind, validated in the same call", function()
  it("descriptor order, not sorted; integral floats become integers", function()
    assert.equal('{"id":"p","vmSize":"v",' .. POOL_VM .. ',"targetDedicatedNodes":2}',
      core.json_encode(pool { targetDedicatedNodes = 2.0 }, "pool"))
  end)

  it("arrays stay arrays when empty, maps stay objects", function()
    assert.equal('{"applicationPackageReferences":[],"metadata":[]}',
      core.json_encode({ metadata = {}, applicationPackageReferences = {} }, "pool.replace"))
    assert.equal('{"imageReference":{"publisher":"a","offer":"b","sku":"c"},'
      .. '"nodeAgentSKUId":"batch.node.ubuntu 22.04",'
      .. '"extensions":[{"name":"e","publisher":"p","type":"t","settings":{}}]}',
      core.json_encode({ nodeAgentSKUId = "batch.node.ubuntu 22.04",
        imageReference = { sku = "c", offer = "b", publisher = "a" },
        extensions = { { type = "t", publisher = "p", name = "e", settings = {} } } },
        "virtualMachineConfiguration"))
  end)

  it("JSON null fields are left out", function()
    assert.equal('{"id":"p","vmSize":"v",' .. POOL_VM .. ',"targetDedicatedNodes":2}',
      core.json_encode(pool { displayName = core.null }, "pool"))
  end)

  it("enums are written in the contract's casing", function()
    assert.equal('{"targetDedicatedNodes":1,"nodeDeallocationOption":"taskcompletion"}',
      core.json_encode({ targetDedicatedNodes = 1, nodeDeallocationOption = "TaskCompletion" }, "pool.resize"))
  end)

  it("nothing is dropped silently: unknown keys fail at their own path", function()
    fails(pool { vmsize = "v" }, "pool.vmsize", "unknown field (did you mean 'vmSize'?)", "pool")
    fails(pool { [1] = 2 }, "pool[1]", "unexpected number key (field names are strings)", "pool")
  end)

  it("whatever the validator refuses, the encoder refuses", function()
    fails(pool { targetDedicatedNodes = 2.5 }, "pool.targetDedicatedNodes", "expected integer, got number", "pool")
    fails(pool { targetDedicatedNodes = -3 }, "pool.targetDedicatedNodes", "must be an integer in [0, 2147483647]",
      "pool")
    fails(pool { id = 1 }, "pool.id", "expected string, got number", "pool")
    fails(pool { enableInterNodeCommunication = "yes" }, "pool.enableInterNodeCommunication",
      "expected boolean, got string", "pool")
    fails(pool { startTask = "c" }, "pool.startTask", "expected table, got string", "pool")
    fails(pool { metadata = { x = 1 } }, "pool.metadata", "expected array, got table with key 'x'", "pool")
    fails({ nodeList = { 1 } }, "removeNodes.nodeList[1]", "expected string, got number", "pool.removenodes")
    fails("x", "pool", "expected table, got string", "pool")
    fails({ targetDedicatedNodes = 1 }, "pool.id", "required field missing (and 2 more)", "pool")
  end)

  it("a spec nested in a plain table is validated and keeps its shape", function()
    local spec = assert(core.validate("pool.resize", { targetLowPriorityNodes = 1, targetDedicatedNodes = 2 }))
    assert.equal('{"body":{"targetDedicatedNodes":2,"targetLowPriorityNodes":1}}', core.json_encode { body = spec })
    spec.targetDedicatedNodes = -1
    fails({ body = spec }, "value.body.targetDedicatedNodes", "must be an integer in [0, 2147483647]")
    fails({ list = { spec } }, "value.list[1].targetDedicatedNodes", "must be an integer in [0, 2147483647]")
  end)

  it("an ImageReference object is validated and uses the contract's key order", function()
    local ref = core.image_reference("Canonical:ubuntu-24_04-lts:server")
    assert.equal('{"publisher":"Canonical","offer":"ubuntu-24_04-lts","sku":"server","version":"latest"}',
      core.json_encode(ref))
    assert.equal('[{"publisher":"Canonical","offer":"ubuntu-24_04-lts","sku":"server","version":"latest"}]',
      core.json_encode { ref })
    ref.sku = nil
    fails(ref, "imageReference.sku",
      "required field missing (a marketplace image needs publisher, offer and sku)")
    fails({ ref }, "value[1].sku", "required field missing (a marketplace image needs publisher, offer and sku)")
  end)
end)

describe("core.array and core.null", function()
  it("array marks and returns the same table", function()
    local t = { 1, 2 }
    assert.equal(t, core.array(t))
    assert.equal("[1,2]", core.json_encode(t))
    assert.equal("[]", core.json_encode(core.array {}))
    assert.equal("[]", core.json_encode(core.array(nil)))
  end)

  it("array refuses a table with another metatable, and non-tables", function()
    assert.error_matches(function() core.array(setmetatable({}, {})) end, "already has a metatable")
    assert.error_matches(function() core.array("x") end, "table expected, got string")
    local t = core.array {}
    assert.equal(t, core.array(t))   -- idempotent
  end)

  it("null is a light userdata NULL, what JSON null decodes to", function()
    assert.equal("userdata", type(core.null))
    assert.is_nil(getmetatable(core.null))
    assert.equal(core.null, core.json_decode("null"))
    assert.equal(core.null, json.null)
    assert.equal("null", core.json_encode(core.null))
  end)

  it("null is lua-cjson's null, for code that still uses lua-cjson", function()
    local ok, cjson = pcall(require, "cjson")
    if not ok then pending("lua-cjson is not installed (azbatch does not need it)") return end
    assert.equal(cjson.null, core.null)
  end)
end)

describe("json_decode", function()
  local function decodes(text, want)
    local v, msg = core.json_decode(text)
    assert.is_nil(msg)
    assert.same(want, v)
    return v
  end

  it("scalars at the top level", function()
    decodes("true", true)
    decodes(" false ", false)
    assert.equal(core.null, core.json_decode("null"))
    decodes('"x"', "x")
    decodes("\t\r\n 12 \n", 12)
  end)

  -- text, value, math.type
  local numbers = {
    { "0", 0, "integer" },
    { "-0", 0, "integer" },
    { "42", 42, "integer" },
    { "-7", -7, "integer" },
    { "9223372036854775807", math.maxinteger, "integer" },
    { "-9223372036854775808", math.mininteger, "integer" },
    { "9007199254740993", 9007199254740993, "integer" },   -- cjson loses the 3
    { "9223372036854775808", 2.0 ^ 63, "float" },
    { "-9223372036854775809", -(2.0 ^ 63), "float" },
    { "123456789012345678901234567890", 1.2345678901234568e29, "float" },
    { "2.0", 2, "integer" },
    { "-2.50e1", -25, "integer" },
    { "1e2", 100, "integer" },
    { "1E+2", 100, "integer" },
    { "0.5e1", 5, "integer" },
    { "12300e-2", 123, "integer" },
    { "0.0", 0, "integer" },
    { "-0.0e5", 0, "integer" },
    { "9007199254740992.0", 9007199254740992, "integer" },
    { "9007199254740993.0", 9007199254740992.0, "float" },
    { "1e15", 1000000000000000, "integer" },
    { "1e16", 1e16, "float" },
    { "1e17", 1e17, "float" },
    { "2.5", 2.5, "float" },
    { "0.1", 0.1, "float" },
    { "-1.5e-3", -0.0015, "float" },
    { "1e-400", 0.0, "float" },
    { "1.00000000000000000001", 1.0, "float" },
    { "1" .. ("0"):rep(200), 1e200, "float" },
    { "0." .. ("0"):rep(200) .. "1", 1e-201, "float" },
    { "1e99999999999999999999", nil },   -- see the error rows
  }
  for _, row in ipairs(numbers) do
    if row[2] ~= nil then
      it("number " .. row[1]:sub(1, 40), function()
        local v = core.json_decode(row[1])
        assert.equal(row[2], v)
        assert.equal(row[3], math.type(v))
      end)
    end
  end

  it("strings: escapes, \\u, surrogate pairs, UTF-8", function()
    decodes([["a\"b\\c\/d\b\f\n\r\t"]], 'a"b\\c/d\b\f\n\r\t')
    decodes([["\u0041\u00e9\u20AC\ud83d\ude00\u0000"]], "Aé€😀\0")
    decodes('"héllo ✓ 😀"', "héllo ✓ 😀")
    decodes('"\127"', "\127")
    local long = ("é\\n"):rep(3000)   -- escapes past luaL_Buffer's first block
    assert.equal(("é\n"):rep(3000), core.json_decode('"' .. long .. '"'))
  end)

  it("arrays carry the array metatable, objects none; both re-encode as they were", function()
    local v = decodes('{"a":[],"b":{},"c":[1,[2,{}]],"d":[null,null]}',
      { a = {}, b = {}, c = { 1, { 2, {} } }, d = { core.null, core.null } })
    assert.equal(ARRAY_MT, getmetatable(v.a))
    assert.equal(ARRAY_MT, getmetatable(v.c[2]))
    assert.is_nil(getmetatable(v))
    assert.is_nil(getmetatable(v.b))
    assert.equal(2, #v.d)
    assert.equal('{"a":[],"b":{},"c":[1,[2,{}]],"d":[null,null]}', core.json_encode(v))
  end)

  it("duplicate keys: the last one wins", function()
    decodes('{"a":1,"a":2}', { a = 2 })
  end)

  -- a container's first 64 items wait on the stack, the rest go in directly
  for _, n in ipairs { 63, 64, 65, 200 } do
    it(("objects and arrays of %d items, duplicates on either side of the 64th"):format(n), function()
      local keys, items, want, arr = {}, {}, {}, {}
      for i = 1, n do
        keys[i] = ('"k%d":%d'):format(i, i)
        items[i] = tostring(i)
        want["k" .. i], arr[i] = i, i
      end
      keys[#keys + 1] = '"k1":-1'
      keys[#keys + 1] = ('"k%d":-2'):format(n)
      want.k1, want["k" .. n] = -1, -2
      decodes("{" .. table.concat(keys, ",") .. "}", want)
      local v = core.json_decode("[" .. table.concat(items, ",") .. "]")
      assert.same(arr, v)
      assert.equal(n, #v)
      assert.equal(getmetatable(core.array {}), getmetatable(v))
    end)
  end

  it("a UTF-8 byte order mark is skipped", function()
    decodes('\xEF\xBB\xBF{"a":1}', { a = 1 })
  end)

  it("200 levels decode; opts.depth changes the limit", function()
    local text = ("["):rep(200) .. ("]"):rep(200)
    assert.is_table(core.json_decode(text))
    assert.is_table(core.json_decode(("["):rep(1000) .. ("]"):rep(1000), { depth = 1000 }))
    local v, msg, err = core.json_decode("[[[]]]", { depth = 2 })
    assert.is_nil(v)
    assert.equal("json: nested too deeply (more than 2 levels) at byte 3", msg)
    assert.same({ kind = "validation", field = "json", offset = 3 }, err)
  end)

  -- text, message after "json: ", offset
  local bad = {
    { "", "unexpected end of input at byte 1", 1 },
    { "   ", "unexpected end of input at byte 4", 4 },
    { "x", "unexpected character 'x' at byte 1", 1 },
    { '{"a":1} x', "unexpected character 'x' at byte 9", 9 },
    { "[1,]", "unexpected character ']' at byte 4", 4 },
    { "[1 2]", "unexpected character '2' at byte 4", 4 },
    { "[1", "unexpected end of input at byte 3", 3 },
    { "{", "unexpected end of input at byte 2", 2 },
    { '{"a"}', "unexpected character '}' at byte 5", 5 },
    { '{"a":1,}', "unexpected character '}' at byte 8", 8 },
    { '{"a":1 "b":2}', "unexpected character '\"' at byte 8", 8 },
    { "{a:1}", "unexpected character 'a' at byte 2", 2 },
    { "{'a':1}", "unexpected character '\\'' at byte 2", 2 },
    { "{1:1}", "unexpected character '1' at byte 2", 2 },
    { '{"\\q":1}', "invalid escape at byte 3", 3 },
    { '{"a', "unterminated string at byte 4", 4 },
    { "tru", "unexpected end of input at byte 4", 4 },
    { "trUe", "unexpected character 'U' at byte 3", 3 },
    { "nul", "unexpected end of input at byte 4", 4 },
    { "falsy", "unexpected character 'y' at byte 5", 5 },
    { "True", "unexpected character 'T' at byte 1", 1 },
    { "NaN", "unexpected character 'N' at byte 1", 1 },
    { "Infinity", "unexpected character 'I' at byte 1", 1 },
    { "-", "unexpected end of input at byte 2", 2 },
    { "-x", "unexpected character 'x' at byte 2", 2 },
    { "01", "unexpected character '1' at byte 2", 2 },
    { "+1", "unexpected character '+' at byte 1", 1 },
    { ".5", "unexpected character '.' at byte 1", 1 },
    { "1.", "unexpected end of input at byte 3", 3 },
    { "1.e5", "unexpected character 'e' at byte 3", 3 },
    { "1e", "unexpected end of input at byte 3", 3 },
    { "1e+", "unexpected end of input at byte 4", 4 },
    { "0x10", "unexpected character 'x' at byte 2", 2 },
    { "1e400", "number out of range at byte 1", 1 },
    { "[-1e99999999999999999999]", "number out of range at byte 2", 2 },
    { '"abc', "unterminated string at byte 5", 5 },
    { '"abc\\', "unterminated string at byte 6", 6 },
    { '"a\nb"', "control character in string at byte 3", 3 },
    { '"a\tb"', "control character in string at byte 3", 3 },
    { '"\0"', "control character in string at byte 2", 2 },
    { '"\\x"', "invalid escape at byte 2", 2 },
    { '"\\\0"', "invalid escape at byte 2", 2 },
    { '"\\U0041"', "invalid escape at byte 2", 2 },
    { '"\\u12"', "invalid \\u escape at byte 2", 2 },
    { '"\\u12G4"', "invalid \\u escape at byte 2", 2 },
    { '"ab\\ud800"', "lone surrogate in \\u escape at byte 4", 4 },
    { '"\\ud800\\u0041"', "lone surrogate in \\u escape at byte 2", 2 },
    { '"\\ud800x"', "lone surrogate in \\u escape at byte 2", 2 },
    { '"\\udc00"', "lone surrogate in \\u escape at byte 2", 2 },
    { '"\xff"', "invalid UTF-8 at byte 2", 2 },
    { '"\xc0\xaf"', "invalid UTF-8 at byte 2", 2 },
    { '"\xed\xa0\x80"', "invalid UTF-8 at byte 2", 2 },
    { '"ok\xe2\x82"', "invalid UTF-8 at byte 4", 4 },
    { "\xff", "unexpected character '\\255' at byte 1", 1 },
    { "é", "unexpected character 'é' at byte 1", 1 },
    { "[1]\0", "unexpected character '\\000' at byte 4", 4 },
    { "\xEF\xBB", "unexpected character '\\239' at byte 1", 1 },
    { "/* c */ 1", "unexpected character '/' at byte 1", 1 },
    { ("["):rep(201) .. ("]"):rep(201), "nested too deeply (more than 200 levels) at byte 201", 201 },
    { ("{\"a\":"):rep(201) .. "1" .. ("}"):rep(201), "nested too deeply (more than 200 levels) at byte 1001",
      1001 },
  }
  for _, row in ipairs(bad) do
    it("refuses " .. row[1]:sub(1, 30):gsub("%c", "?"), function()
      local v, msg, err = core.json_decode(row[1])
      assert.is_nil(v)
      assert.equal("json: " .. row[2], msg)
      assert.same({ kind = "validation", field = "json", offset = row[3] }, err)
    end)
  end

  -- a byte that needs a look is found wherever it is in the string
  it("finds a quote, escape, control, UTF-8 or bad byte at any offset of a long string", function()
    for k = 0, 19 do
      local pre, post = ("a"):rep(k), ("b"):rep(19 - k)
      assert.equal(pre, core.json_decode('"' .. pre .. '"'))
      assert.equal(pre .. '"' .. post, core.json_decode('"' .. pre .. '\\"' .. post .. '"'))
      assert.equal(pre .. "\\" .. post, core.json_decode('"' .. pre .. '\\\\' .. post .. '"'))
      assert.equal(pre .. "é" .. post, core.json_decode('"' .. pre .. "é" .. post .. '"'))
      assert.equal(pre .. "\x7f~ " .. post, core.json_decode('"' .. pre .. "\x7f~ " .. post .. '"'))
      for _, wrong in ipairs { { "\n", "control character in string" }, { "\x1f", "control character in string" },
          { "\xff", "invalid UTF-8" }, { "\x80", "invalid UTF-8" } } do
        local v, msg, err = core.json_decode('"' .. pre .. wrong[1] .. post .. '"')
        assert.is_nil(v)
        assert.equal(("json: %s at byte %d"):format(wrong[2], k + 2), msg)
        assert.equal(k + 2, err.offset)
      end
      local v, msg = core.json_decode('"' .. pre .. post)
      assert.is_nil(v)
      assert.equal(("json: unterminated string at byte %d"):format(21), msg)
    end
  end)

  it("azbatch.json.decode is core.json_decode with the same protocol", function()
    assert.same({ 1, { a = true } }, json.decode('[1,{"a":true}]'))
    local v, msg, err = json.decode("[")
    assert.is_nil(v)
    assert.equal("json: unexpected end of input at byte 2", msg)
    assert.equal("validation", err.kind)
    assert.error_matches(function() json.decode(5) end, "bad argument #1 to 'decode' %(string expected, got number%)")
  end)

  it("misuse raises", function()
    assert.error_matches(function() core.json_decode() end,
      "bad argument #1 to '[%w%.]*json_decode' %(string expected, got no value%)")
    assert.error_matches(function() core.json_decode(12) end,
      "bad argument #1 to '[%w%.]*json_decode' %(string expected, got number%)")
    assert.error_matches(function() core.json_decode("1", "x") end,
      "bad argument #2 to '[%w%.]*json_decode' %(table expected, got string%)")
    assert.error_matches(function() core.json_decode("1", { deep = 1 }) end,
                         "bad argument #2 to 'json_decode' (unknown option 'deep'", 1, true)
    for _, d in ipairs { 0, 1001, 1.5, "2" } do
      assert.error_matches(function() core.json_decode("1", { depth = d }) end,
        "depth must be an integer in %[1, 1000%]")
    end
  end)

  it("a list response of 1000 pools decodes, and re-encodes stably", function()
    local items = {}
    for i = 1, 1000 do
      items[i] = ('{"id":"pool-%d","vmSize":"standard_d2s_v3","state":"active","currentDedicatedNodes":%d,'
        .. '"enableAutoScale":false,"metadata":[],"resizeErrors":[{"code":"X","values":[]}],'
        .. '"stats":{"usageStats":{"dedicatedCoreTime":"PT0S"}},"ratio":%s}'):format(i, i, tostring(i / 8))
    end
    local text = '{"odata.metadata":"https://a/$metadata#pools","value":[' .. table.concat(items, ",") .. "]}"
    local v = assert(core.json_decode(text))
    assert.equal(1000, #v.value)
    assert.equal("integer", math.type(v.value[7].currentDedicatedNodes))
    assert.equal(0.875, v.value[7].ratio)
    assert.equal(ARRAY_MT, getmetatable(v.value[1000].metadata))
    local again = assert(core.json_encode(v))
    assert.equal(again, core.json_encode(core.json_decode(again)))
  end)
end)

describe("json: decode then encode is stable", function()
  -- rows the fuzzer (tests/fuzz/fuzz_json.c) checks the same way
  local rows = {
    '{"b":[],"a":{},"c":[{}],"d":[[],[[]]]}',
    '[1,-0,0.0,1e2,1.5e300,-1e-300,9007199254740993,9223372036854775808,1e17,123.456]',
    '"\\u0000\\u001f\\ud83d\\ude00\\/\\\\"',
    '{"":1,"a\\u0000":2}',
    '[true,false,null,{"x":null}]',
    '1.00000000000000000001',
    '[5e-324,2.2250738585072014e-308,1.7976931348623157e308]',
  }
  for _, text in ipairs(rows) do
    it(text, function()
      local v = assert(core.json_decode(text))
      local once = assert(core.json_encode(v))
      local twice = assert(core.json_encode(assert(core.json_decode(once))))
      assert.equal(once, twice)
      assert.same(v, core.json_decode(once))
    end)
  end
end)
