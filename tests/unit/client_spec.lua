-- The client (lua/azbatch/client.lua and pool.lua) against the loopback
-- server: loud misuse, paths and URLs that stay on the endpoint, pages
-- that are malformed or never end, service strings that are hostile.
local azbatch = require "azbatch"
local core = require "azbatch.core"
local server = dofile("tests/unit/support/server.lua")

local KEY = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="

describe("azbatch.client", function()
  local srv, batch
  setup(function() srv = server.start() end)
  teardown(function() server.stop(srv) end)
  before_each(function()
    batch = assert(azbatch.client { endpoint = srv.url, credential = assert(azbatch.credential.shared_key("acct", KEY)),
      retry = false })
  end)
  after_each(function() batch:close() end)

  -- The loopback server's /reply answers 'body' (a string of JSON) with
  -- this status and content type: the query of such a request.
  local function reply(body, status, ctype)
    return { status = status or 200, ctype = ctype or "application/json", body = body }
  end
  -- The absolute URL of such an answer, for next links.
  local function reply_url(body)
    return srv.url .. "/reply?body=" .. core.url_encode(body)
  end
  local function get(q) return batch:request("GET", "/reply", { query = q }) end

  describe("misuse raises", function()
    local rows = {
      { function() batch:get_pool("p", { selct = "id" }) end,
        "bad argument #2 to 'get_pool' (unknown option 'selct' (did you mean 'select'?))" },
      { function() batch:wait_pool("p", { timout = 1 }) end, "unknown option 'timout' (did you mean 'timeout'?)" },
      { function() batch:delete_pool("p", { ifmatch = "x" }) end,
        "unknown option 'ifmatch' (did you mean 'if_match'?)" },
      { function() batch:list_pools { fliter = "x" } end, "unknown option 'fliter' (did you mean 'filter'?)" },
      { function() batch:list_nodes("p", { selectt = "id" }) end, "unknown option 'selectt'" },
      { function() batch:resize_pool("p", { targetDedicatedNodes = 1 }, { if_matc = "x" }) end, "unknown option" },
      { function() batch:request("GET", "/pools", { qurey = {} }) end,
        "unknown option 'qurey' (did you mean 'query'?)" },
      { function() batch:get_pool("p", "id") end, "bad argument #2 to 'get_pool' (table expected, got string)" },
      { function() batch:get_pool("") end, "bad argument #1 to 'get_pool' (the id is empty)" },
      { function() batch:get_pool(nil) end, "bad argument #1 to 'get_pool' (string expected, got nil)" },
      { function() batch:get_node("p", "") end, "bad argument #2 to 'get_node' (the id is empty)" },
      { function() batch:delete_pool("") end, "the id is empty" },
      { function() batch:wait_pool("p", { timeout = -1 }) end, "finite number of seconds" },
      { function() batch:wait_pool("p", { interval = 0 / 0 }) end, "finite number of seconds" },
      { function() batch:wait_pool("p", { on_progress = "print" }) end, "must be a function" },
      { function() batch:request("GET", "pools") end, "a path starting with '/' expected" },
      { function() batch:request("GET", "3/m/pools") end, "a path starting with '/' expected" },
      { function() batch:request("FETCH", "/pools") end, "one of GET, HEAD" },
      { function() batch:request("GET", "/pools?$filter=x") end, "give parameters in opts.query" },
      { function() batch:request("GET", "/pools", { timeout = math.huge }) end, "finite number of seconds" },
      { function() azbatch.client { endpoint = srv.url, credentail = 1 } end,
        "unknown option 'credentail' (did you mean 'credential'?)" },
      { function() azbatch.client { endpoint = srv.url, timeout = -3 } end, "finite number of seconds" },
      { function() azbatch.collect(42) end, "a list from a client method expected" },
    }
    for i, r in ipairs(rows) do
      it(("row %d: %s"):format(i, r[2]), function()
        assert.error_matches(r[1], r[2], 1, true)
      end)
    end

    it("the message points at the caller's line", function()
      local ok, err = pcall(function() batch:get_pool("p", { selct = "id" }) end)
      assert.is_false(ok)
      assert.matches("client_spec%.lua:%d+: bad argument", err)
    end)

    it("a header that cannot be signed is a validation fail, not a raise", function()
      local ok, msg, err = batch:delete_pool("p", { if_match = "a\r\nInjected: 1" })
      assert.is_nil(ok)
      assert.are.equal("headers: CR, LF or NUL in a header value", msg)
      assert.are.same({ kind = "validation", field = "headers" }, err)
    end)

    it("a closed client raises", function()
      batch:close()
      assert.error_matches(function() batch:get_pool("p") end, "attempt to use a closed azbatch.Client")
      assert.are.equal("azbatch.Client (closed)", tostring(batch))
    end)
  end)

  describe("endpoints and URLs", function()
    it("takes loopback in all its spellings for http, and refuses other hosts", function()
      local port = srv.url:match(":(%d+)$")
      for _, e in ipairs { "http://127.0.0.1:" .. port, "http://localhost:" .. port, "http://[::1]:" .. port,
                           "http://LOCALHOST:" .. port .. "/" } do
        local c = assert(azbatch.client { endpoint = e, credential = batch.credential })
        assert.is_nil(c.endpoint:find("/$"))
        c:close()
      end
      for _, e in ipairs { "http://batch.invalid", "ftp://127.0.0.1", srv.url .. "/sub/path", srv.url .. "?x=1" } do
        local c, msg, err = azbatch.client { endpoint = e, credential = batch.credential }
        assert.is_nil(c, e)
        assert.matches("^client.endpoint: ", msg)
        assert.are.same({ kind = "validation", field = "client.endpoint" }, err)
      end
    end)

    it("names the account after an https://{account}.{region}.batch.azure.com endpoint only", function()
      local chain = azbatch.credential.chain {}
      local c = assert(azbatch.client { endpoint = "https://MyAcct.westeurope.batch.azure.com", credential = chain })
      assert.are.equal("myacct", c.account)
      c = assert(azbatch.client { endpoint = "https://10-0-0-1.nip.invalid", credential = chain })
      assert.is_nil(c.account)
      c = assert(azbatch.client { endpoint = srv.url, credential = chain })
      assert.is_nil(c.account)
    end)

    it("a query api-version replaces the client's, never adds a second", function()
      local _, resp = batch:request("GET", "/echo", { query = { ["api-version"] = "2022-10-01.16.0", n = 3.0 } })
      assert.are.equal(200, resp.status)
      local line = select(3, batch.http:request { method = "GET", url = srv.url .. "/_last" })
      assert.truthy(line)
      local echoed = batch:request("GET", "/echo", { query = { ["api-version"] = "2022-10-01.16.0", n = 3.0 } })
      assert.are.equal(true, echoed)   -- text/plain: no JSON to decode
    end)

    it("keeps next links on the endpoint", function()
      local list = batch:pages("/reply", reply('{"value":[{"id":"a"}],"odata.nextLink":"http://127.0.0.1:1/pools?x"}'))
      local got, why, err = azbatch.collect(list)
      assert.is_nil(got)
      assert.matches("is not on http://127%.0%.0%.1:%d+", why)
      assert.are.same({ kind = "validation", field = "url" }, err)
    end)
  end)

  describe("pages", function()
    local function enc(t) return azbatch.json.encode(t) end

    it("follows next links, and an empty or absent 'value' is an empty page", function()
      local last = reply_url(enc { value = { { id = "c" } } })
      local second = reply_url(enc { ["odata.nextLink"] = last })
      local first = enc { value = { { id = "a" }, { id = "b" } }, ["odata.nextLink"] = second }
      local ids = {}
      for p in batch:pages("/reply", reply(first)) do ids[#ids + 1] = p.id end
      assert.are.same({ "a", "b", "c" }, ids)
    end)

    it("a link seen before ends the list with InvalidResponse, not an endless loop", function()
      local ids = {}
      local ok, err = pcall(function() for p in batch:pages("/cycle") do ids[#ids + 1] = p.id end end)
      assert.is_false(ok)
      assert.matches("the same odata.nextLink twice", err)
      assert.are.same({ "p0", "p1" }, ids)   -- the page that repeats a link is not trusted
      local got, why, e = azbatch.collect(batch:pages("/cycle"))
      assert.is_nil(got)
      assert.matches("the same odata.nextLink twice", why)
      assert.are.same({ kind = "api", code = "InvalidResponse" }, e)
    end)

    local bad = {
      { "a scalar body", "5", "not a JSON object" },
      { "a string body", '"pools"', "not a JSON object" },
      { "a non-JSON 200", "<html>", "not a JSON object", "text/html" },
      { "value not an array", '{"value": 3}', "'value' is not an array" },
      { "value an object", '{"value": {"id": "p"}}', "'value' is not an array" },
      { "a page that is an array", '[{"id": "p"}]', "not a JSON object" },
      { "an item that is an array", '{"value": [[1]]}', "item 1 is not an object" },
      { "an item not an object", '{"value": [1]}', "item 1 is not an object" },
      { "a non-string next link", '{"value": [], "odata.nextLink": 7}', "'odata.nextLink' is not a string" },
    }
    for _, b in ipairs(bad) do
      it("malformed page: " .. b[1], function()
        local got, why, err = azbatch.collect(batch:pages("/reply", reply(b[2], 200, b[4])))
        assert.is_nil(got)
        assert.truthy(why:find(b[3], 1, true), why)
        assert.are.same({ kind = "api", code = "InvalidResponse" }, err)
        -- the iterator raises the same, as io.lines does
        assert.error_matches(function() for _ in batch:pages("/reply", reply(b[2], 200, b[4])) do end end,
                             b[3], 1, true)
      end)
    end

    it("malformed JSON in an answer is an api fail", function()
      local ok, msg, err = get(reply('{"value": [', 200))
      assert.is_nil(ok)
      assert.matches("malformed JSON", msg)
      assert.are.equal("InvalidResponse", err.code)
      assert.are.equal(200, err.status)
    end)
  end)

  describe("service errors", function()
    it("keep code, message and every value, and say the details in the message", function()
      local body = azbatch.json.encode { code = "AuthenticationFailed", message = { lang = "en-US",
        value = "Server failed to authenticate the request.\nRequestId:1" },
        values = { { key = "AuthenticationErrorDetail", value = "The MAC signature found is not the same" },
          { key = "Reason", value = "bad key" } } }
      local ok, msg, err = get(reply(body, 403))
      assert.is_nil(ok)
      assert.are.equal("AuthenticationFailed: Server failed to authenticate the request. "
        .. "[AuthenticationErrorDetail=The MAC signature found is not the same, Reason=bad key]", msg)
      assert.are.same({ { key = "AuthenticationErrorDetail", value = "The MAC signature found is not the same" },
        { key = "Reason", value = "bad key" } }, err.values)
      assert.are.equal(403, err.status)
      assert.are.equal("api", err.kind)
    end)

    it("clean what the service says before it reaches a message", function()
      local body = azbatch.json.encode { code = "Bad\27[31mCode", message = { value = "line one\27]0;title\7 "
        .. string.rep("x", 2000) }, values = { { key = "K\r\nInjected: 1", value = "\27[2Jv" } } }
      local ok, msg, err = get(reply(body, 400))
      assert.is_nil(ok)
      assert.is_nil(msg:find("[%c]"), "control characters in: " .. msg)
      assert.is_nil(err.code:find("%c"))
      assert.is_nil(err.values[1].key:find("%c"))
      assert.is_true(#err.message <= 512)
      assert.matches("^Bad%[31mCode: line one%]0;title ", msg)
    end)

    it("an ARM error body is read too", function()
      local body = azbatch.json.encode { error = { code = "ResourceNotFound", message = "The gallery was not found.",
        details = { { code = "Inner", message = "more" } } } }
      local ok, msg, err = get(reply(body, 404))
      assert.is_nil(ok)
      assert.are.equal("ResourceNotFound: The gallery was not found. [Inner=more]", msg)
      assert.are.equal("ResourceNotFound", err.code)
    end)
  end)
end)
