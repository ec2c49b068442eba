-- Shared Key signing (core.shared_key) and the encodings of azb_codec.c.
-- Expected signatures were computed independently with Python's
-- hmac/hashlib/base64 from the string-to-sign written out below.
local core = require "azbatch.core"

local KEY = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="   -- bytes 1..32
local BASE = "https://testacct.westeurope.batch.azure.com"
local DATE = "Mon, 01 Jan 2024 00:00:00 GMT"
local OCP = "ocp-date:" .. DATE .. "\n"
local BODY = '{"id":"render-v14","vmSize":"Standard_D4s_v5"}'          -- 46 bytes
local PATCH = '{"metadata":[{"name":"rollout","value":"canary"}]}'    -- 50 bytes
local JSON_CT = "application/json; odata=minimalmetadata"

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local VECTORS = {
  {
    name = "the design doc's known answer (GET one pool)",
    method = "GET", url = BASE .. "/pools/mypool?api-version=2024-07-01.20.0",
    headers = { ["ocp-date"] = DATE },
    sts = "GET\n\n\n\n\n\n\n\n\n\n\n\n" .. OCP .. "/testacct/pools/mypool\napi-version:2024-07-01.20.0",
    auth = "SharedKey testacct:SLkGVYTyz67hj+kRSOZYBe+v54Xe5TFuEOgTevz8rnI=",
  },
  {
    name = "POST /pools with a JSON body (client-request-id is not signed)",
    method = "POST", url = BASE .. "/pools?api-version=2025-06-01",
    headers = { ["Content-Type"] = JSON_CT, ["Content-Length"] = tostring(#BODY), ["ocp-date"] = DATE,
                ["client-request-id"] = "6f1a0c1e-8d7b-4a57-9a43-0d3c2b1a0f99",
                ["return-client-request-id"] = "true", ["Accept"] = "application/json" },
    sts = "POST\n\n\n46\n\n" .. JSON_CT .. "\n\n\n\n\n\n\n" .. OCP .. "/testacct/pools\napi-version:2025-06-01",
    auth = "SharedKey testacct:mcEkaeIxKa6GchsMQvBipJvWhZc4mr0uhLlhPLqBK9w=",
  },
  {
    name = "POST stopresize with an empty body signs Content-Length 0",
    method = "POST", url = BASE .. "/pools/p1/stopresize?api-version=2025-06-01",
    headers = { ["Content-Length"] = "0", ["ocp-date"] = DATE },
    sts = "POST\n\n\n0\n\n\n\n\n\n\n\n\n" .. OCP .. "/testacct/pools/p1/stopresize\napi-version:2025-06-01",
    auth = "SharedKey testacct:zLQW3UBKTBvLJd1t0FJHua1FxREG3QnN5Q81gpHc9y4=",
  },
  {
    name = "DELETE /pools/p1",
    method = "DELETE", url = BASE .. "/pools/p1?api-version=2025-06-01",
    headers = { ["ocp-date"] = DATE },
    sts = "DELETE\n\n\n\n\n\n\n\n\n\n\n\n" .. OCP .. "/testacct/pools/p1\napi-version:2025-06-01",
    auth = "SharedKey testacct:plhfknrKvyPVOvKId9wU8BrV9yYIj8gXcQ27O5hBmPg=",
  },
  {
    name = "GET /pools with OData options: encoded on the wire, decoded and sorted when signed",
    method = "GET",
    url = BASE .. "/pools?api-version=2025-06-01&%24filter=startswith%28id%2C%27render%27%29"
          .. "&%24select=id%2Cstate&%24expand=stats&maxresults=10",
    headers = { ["ocp-date"] = DATE },
    sts = "GET\n\n\n\n\n\n\n\n\n\n\n\n" .. OCP .. "/testacct/pools\n$expand:stats\n"
          .. "$filter:startswith(id,'render')\n$select:id,state\napi-version:2025-06-01\nmaxresults:10",
    auth = "SharedKey testacct:6r3hl48y/LDwZnFyTO14K2Md7r5sFZGQwlLCcdnyqTU=",
  },
  {
    name = "PATCH with If-Match",
    method = "PATCH", url = BASE .. "/pools/p1?api-version=2025-06-01",
    headers = { ["content-type"] = JSON_CT, ["content-length"] = tostring(#PATCH),
                ["If-Match"] = '"0x8DC0123456789AB"', ["ocp-date"] = DATE },
    sts = "PATCH\n\n\n50\n\n" .. JSON_CT .. '\n\n\n"0x8DC0123456789AB"\n\n\n\n' .. OCP
          .. "/testacct/pools/p1\napi-version:2025-06-01",
    auth = "SharedKey testacct:kkAXgpFqpBPJxDey0a5BBMlHuqpDkqvROkyXhJ2LfxQ=",
  },
  {
    name = "HEAD /pools/p1 (method upper-cased)",
    method = "head", url = BASE .. "/pools/p1?api-version=2025-06-01",
    headers = { ["ocp-date"] = DATE },
    sts = "HEAD\n\n\n\n\n\n\n\n\n\n\n\n" .. OCP .. "/testacct/pools/p1\napi-version:2025-06-01",
    auth = "SharedKey testacct:o5Owq1uGfmjCzHeEQgwyR0wgLjRdT1tn5f1cHy4+5aE=",
  },
  {
    name = "ocp-* headers lower-cased, trimmed and sorted",
    method = "GET", url = BASE .. "/nodecounts?api-version=2025-06-01",
    headers = { ["OCP-Date"] = DATE, ["ocp-custom-b"] = "x", ["Ocp-Custom-A"] = "   y  " },
    sts = "GET\n\n\n\n\n\n\n\n\n\n\n\nocp-custom-a:y\nocp-custom-b:x\n" .. OCP
          .. "/testacct/nodecounts\napi-version:2025-06-01",
    auth = "SharedKey testacct:/HR9RIKeXKgqbWjwOpcgtKxMVQw/K5Eivp/9qa9jNxc=",
  },
  {
    name = "repeated query names: lower-cased, values sorted and comma-joined",
    method = "GET", url = BASE .. "/pools?b=2&B=1&a=x",
    headers = { ["ocp-date"] = DATE },
    sts = "GET\n\n\n\n\n\n\n\n\n\n\n\n" .. OCP .. "/testacct/pools\na:x\nb:1,2",
    auth = "SharedKey testacct:3yk93syhobBiRTOoWBGz0BnI/avYuAkQAe3USv4hnYM=",
  },
  {
    name = "empty path signs as /",
    method = "GET", url = BASE .. "?api-version=2025-06-01",
    headers = { ["ocp-date"] = DATE },
    sts = "GET\n\n\n\n\n\n\n\n\n\n\n\n" .. OCP .. "/testacct/\napi-version:2025-06-01",
    auth = "SharedKey testacct:dKCJpBj5YTNJA0jk/Cq3defa2dlKePjebPOiUvCJOrQ=",
  },
  {
    name = "a Date header (no ocp-date) fills the Date line",
    method = "GET", url = BASE .. "/jobs?api-version=2014-01-01.1.0&timeout=20",
    headers = { Date = "Tue, 29 Jul 2014 21:49:13 GMT" },
    sts = "GET\n\n\n\n\n\nTue, 29 Jul 2014 21:49:13 GMT\n\n\n\n\n\n/testacct/jobs\n"
          .. "api-version:2014-01-01.1.0\ntimeout:20",
    auth = "SharedKey testacct:13SUN3AibQPCNXzzitACSnq85rdEmcUueeMxA82nKnI=",
  },
}

describe("core.shared_key", function()
  local sk
  before_each(function() sk = assert(core.shared_key("testacct", KEY)) end)
  after_each(function() sk:close() end)

  for _, v in ipairs(VECTORS) do
    it("string to sign and signature: " .. v.name, function()
      assert.are.equal(v.sts, sk:string_to_sign(v.method, v.url, v.headers))
      assert.are.equal(v.auth, sk:sign(v.method, v.url, v.headers))
    end)
  end

  it("signs the same whatever the case of the header names", function()
    local a = sk:sign("POST", BASE .. "/pools?api-version=2025-06-01",
                      { ["content-length"] = "0", ["OCP-Date"] = DATE })
    local m = sk:sign("POST", BASE .. "/pools?api-version=2025-06-01",
                      { ["Content-Length"] = "0", ["ocp-date"] = DATE })
    assert.are.equal(a, m)
  end)

  it("decodes + in the query as a space and %2B as a plus", function()
    local sts = sk:string_to_sign("GET", BASE .. "/pools?q=a+b%2Bc", {})
    assert.are.equal("/testacct/pools\nq:a b+c", sts:match("/testacct.*$"))
  end)

  it("reports the account and never shows the key", function()
    assert.are.equal("testacct", sk:account())
    local s = tostring(sk)
    assert.are.equal("azbatch.SharedKey(testacct)", s)
    assert.is_nil(s:find(KEY, 1, true))
    assert.is_nil(s:find(core.base64_decode(KEY), 1, true))
  end)

  it("returns fail for a key that is not valid base64, without echoing it", function()
    for _, bad in ipairs { "not base64!", "AQID=BAU", "AQI", "", "AQ==AQ==", "QQ=" } do
      local ok, msg, err = core.shared_key("testacct", bad)
      assert.is_nil(ok)
      assert.are.equal("shared key: account key is not valid base64", msg)
      assert.are.same({ kind = "auth" }, err)
    end
  end)

  it("raises on wrong argument types", function()
    assert.error_matches(function() core.shared_key(nil, KEY) end, "bad argument #1")
    assert.error_matches(function() core.shared_key("a", 42 > 1) end, "bad argument #2")
    assert.error_matches(function() core.shared_key("", KEY) end, "account name is empty")
    assert.error_matches(function() sk:sign("GET", BASE .. "/pools", "x") end, "table expected")
    assert.error_matches(function() sk:sign("GET", BASE .. "/pools", { 42 }) end, "names are strings")
    assert.error_matches(function() sk:sign("GET", BASE .. "/pools", { a = 1 }) end, "must be a string")
  end)

  it("returns validation failures for malformed input", function()
    local cases = {
      { "GET", "not a url", {}, "url" },
      { "G ET", BASE .. "/pools", {}, "method" },
      { "GET", BASE .. "/pools", { ["Bad Name"] = "x" }, "headers" },
      { "GET", BASE .. "/pools", { [""] = "x" }, "headers" },
      { "GET", BASE .. "/pools", { ["ocp-date"] = "a\r\nInjected: 1" }, "headers" },
      { "GET", BASE .. "/pools", { ["ocp-date"] = "a", ["OCP-DATE"] = "b" }, "headers" },
      { "GET", BASE .. "/pools", { ["If-Match"] = "a", ["if-match"] = "b" }, "headers" },
      { "GET", "http://testacct.invalid/pools", {}, "url" },
    }
    for _, c in ipairs(cases) do
      local ok, msg, err = sk:sign(c[1], c[2], c[3])
      assert.is_nil(ok)
      assert.matches("^shared key: ", msg)
      assert.are.equal("validation", err.kind)
      assert.are.equal(c[4], err.field)
    end
  end)

  it("never puts header values in messages", function()
    local _, msg = sk:sign("GET", BASE .. "/pools", { ["ocp-secret"] = "tok\nen-value" })
    assert.is_nil(msg:find("tok", 1, true))
  end)

  it("close, __close and __gc share one idempotent release", function()
    local k = assert(core.shared_key("acct2", KEY))
    assert.is_true(k:close())
    assert.is_true(k:close())
    assert.are.equal("azbatch.SharedKey (closed)", tostring(k))
    assert.error_matches(function() k:sign("GET", BASE, {}) end,
                         "attempt to use a closed azbatch.SharedKey")
    assert.error_matches(function() k:account() end, "closed")
    local held
    do
      local c <close> = assert(core.shared_key("acct3", KEY))
      held = c
    end
    assert.are.equal("azbatch.SharedKey (closed)", tostring(held))
    core.shared_key("dropped", KEY)
    collectgarbage()
    collectgarbage()
  end)
end)

describe("core._hmac_sha256 (test-only helper)", function()
  -- RFC 4231 test cases 1, 2 and 6
  local cases = {
    { string.rep("\x0b", 20), "Hi There",
      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
    { "Jefe", "what do ya want for nothing?",
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
    { string.rep("\xaa", 131), "Test Using Larger Than Block-Size Key - Hash Key First",
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
  }
  for i, c in ipairs(cases) do
    it("RFC 4231 case " .. i, function()
      assert.are.equal(c[3], hex(core._hmac_sha256(c[1], c[2])))
      assert.are.equal(unhex(c[3]), core._hmac_sha256(c[1], c[2]))
    end)
  end
end)

describe("core utilities", function()
  it("uuid() gives fresh RFC 4122 version 4 ids", function()
    local seen = {}
    for _ = 1, 100 do
      local u = core.uuid()
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", u)
      assert.are.equal(u:lower(), u)
      assert.is_nil(seen[u])
      seen[u] = true
    end
  end)

  it("rfc1123() formats epoch seconds as an HTTP date", function()
    assert.are.equal("Mon, 01 Jan 2024 00:00:00 GMT", core.rfc1123(1704067200))
    assert.are.equal("Thu, 01 Jan 1970 00:00:00 GMT", core.rfc1123(0))
    assert.are.equal("Tue, 29 Jul 2014 21:49:13 GMT", core.rfc1123(1406670553.9))
    assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", core.rfc1123())
    assert.error_matches(function() core.rfc1123(1e300) end, "time out of range")
  end)

  it("url_encode keeps only RFC 3986 unreserved bytes", function()
    assert.are.equal("AZaz09-._~", core.url_encode("AZaz09-._~"))
    assert.are.equal("a%20b%2Fc%3F%26%3D%2B%25%C3%A9", core.url_encode("a b/c?&=+%\xc3\xa9"))
    assert.are.equal("https%3A%2F%2Fbatch.core.windows.net%2F%2F.default",
                     core.url_encode("https://batch.core.windows.net//.default"))
  end)

  it("url_decode reverses it, keeps stray %, and decodes + only when asked", function()
    assert.are.equal("a b/c?&=+%\xc3\xa9", core.url_decode("a%20b%2Fc%3F%26%3D%2B%25%C3%A9"))
    assert.are.equal("100%-%zz%4", core.url_decode("100%-%zz%4"))
    assert.are.equal("a+b", core.url_decode("a+b"))
    assert.are.equal("a b", core.url_decode("a+b", true))
  end)

  it("base64 round-trips and rejects malformed text", function()
    for _, s in ipairs { "", "f", "fo", "foo", "foob", "fooba", "foobar", "\0\1\255" } do
      assert.are.equal(s, core.base64_decode(core.base64_encode(s)))
    end
    assert.are.equal("Zm9vYmE=", core.base64_encode("fooba"))
    local ok, msg, err = core.base64_decode("Zm9v YmE=")
    assert.is_nil(ok)
    assert.are.equal("base64: not valid base64", msg)
    assert.are.equal("validation", err.kind)
  end)
end)
