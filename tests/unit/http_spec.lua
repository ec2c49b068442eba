-- The transport (core.http) against tests/unit/support/loopback_server.py.
local core = require "azbatch.core"
local server = dofile("tests/unit/support/server.lua")

-- Wait for every request in 'reqs' (polling), return them in completion order.
local function drain(http, limit)
  local out = {}
  local deadline = os.time() + (limit or 20)
  while http:pending() > 0 and os.time() <= deadline do
    for _, r in ipairs(http:poll(0.5)) do out[#out + 1] = r end
  end
  for _, r in ipairs(http:poll(0)) do out[#out + 1] = r end
  return out
end

local function echo(http, req)
  local status, _, body = assert(http:request(req))
  assert.are.equal(200, status)
  return server.parse_echo(body)
end

describe("core.http", function()
  local srv, http
  setup(function() srv = server.start() end)
  teardown(function() server.stop(srv) end)
  before_each(function() http = core.http() end)
  after_each(function() http:close() end)

  local function url(path) return srv.url .. path end

  local function free_port()
    local _, _, body = assert(http:request { method = "GET", url = url("/_freeport") })
    return tonumber(body)
  end

  describe("headers on the wire", function()
    it("an empty POST sends Content-Length: 0 and nothing libcurl would add", function()
      local req = echo(http, { method = "POST", url = url("/echo/pools/p1/stopresize?api-version=x"),
                               headers = { ["ocp-date"] = "Mon, 01 Jan 2024 00:00:00 GMT" } })
      assert.are.equal("POST /echo/pools/p1/stopresize?api-version=x HTTP/1.1", req.line)
      assert.are.equal("0", req.by_name["content-length"])
      assert.is_nil(req.by_name["expect"])
      assert.is_nil(req.by_name["content-type"])
      assert.is_nil(req.by_name["accept"])
      assert.is_nil(req.by_name["transfer-encoding"])
      assert.are.equal("Mon, 01 Jan 2024 00:00:00 GMT", req.by_name["ocp-date"])
      assert.matches("^azbatch/%d+%.%d+%.%d+ Lua/5%.4 libcurl/%d+%.%d+%.%d+$", req.by_name["user-agent"])
      assert.are.equal("", req.body)
      local names = {}
      for _, h in ipairs(req.headers) do names[#names + 1] = h[1]:lower() end
      table.sort(names)
      assert.are.same({ "accept-encoding", "content-length", "host", "ocp-date", "user-agent" }, names)
    end)

    it("a body goes with an explicit Content-Length and the given Content-Type", function()
      local body = '{"id":"p1","vmSize":"Standard_D2s_v5"}'
      local req = echo(http, { method = "POST", url = url("/echo"), body = body,
                               headers = { ["Content-Type"] = "application/json; odata=minimalmetadata",
                                           ["Accept"] = "application/json" } })
      assert.are.equal(tostring(#body), req.by_name["content-length"])
      assert.are.equal("application/json; odata=minimalmetadata", req.by_name["content-type"])
      assert.are.equal("application/json", req.by_name["accept"])
      assert.is_nil(req.by_name["expect"])
      assert.are.equal(body, req.body)
    end)

    it("a large body is sent whole, without Expect: 100-continue", function()
      local body = string.rep("0123456789", 200000)
      local req = echo(http, { method = "PUT", url = url("/echo"), body = body })
      assert.are.equal("PUT /echo HTTP/1.1", req.line)
      assert.is_nil(req.by_name["expect"])
      assert.are.equal(#body, #req.body)
      assert.are.equal(body, req.body)
    end)

    it("PUT and PATCH without a body say Content-Length: 0; DELETE and GET say nothing", function()
      for _, m in ipairs { "PUT", "PATCH" } do
        local req = echo(http, { method = m, url = url("/echo") })
        assert.are.equal(m .. " /echo HTTP/1.1", req.line)
        assert.are.equal("0", req.by_name["content-length"])
        assert.is_nil(req.by_name["content-type"])
      end
      for _, m in ipairs { "DELETE", "GET" } do
        local req = echo(http, { method = m, url = url("/echo") })
        assert.are.equal(m .. " /echo HTTP/1.1", req.line)
        assert.is_nil(req.by_name["content-length"])
      end
    end)

    it("sends headers exactly as given, including an empty value", function()
      local req = echo(http, { method = "GET", url = url("/echo"),
                               headers = { ["X-One"] = "1", ["If-Match"] = "", ["X-Spaced"] = "   padded  " } })
      assert.are.equal("1", req.by_name["x-one"])
      assert.are.equal("", req.by_name["if-match"])
      assert.are.equal("padded", req.by_name["x-spaced"])
    end)

    it("with auth = a SharedKey, signs exactly the header list it sends", function()
      local sk = assert(core.shared_key("acct", "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="))
      local body = '{"id":"p"}'
      local headers = { ["ocp-date"] = "Mon, 01 Jan 2024 00:00:00 GMT", ["Content-Type"] = "application/json",
                        ["If-Match"] = '"0x1"' }
      local req = echo(http, { method = "POST", url = url("/echo/pools?api-version=x&b=%41"), body = body,
                               headers = headers, auth = sk })
      -- what the transport added (Content-Length) is signed too
      local sent = { ["Content-Length"] = tostring(#body) }
      for k, v in pairs(headers) do sent[k] = v end
      assert.are.equal(sk:sign("POST", url("/echo/pools?api-version=x&b=%41"), sent), req.by_name["authorization"])
      local empty = echo(http, { method = "POST", url = url("/echo/stop"), auth = sk,
                                 headers = { ["ocp-date"] = "x" } })
      assert.are.equal(sk:sign("POST", url("/echo/stop"), { ["ocp-date"] = "x", ["Content-Length"] = "0" }),
                       empty.by_name["authorization"])
      -- a header that cannot be sent cannot be signed: fail, nothing sent
      local before = http:stats().requests
      local ok, msg, err = http:start { method = "GET", url = url("/echo"), auth = sk,
                                        headers = { ["If-Match"] = "a\r\nb" } }
      assert.is_nil(ok)
      assert.are.equal("headers: CR, LF or NUL in a header value", msg)
      assert.are.equal("validation", err.kind)
      ok, msg, err = http:start { method = "GET", url = url("/echo"), auth = sk,
                                  headers = { Authorization = "mine" } }
      assert.is_nil(ok)
      assert.are.equal("headers", err.field)
      assert.matches("Authorization is set by the transport", msg)
      assert.are.equal(before, http:stats().requests)
    end)

    it("with auth = a TokenCredential, needs a cached token for the scope", function()
      local c = assert(core.token_credential { kind = "managed_identity", endpoint = url("/nothing") })
      local ok, msg, err = http:start { method = "GET", url = url("/echo"), auth = c, scope = "https://x/.default" }
      assert.is_nil(ok)
      assert.matches("^GET http://127%.0%.0%.1:%d+/echo: no unexpired token for this scope", msg)
      assert.are.same({ kind = "auth" }, err)
      assert.error_matches(function() http:start { method = "GET", url = url("/echo"), auth = c } end,
                           "needs 'scope'")
    end)

    it("keeps a request on its origin", function()
      local origin = assert(core.url_check(url("/"))).origin
      assert.matches("^http://127%.0%.0%.1:%d+$", origin)
      assert(http:request { method = "GET", url = url("/big?n=1"), origin = origin })
      local ok, msg, err = http:start { method = "GET", url = "http://127.0.0.1:1/x", origin = origin }
      assert.is_nil(ok)
      assert.matches("^url: http://127%.0%.0%.1:1/x is not on http://127%.0%.0%.1:%d+$", msg)
      assert.are.same({ kind = "validation", field = "url" }, err)
    end)

    it("signs exactly the path and query libcurl sends", function()
      local sk = core.shared_key("acct", "AQID")
      for _, path in ipairs { "/echo/a/./b/../c?x=1", "/echo/\xc3\xa9?q=%20+y", "/echo/%7e//d?" } do
        local req = echo(http, { method = "GET", url = url(path) })
        local sent = req.line:match("^GET (%S+)")
        local sts = sk:string_to_sign("GET", url(path), {})
        local signed = sts:match("\n/acct(/[^\n]*)")
        assert.are.equal(sent:match("^[^?]*"), signed)
      end
    end)
  end)

  describe("responses", function()
    it("gives status, lower-cased headers (repeats joined), body and info", function()
      local status, headers, body, info = http:request { method = "GET", url = url("/status?code=409") }
      assert.are.equal(409, status)
      assert.are.equal("a, b", headers["x-multi"])
      assert.are.equal('"0x8DC"', headers["etag"])
      assert.are.equal("rid-1", headers["request-id"])
      assert.are.equal("application/json", headers["content-type"])
      assert.are.equal('{"code": "Thing", "status": 409}', body)
      assert.are.equal("127.0.0.1", info.primary_ip)
      assert.are.equal(1, info.new_connections)
      assert.is_true(info.total_time >= info.connect_time and info.connect_time >= 0)
    end)

    it("HEAD has headers and no body", function()
      local status, headers, body = http:request { method = "HEAD", url = url("/big?n=1234") }
      assert.are.equal(200, status)
      assert.are.equal("1234", headers["content-length"])
      assert.are.equal("", body)
    end)

    it("decodes a gzip response", function()
      local status, headers, body = http:request { method = "GET", url = url("/gzip") }
      assert.are.equal(200, status)
      assert.are.equal("gzip", headers["content-encoding"])
      assert.are.equal(string.rep("hello ", 1000), body)
    end)

    it("offers gzip only", function()
      local req = echo(http, { method = "GET", url = url("/echo") })
      assert.are.equal("gzip", req.by_name["accept-encoding"])
    end)

    it("refuses a response larger than max_response, counted after decoding", function()
      local h <close> = core.http { max_response = 1000 }
      assert(h:request { method = "GET", url = url("/big?n=1000") })
      local ok, msg, err = h:request { method = "GET", url = url("/big?n=1001") }
      assert.is_nil(ok)
      assert.matches("^transport: GET http://127%.0%.0%.1:%d+/big: the response body is larger than the 1000 bytes",
                     msg)
      assert.are.same({ kind = "transport", code = "ResponseTooLarge", status = 200, retryable = false,
                        sent = true }, err)
      -- a gzip bomb: a few KiB on the wire, 8 MiB decoded; the per-request cap wins
      ok, msg, err = http:request { method = "GET", url = url("/gzipbomb?n=8388608"), max_response = 65536 }
      assert.is_nil(ok)
      assert.are.equal("ResponseTooLarge", err.code)
      assert.matches("65536 bytes", msg)
      -- and the default cap (32 MiB) holds without any option
      ok, msg, err = http:request { method = "GET", url = url("/gzipbomb?n=" .. 40 * 1024 * 1024) }
      assert.is_nil(ok)
      assert.are.equal("ResponseTooLarge", err.code)
      assert.matches("33554432 bytes", msg)
      assert.error_matches(function() core.http { max_response = 0 } end, "max_response")
    end)

    it("keep_headers = false skips collecting headers", function()
      local status, headers, body = http:request { method = "GET", url = url("/status?code=200"),
                                                    keep_headers = false }
      assert.are.equal(200, status)
      assert.are.same({}, headers)
      assert.matches("Thing", body)
    end)

    it("result() can be asked twice and gives the same values", function()
      local r = http:start { method = "GET", url = url("/big?n=10") }
      drain(http)
      local s1, h1, b1 = r:result()
      local s2, h2, b2 = r:result()
      assert.are.equal(s1, s2)
      assert.are.equal(h1, h2)
      assert.are.equal(b1, b2)
    end)
  end)

    it("take() gives the result once and lets go of it while the request lives on", function()
      local r = http:start { method = "GET", url = url("/big?n=10") }
      assert.error_matches(function() r:take() end, "request still in flight")
      drain(http)
      local held = setmetatable({}, { __mode = "v" })
      do
        local status, headers, body = r:take()
        assert.are.equal(200, status)
        assert.are.equal("table", type(headers))
        assert.are.equal(("x"):rep(10), body)
        held.headers = headers
      end
      collectgarbage()
      collectgarbage()
      assert.is_nil(held.headers)          -- r is alive, its headers are gone
      assert.is_true(r:done())
      assert.error_matches(function() r:take() end, "request's result already taken")
      assert.error_matches(function() r:result() end, "request's result already taken")
    end)

  describe("connections", function()
    it("reuses one keep-alive connection for sequential requests", function()
      local ports = {}
      for i = 1, 20 do
        local _, _, body = assert(http:request { method = "GET", url = url("/conn") })
        ports[i] = body
      end
      assert.are.equal(1, http:stats().connections)
      assert.are.equal(20, http:stats().requests)
      for i = 2, 20 do assert.are.equal(ports[1], ports[i]) end
    end)

    it("opens a new connection for each fresh_connect request, and reuses again after", function()
      local h <close> = core.http {}
      local ports = {}
      for i = 1, 3 do
        local _, _, body = assert(h:request { method = "GET", url = url("/conn"), fresh_connect = true })
        ports[i] = body
      end
      assert.are.equal(3, h:stats().connections)
      assert.are_not.equal(ports[1], ports[2])
      assert.are_not.equal(ports[2], ports[3])
      local _, _, again = assert(h:request { method = "GET", url = url("/conn") })
      local _, _, again2 = assert(h:request { method = "GET", url = url("/conn") })
      assert.are.equal(again, again2)
      assert.is_true(h:stats().connections <= 4)
    end)

    it("runs 20 requests at once with start/poll", function()
      local reqs, t0 = {}, os.time()
      for i = 1, 20 do
        reqs[i] = assert(http:start { method = "GET", url = url("/sleep?s=0.5") })
      end
      assert.are.equal(20, http:pending())
      assert.are.equal(20, http:stats().in_flight)
      local done = drain(http)
      assert.are.equal(20, #done)
      assert.are.equal(0, http:pending())
      for _, r in ipairs(reqs) do
        assert.is_true(r:done())
        local status, _, body = r:result()
        assert.are.equal(200, status)
        assert.are.equal("slept", body)
      end
      local st = http:stats()
      assert.is_true(st.connections > 1 and st.connections <= 8, "connections " .. st.connections)
      assert.is_true(os.time() - t0 <= 5)   -- one after another would take 10 s
    end)

    it("watches more sockets than fit its stack array: 24 requests on 24 connections", function()
      local h2 <close> = core.http { max_connections = 24 }
      local reqs = {}
      for i = 1, 24 do reqs[i] = assert(h2:start { method = "GET", url = url("/sleep?s=0.5") }) end
      assert.are.equal(24, #drain(h2))
      for _, r in ipairs(reqs) do
        local status, _, body = r:result()
        assert.are.equal(200, status)
        assert.are.equal("slept", body)
      end
      assert.is_true(h2:stats().connections > 16, "connections " .. h2:stats().connections)
    end)

    it("max_connections caps connections per host", function()
      local h2 <close> = core.http { max_connections = 2 }
      for _ = 1, 6 do assert(h2:start { method = "GET", url = url("/sleep?s=0.2") }) end
      assert.are.equal(6, #drain(h2))
      assert.is_true(h2:stats().connections <= 2)
    end)

    it("poll(wait) with nothing in flight waits without spinning", function()
      local cpu, wall = os.clock(), core.now and core.now()
      for _ = 1, 3 do assert.are.same({}, http:poll(0.2)) end
      assert.is_true(os.clock() - cpu < 0.1)
      if wall then assert.is_true(core.now() - wall >= 0.55) end
    end)

    it("core.wait waits on several transports at once", function()
      local h1 <close> = core.http {}
      local h2 <close> = core.http {}
      local a = assert(h1:start { method = "GET", url = url("/sleep?s=0.3") })
      local b = assert(h2:start { method = "GET", url = url("/sleep?s=0.3") })
      local t0, got = core.now(), {}
      while #got < 2 and core.now() - t0 < 5 do
        core.wait({ h1, h2 }, 2)
        for _, h in ipairs { h1, h2 } do
          for _, r in ipairs(h:poll(0)) do got[#got + 1] = r end
        end
      end
      assert.are.equal(2, #got)
      assert.is_true(a:done() and b:done())
      assert.is_true(core.now() - t0 < 1.5, "both finished within one wait each")
      -- nothing in flight: the wait is a plain timer; closed ones are skipped
      h2:close()
      t0 = core.now()
      assert.is_true(core.wait({ h1, h2 }, 0.2))
      assert.is_true(core.now() - t0 >= 0.15)
      assert.error_matches(function() core.wait({ {} }, 0) end, "azbatch.Http expected")
    end)

    it("closed() tells whether the transport was closed", function()
      local h = core.http()
      assert.is_false(h:closed())
      h:close()
      assert.is_true(h:closed())
    end)

    it("request() leaves other finished requests for poll()", function()
      local a = assert(http:start { method = "GET", url = url("/big?n=5") })
      assert(http:request { method = "GET", url = url("/sleep?s=0.2") })
      assert.is_true(a:done())
      local got = http:poll(0)
      assert.are.equal(1, #got)
      assert.are.equal(a, got[1])
      assert.are.same({}, http:poll(0))
    end)
  end)

  describe("failures", function()
    it("a slow server gives kind 'timeout'", function()
      local ok, msg, err = http:request { method = "GET", url = url("/sleep?s=3&token=SECRET"), timeout = 0.3 }
      assert.is_nil(ok)
      assert.matches("^transport: GET http://127%.0%.0%.1:%d+/sleep: .*[Tt]imed out", msg)
      assert.is_nil(msg:find("SECRET", 1, true))
      assert.are.same({ kind = "timeout", curl_code = 28, retryable = true, sent = true }, err)
    end)

    it("the Http timeout applies when the request sets none", function()
      local h2 <close> = core.http { timeout = 0.3 }
      local ok, _, err = h2:request { method = "GET", url = url("/sleep?s=3") }
      assert.is_nil(ok)
      assert.are.equal("timeout", err.kind)
    end)

    it("connection refused is a retryable transport error", function()
      local port = free_port()
      local ok, msg, err = http:request { method = "GET", url = "http://127.0.0.1:" .. port .. "/x" }
      assert.is_nil(ok)
      assert.matches("^transport: GET http://127%.0%.0%.1:" .. port .. "/x: ", msg)
      assert.matches("Connection refused", msg)
      assert.are.same({ kind = "transport", curl_code = 7, retryable = true, sent = false }, err)
    end)

    it("https to a closed port fails as transport", function()
      local port = free_port()
      local ok, msg, err = http:request { method = "GET", url = "https://127.0.0.1:" .. port .. "/" }
      assert.is_nil(ok)
      assert.matches("^transport: GET https://127%.0%.0%.1:" .. port .. "/: ", msg)
      assert.are.equal("transport", err.kind)
      assert.is_true(err.retryable)
    end)

    it("a dropped connection is retryable", function()
      local ok, _, err = http:request { method = "GET", url = url("/drop") }
      assert.is_nil(ok)
      assert.are.same({ kind = "transport", curl_code = 52, retryable = true, sent = true }, err)
    end)

    it("refuses http:// to a non-loopback host before any network", function()
      local before = http:stats().requests
      local ok, msg, err = http:start { method = "GET", url = "http://example.com/pools?sig=x" }
      assert.is_nil(ok)
      assert.are.equal('url: http:// is only allowed to loopback addresses (got host "example.com"); '
                       .. "use https://", msg)
      assert.are.same({ kind = "validation", field = "url" }, err)
      assert.are.equal(before, http:stats().requests)
      assert.are.equal(0, http:pending())
      for _, u in ipairs { "http://127.0.0.1.example.com/", "http://batch.invalid/", "http://[::2]/",
                           "http://localhost.example/", "http://127.0.0.1.invalid/" } do
        local r, _, e = http:start { method = "GET", url = u }
        assert.is_nil(r, u)
        assert.are.equal("url", e.field)
      end
    end)

    it("accepts the loopback forms", function()
      for _, u in ipairs { "http://localhost:1/", "http://127.0.0.2:1/", "http://[::1]:1/", "http://LOCALHOST:1/" } do
        local r = assert(http:start { method = "GET", url = u })
        assert.is_true(r:cancel())
      end
    end)

    it("rejects malformed URLs, other schemes and credentials in the URL", function()
      local cases = {
        { "not a url", "^url: malformed URL" },
        { "ftp://127.0.0.1/x", "^url: unsupported scheme" },
        { "https://user:pw@127.0.0.1/", "^url: credentials in the URL are not allowed$" },
        { "https://127.0.0.1/x#pw", "^url: a fragment" },
      }
      for _, c in ipairs(cases) do
        local ok, msg, err = http:start { method = "GET", url = c[1] }
        assert.is_nil(ok)
        assert.matches(c[2], msg)
        assert.is_nil(msg:find("pw", 1, true))
        assert.are.same({ kind = "validation", field = "url" }, err)
      end
    end)

    it("rejects malformed headers and a wrong Content-Length", function()
      local cases = {
        { headers = { ["X-Bad"] = "a\r\nInjected: yes" }, msg = "^headers: CR, LF or NUL in a header value$" },
        { headers = { ["Bad Name"] = "x" }, msg = "^headers: invalid character in a header name$" },
        { headers = { ["X-A"] = "1", ["x-a"] = "2" }, msg = "^headers: [Xx]%-[Aa] is given twice" },
        { headers = { ["Content-Length"] = "4" }, body = "four",
          msg = "^headers: Content%-Length is set by the transport" },
      }
      for _, c in ipairs(cases) do
        local ok, msg, err = http:start { method = "POST", url = url("/echo"), headers = c.headers, body = c.body }
        assert.is_nil(ok)
        assert.matches(c.msg, msg)
        assert.are.same({ kind = "validation", field = "headers" }, err)
      end
    end)
  end)

  describe("TLS", function()
    local dir, tls
    setup(function()
      dir = os.tmpname()
      os.remove(dir)
      server.sh("mkdir -p " .. dir)
      local ok = server.sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        .. "-keyout %s/key.pem -out %s/cert.pem -days 2 -subj /CN=localhost "
        .. "-addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1"):format(dir, dir))
      if ok then tls = server.start("--tls " .. dir .. "/cert.pem " .. dir .. "/key.pem") end
    end)
    teardown(function()
      server.stop(tls)
      server.sh("rm -rf " .. dir)
    end)

    it("verifies the server certificate, always", function()
      assert.truthy(tls, "openssl could not make a test certificate")
      local ok, msg, err = http:request { method = "GET", url = tls.url .. "/big?n=3" }
      assert.is_nil(ok)
      assert.matches("certificate", msg)
      assert.are.equal("transport", err.kind)
      assert.is_false(err.retryable)
    end)

    it("verbose output never shows the Authorization header, HTTP/2 included", function()
      assert.truthy(tls, "openssl could not make a test certificate")
      local h2srv = server.start("--tls " .. dir .. "/cert.pem " .. dir .. "/key.pem --alpn-h2")
      local script = dir .. "/verbose.lua"
      local f = assert(io.open(script, "w"))
      f:write(([[
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local core = require "azbatch.core"
local sk = core.shared_key("acct", "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")
local http = core.http { ca_file = %q, verbose = true }
io.stdout:write(sk:sign("GET", %q, { ["ocp-date"] = "x" }), "\n")
http:request { method = "GET", url = %q, auth = sk, headers = { ["ocp-date"] = "x" } }
]]):format(dir .. "/cert.pem", h2srv.url .. "/echo", h2srv.url .. "/echo"))
      f:close()
      local p = io.popen(("LD_PRELOAD= %s %s 2>%s/verbose.err"):format("lua5.4", script, dir))
      local signature = p:read("l")
      p:close()
      server.stop(h2srv)
      local log = assert(io.open(dir .. "/verbose.err")):read("a")
      assert.matches("^SharedKey acct:", signature)
      assert.truthy(log:find("using HTTP/2", 1, true), log)
      assert.truthy(log:find("[authorization: <redacted>", 1, true), log)
      assert.is_nil(log:find(signature:match(":(.*)$"), 1, true))
      assert.is_nil(log:find("SharedKey", 1, true))
    end)

    it("trusts a CA given with ca_file", function()
      assert.truthy(tls, "openssl could not make a test certificate")
      local h2 <close> = core.http { ca_file = dir .. "/cert.pem" }
      local status, _, body = assert(h2:request { method = "GET", url = tls.url .. "/big?n=3" })
      assert.are.equal(200, status)
      assert.are.equal("xxx", body)
    end)
  end)

  describe("lifetime and misuse", function()
    it("raises on bad options and bad requests", function()
      assert.error_matches(function() core.http { timeot = 3 } end, "unknown option 'timeot'")
      assert.error_matches(function() core.http { timeout = -1 } end, "option 'timeout'")
      assert.error_matches(function() core.http { max_connections = 0 } end, "max_connections")
      assert.error_matches(function() core.http { ca_file = 3 } end, "string expected")
      assert.error_matches(function() http:start "GET /" end, "table expected")
      assert.error_matches(function() http:start { method = "GET", url = url("/"), bdy = "x" } end,
                           "unknown option 'bdy'")
      assert.error_matches(function() http:start { method = "FETCH", url = url("/") } end, "unsupported method")
      assert.error_matches(function() http:start { method = "get", url = url("/") } end, "unsupported method")
      assert.error_matches(function() http:start { method = "GET" } end, "'url' must be a string")
      assert.error_matches(function() http:start { method = "GET", url = url("/"), body = "x" } end,
                           "has no body")
      assert.error_matches(function() http:start { method = "GET", url = url("/"), headers = { "X: 1" } } end,
                           "names are strings")
      assert.error_matches(function() http:start { method = "GET", url = url("/"), headers = { X = 1 } } end,
                           "must be a string")
      assert.error_matches(function() http:start { method = "GET", url = url("/"), auth = {} } end,
                           "'auth' must be")
      assert.error_matches(function() http:start { method = "GET", url = url("/"), timeout = 0 / 0 } end,
                           "finite number of seconds")
      assert.error_matches(function() http:poll(-1) end, "wait must be a finite number")
      assert.error_matches(function() http:poll(math.huge) end, "wait must be a finite number")
    end)

    it("result() raises while the request is in flight", function()
      local r = assert(http:start { method = "GET", url = url("/sleep?s=0.3") })
      assert.is_false(r:done())
      assert.error_matches(function() r:result() end, "request still in flight")
      assert.matches("^azbatch.Request %(GET http://127%.0%.0%.1:%d+/sleep, running%)$", tostring(r))
      drain(http)
      assert.are.equal(200, (r:result()))
    end)

    it("cancel() stops a request in flight", function()
      local r = assert(http:start { method = "GET", url = url("/sleep?s=3") })
      http:poll(0.1)
      assert.is_true(r:cancel())
      assert.is_false(r:cancel())
      assert.is_true(r:done())
      assert.are.equal(0, http:pending())
      local ok, msg, err = r:result()
      assert.is_nil(ok)
      assert.matches("^transport: GET http://127%.0%.0%.1:%d+/sleep: request cancelled$", msg)
      assert.are.same({ kind = "transport", retryable = false, cancelled = true, sent = true }, err)
      -- whoever waits on it is woken: poll returns it, once
      assert.are.same({ r }, http:poll(0))
      assert.are.same({}, http:poll(0))
      local r2 = assert(http:start { method = "GET", url = url("/sleep?s=3") })
      assert.is_true(r2:cancel("the azbatch.Client was closed"))
      local _, msg2 = r2:result()
      assert.matches("/sleep: the azbatch.Client was closed$", msg2)
    end)

    it("a closed Http raises, and its in-flight requests end", function()
      local h2 = core.http()
      local r = assert(h2:start { method = "GET", url = url("/sleep?s=3") })
      assert.matches("^azbatch.Http %(0x%x+%)$", tostring(h2))
      assert.is_true(h2:close())
      assert.is_true(h2:close())
      assert.are.equal("azbatch.Http (closed)", tostring(h2))
      for _, m in ipairs { "start", "poll", "pending", "stats", "request" } do
        assert.error_matches(function() h2[m](h2, { method = "GET", url = url("/") }) end,
                             "attempt to use a closed azbatch.Http")
      end
      assert.is_true(r:done())
      local ok, msg, err = r:result()
      assert.is_nil(ok)
      assert.matches("was closed$", msg)
      assert.is_true(err.cancelled)
    end)

    it("works as a <close> variable", function()
      local held
      do
        local h2 <close> = core.http()
        held = h2
        assert(h2:request { method = "GET", url = url("/big?n=1") })
      end
      assert.are.equal("azbatch.Http (closed)", tostring(held))
    end)

    it("dropped requests in flight are removed when collected", function()
      for _ = 1, 5 do http:start { method = "GET", url = url("/sleep?s=2") } end
      assert.are.equal(5, http:pending())
      collectgarbage()
      collectgarbage()
      assert.are.equal(0, http:pending())
      assert.are.same({}, http:poll(0))
      local status = http:request { method = "GET", url = url("/big?n=1") }
      assert.are.equal(200, status)
    end)

    it("a dropped Http with requests in flight is collected safely", function()
      do
        local h2 = core.http()
        for _ = 1, 3 do h2:start { method = "GET", url = url("/sleep?s=2") } end
        h2:poll(0.05)
      end
      collectgarbage()
      collectgarbage()
      local keep = core.http()
      local r = keep:start { method = "GET", url = url("/sleep?s=2") }
      keep = nil   -- luacheck: ignore (the Request keeps its Http alive)
      collectgarbage()
      assert.is_false(r:done())
      r:cancel()
    end)
  end)
end)
