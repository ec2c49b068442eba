-- core.json_encode / core.array / core.null / core.json_normalize
local core = require "azbatch.core"
local cjson = require "cjson"

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

  it("cjson reads back what we write", function()
    local v = { s = "a/b\n\"é\"", n = { 1, 2.5, -3 }, e = {}, t = true }
    assert.same(v, cjson.decode(core.json_encode(v)))
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

  it("null is lua-cjson's null", function()
    assert.equal(cjson.null, core.null)
    assert.equal("userdata", type(core.null))
    assert.is_nil(getmetatable(core.null))
  end)
end)

describe("core.json_normalize", function()
  it("turns cjson's integral floats into integers, in place", function()
    local t = cjson.decode('{"a":2,"b":[1,2.5,{"c":3}],"d":1e300,"e":-0,"f":1e17,"g":"3"}')
    assert.equal("float", math.type(t.a))
    assert.equal(t, core.json_normalize(t))
    assert.equal("integer", math.type(t.a))
    assert.equal("integer", math.type(t.b[1]))
    assert.equal("float", math.type(t.b[2]))
    assert.equal("integer", math.type(t.b[3].c))
    assert.equal("float", math.type(t.d))
    assert.equal("integer", math.type(t.e))
    assert.equal("float", math.type(t.f))
    assert.equal("3", t.g)
  end)

  it("visits each table once (cycles, sharing)", function()
    local t = { x = 1.0 }
    t.self = t
    assert.equal(t, core.json_normalize(t))
    assert.equal("integer", math.type(t.x))
  end)

  it("fails past 1000 levels", function()
    local r, msg, err = core.json_normalize(nest(1001))
    assert.is_nil(r)
    assert.equal("value: nested too deeply (more than 1000 levels)", msg)
    assert.equal("validation", err.kind)
    assert.is_table(core.json_normalize(nest(1000)))
  end)

  it("misuse raises", function()
    assert.error_matches(function() core.json_normalize("x") end, "table expected, got string")
  end)
end)
