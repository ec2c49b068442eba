-- Entra ID credentials (core.token_credential) against the loopback server
-- (tests/unit/support/loopback_server.py) and fake `az` scripts.
local core = require "azbatch.core"
local server = dofile("tests/unit/support/server.lua")

local BATCH = "https://batch.core.windows.net//.default"
local ARM = "https://management.azure.com/.default"
local SECRET = "s3cret-value-never-logged"     -- the server's good secret
local TENANT = "00000000-0000-0000-0000-0000000000aa"
local CLIENT = "00000000-0000-0000-0000-0000000000c1"

local function write(path, text, mode)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  if mode then server.sh("chmod " .. mode .. " " .. path) end
end

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

describe("core.token_credential", function()
  local srv, http, tmp
  setup(function()
    srv = server.start()
    http = core.http()
    tmp = os.tmpname()
    os.remove(tmp)
    server.sh("mkdir -p " .. tmp)
  end)
  teardown(function()
    http:close()
    server.stop(srv)
    server.sh("rm -rf " .. tmp)
  end)

  local function get(path)
    local status, _, body = assert(http:request { method = "GET", url = srv.url .. path })
    assert.are.equal(200, status)
    return body
  end
  local function count() return tonumber(get("/_count")) end
  local function last() return get("/_last") end

  -- The protocol a client follows: a fresh cached token, or start the
  -- request on a transport, wait, finish; then the cached token.
  local function token(c, scope)
    if not c:expires(scope) then
      local ok, msg, err
      if c:kind() == "azure_cli" then
        ok, msg, err = c:run(scope)
      else
        local req
        req, msg, err = c:start(http, scope)
        if not req then return nil, msg, err end
        while not req:done() do http:poll(0.5) end
        ok, msg, err = c:finish(scope, req)
      end
      if not ok then return nil, msg, err end
    end
    return c:peek(scope)
  end
  local function fresh(c, scope)
    c:clear()
    return token(c, scope)
  end

  local function secret_cred(extra)
    local opts = { kind = "client_secret", tenant = TENANT, client_id = CLIENT,
                   client_secret = SECRET, authority = srv.url }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(core.token_credential(opts))
  end

  describe("client_secret", function()
    it("gets a token with a form-encoded client credentials request", function()
      local c = secret_cred { client_id = "app id/1" }
      local now = os.time()
      local tok, exp = token(c, BATCH)
      assert.matches("^tok%-%d+%-https://batch%.core%.windows%.net//%.default$", tok)
      assert.is_true(math.type(exp) == "integer")
      assert.is_true(exp >= now + 3590 and exp <= now + 3610)
      assert.are.equal("grant_type=client_credentials&client_id=app%20id%2F1&client_secret=" .. SECRET
                       .. "&scope=https%3A%2F%2Fbatch.core.windows.net%2F%2F.default", last())
    end)

    it("caches per scope until refresh_before seconds before expiry", function()
      local c = secret_cred()
      local t1 = token(c, BATCH)
      local n = count()
      assert.are.equal(t1, token(c, BATCH))
      assert.are.equal(n, count())                 -- served from the cache
      local a1 = token(c, ARM)
      assert.are.equal(n + 1, count())             -- another scope, another request
      assert.matches("management", a1)
      assert.are.equal(t1, token(c, BATCH))
      assert.are.equal(n + 1, count())
    end)

    it("refreshes at most half a token's life early, whatever refresh_before says", function()
      local c = secret_cred { refresh_before = 3600 }   -- tokens live 3599 s
      local t1 = token(c, BATCH)
      local n = count()
      assert.are.equal(t1, token(c, BATCH))
      assert.are.equal(n, count())
    end)

    it("clear() drops the cache; expires() and peek() say what is cached", function()
      local c = secret_cred()
      assert.is_nil(c:expires(BATCH))
      assert.is_nil(c:peek(BATCH))
      local tok, exp = token(c, BATCH)
      assert.are.equal(exp, c:expires(BATCH))
      assert.are.equal(tok, (c:peek(BATCH)))
      local n = count()
      assert.is_true(c:clear())
      assert.is_nil(c:expires(BATCH))
      token(c, BATCH)
      assert.are.equal(n + 1, count())
    end)

    it("clamps an expiry outside a minute to a day", function()
      local cases = { { "expires-in-0", 60 }, { "expires-in-huge", 86400 }, { "expires-in-negative", 600 },
                      { "expires-on-past", 60 }, { "expires-in-100-digits", 86400 },
                      { "expires-in-overflow", 86400 } }
      for _, k in ipairs(cases) do
        local c = secret_cred { tenant = k[1] }
        local now = os.time()
        local _, exp = assert(token(c, BATCH))
        assert.is_true(exp >= now + k[2] - 2 and exp <= now + k[2] + 2, k[1] .. ": " .. exp - now)
        -- a short-lived token is still used (half its life), not fetched for every call
        assert.is_truthy(c:expires(BATCH), k[1])
      end
    end)

    it("redacts the secret an endpoint echoes back in its error", function()
      local c = secret_cred { tenant = "parrot", client_secret = "wrong-" .. SECRET }
      local ok, msg, err = token(c, BATCH)
      assert.is_nil(ok)
      assert.are.equal("invalid_client", err.code)
      assert.is_nil(msg:find(SECRET, 1, true), msg)
      assert.is_nil(msg:find("s3cret%2Dvalue", 1, true), msg)
      assert.truthy(msg:find("client_secret=<redacted>", 1, true), msg)
    end)

    it("redacts the secret an endpoint echoes as its request id (found by fuzz_token)", function()
      local c = secret_cred { tenant = "parrot-id", client_secret = "wrong-" .. SECRET }
      local ok, msg, err = token(c, BATCH)
      assert.is_nil(ok)
      assert.are.equal("invalid_client", err.code)
      assert.is_nil(msg:find(SECRET, 1, true), msg)
      assert.is_string(err.request_id)
      assert.is_nil(err.request_id:find(SECRET, 1, true), err.request_id)
      assert.truthy(err.request_id:find("<redacted>", 1, true), err.request_id)
    end)

    it("never gives the token answer to Lua, even through the request", function()
      local c = secret_cred()
      local req = assert(c:start(http, BATCH))
      while not req:done() do http:poll(0.5) end
      local status, _, body = req:result()
      assert.are.equal(200, status)
      assert.are.equal("", body)
      assert(c:finish(BATCH, req))
    end)

    it("maps an Entra error to kind 'auth' with its code, never the secret", function()
      local c = secret_cred { client_secret = "wrong-" .. SECRET }
      local ok, msg, err = token(c, BATCH)
      assert.is_nil(ok)
      assert.are.equal("auth: client_secret credential: invalid_client: AADSTS7000215: "
                       .. "Invalid client secret provided", msg)
      assert.are.same({ kind = "auth", status = 401, code = "invalid_client",
                        request_id = "req-invalid_client", aadsts = "AADSTS7000215" }, err)
      assert.is_nil(msg:find(SECRET, 1, true))
    end)

    it("reports malformed and token-less answers", function()
      local cases = {
        { "broken-json", "auth: client_secret credential: malformed token response" },
        { "no-token", "auth: client_secret credential: token response has no access token" },
      }
      for _, c in ipairs(cases) do
        local ok, msg, err = token(secret_cred({ tenant = c[1] }), BATCH)
        assert.is_nil(ok)
        assert.are.equal(c[2], msg)
        assert.are.same({ kind = "auth", status = 200 }, err)
      end
    end)

    it("a closed port is a retryable transport failure", function()
      local port = tonumber(get("/_freeport"))
      local c = secret_cred { authority = "http://127.0.0.1:" .. port .. "/" }
      local ok, msg, err = token(c, BATCH)
      assert.is_nil(ok)
      assert.matches("^auth: client_secret credential: POST http://127%.0%.0%.1:" .. port .. "/"
                     .. TENANT:gsub("%-", "%%-") .. "/oauth2/v2%.0/token: .*Connection refused", msg)
      assert.are.same({ kind = "transport", curl_code = 7, retryable = true, sent = false }, err)
    end)

    it("validates the tenant and the authority before any request", function()
      local n = count()
      local ok, msg, err = core.token_credential { kind = "client_secret", tenant = "a/b", client_id = CLIENT,
                                                   client_secret = SECRET }
      assert.is_nil(ok)
      assert.matches("^token_credential: tenant", msg)
      assert.are.same({ kind = "validation", field = "tenant" }, err)
      ok, msg, err = core.token_credential { kind = "client_secret", tenant = TENANT, client_id = CLIENT,
                                             client_secret = SECRET, authority = "http://login.example.com" }
      assert.is_nil(ok)
      assert.are.equal('token_credential: authority: http:// is only allowed to loopback addresses '
                       .. '(got host "login.example.com"); use https://', msg)
      assert.are.same({ kind = "validation", field = "authority" }, err)
      assert.is_nil(msg:find(SECRET, 1, true))
      assert.are.equal(n, count())
    end)

    it("never shows the secret or a token in tostring", function()
      local c = secret_cred()
      local tok = token(c, BATCH)
      local s = tostring(c)
      assert.are.equal("azbatch.TokenCredential(client_secret, tenant=" .. TENANT .. ", client="
                       .. CLIENT .. ")", s)
      assert.is_nil(s:find(SECRET, 1, true))
      assert.is_nil(s:find(tok, 1, true))
      assert.are.equal("client_secret", c:kind())
    end)
  end)

  describe("workload", function()
    it("reads the federated token file fresh for every request", function()
      local file = tmp .. "/federated"
      write(file, "eyJfirst.assertion\n")
      local c = assert(core.token_credential { kind = "workload", tenant = TENANT, client_id = CLIENT,
                                               token_file = file, authority = srv.url })
      assert.matches("^tok%-", (token(c, BATCH)))
      assert.are.equal("grant_type=client_credentials&client_id=" .. CLIENT
                       .. "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                       .. "&client_assertion=eyJfirst.assertion"
                       .. "&scope=https%3A%2F%2Fbatch.core.windows.net%2F%2F.default", last())
      write(file, "eyJsecond.assertion")
      fresh(c, BATCH)
      assert.matches("client_assertion=eyJsecond%.assertion&", last())
      assert.matches("^azbatch%.TokenCredential%(workload, tenant=", tostring(c))
    end)

    it("reports a missing, empty or rejected assertion without showing it", function()
      local file = tmp .. "/federated2"
      local c = assert(core.token_credential { kind = "workload", tenant = TENANT, client_id = CLIENT,
                                               token_file = file, authority = srv.url })
      local ok, msg, err = token(c, BATCH)
      assert.is_nil(ok)
      assert.are.equal("auth: workload credential: cannot read the federated token file '" .. file
                       .. "': No such file or directory", msg)
      assert.are.same({ kind = "auth" }, err)
      write(file, " \n")
      ok, msg = token(c, BATCH)
      assert.is_nil(ok)
      assert.matches("is empty$", msg)
      write(file, "not-a-jwt-assertion")
      ok, msg, err = token(c, BATCH)
      assert.is_nil(ok)
      assert.matches("^auth: workload credential: invalid_client: AADSTS700024", msg)
      assert.are.equal("invalid_client", err.code)
      assert.are.equal(401, err.status)
      assert.is_nil(msg:find("not-a-jwt", 1, true))
    end)
  end)

  describe("managed_identity", function()
    local endpoint
    setup(function() endpoint = srv.url .. "/metadata/identity/oauth2/token" end)

    it("asks IMDS for the resource with Metadata: true, and caches", function()
      local c = assert(core.token_credential { kind = "managed_identity", endpoint = endpoint })
      local now = os.time()
      local tok, exp = token(c, BATCH)
      assert.matches("^mi%-tok%-%d+%-system$", tok)
      assert.is_true(exp >= now + 86390 and exp <= now + 86410)
      assert.are.equal("/metadata/identity/oauth2/token?api-version=2018-02-01"
                       .. "&resource=https%3A%2F%2Fbatch.core.windows.net%2F", last())
      local n = count()
      assert.are.equal(tok, token(c, BATCH))
      assert.are.equal(n, count())
      assert.are.equal("azbatch.TokenCredential(managed_identity)", tostring(c))
    end)

    it("passes a user-assigned identity's client_id", function()
      local c = assert(core.token_credential { kind = "managed_identity", endpoint = endpoint,
                                               client_id = CLIENT })
      assert.are.equal("mi-tok-" .. (count() + 1) .. "-" .. CLIENT, token(c, BATCH))
      assert.matches("&client_id=" .. CLIENT:gsub("%-", "%%-") .. "$", last())
      assert.are.equal("azbatch.TokenCredential(managed_identity, client=" .. CLIENT .. ")", tostring(c))
    end)

    it("maps IMDS errors and non-JSON answers", function()
      local c = assert(core.token_credential { kind = "managed_identity", endpoint = endpoint })
      local ok, msg, err = token(c, "https://vault.azure.net/.default")
      assert.is_nil(ok)
      assert.matches("^auth: managed_identity credential: invalid_resource: AADSTS500011", msg)
      assert.are.same({ kind = "auth", status = 400, code = "invalid_resource", aadsts = "AADSTS500011" }, err)
      local c2 = assert(core.token_credential { kind = "managed_identity", endpoint = srv.url .. "/nope" })
      ok, msg, err = token(c2, BATCH)
      assert.is_nil(ok)
      assert.are.equal("auth: managed_identity credential: HTTP 404 from the token endpoint", msg)
      assert.are.same({ kind = "auth", status = 404 }, err)
    end)

    it("allows http:// only to loopback and the IMDS address", function()
      assert.truthy(core.token_credential { kind = "managed_identity" })   -- the default endpoint, never called
      local ok, msg, err = core.token_credential { kind = "managed_identity", endpoint = "http://imds.invalid/token" }
      assert.is_nil(ok)
      assert.matches("^token_credential: endpoint: http:// is only allowed", msg)
      assert.are.same({ kind = "validation", field = "endpoint" }, err)
      ok, msg, err = core.token_credential { kind = "managed_identity", endpoint = endpoint .. "?x=1" }
      assert.is_nil(ok)
      assert.matches("must not have a query", msg)
      assert.are.equal("endpoint", err.field)
      ok = core.token_credential { kind = "client_secret", tenant = TENANT, client_id = CLIENT,
                                   client_secret = SECRET, authority = "http://imds.invalid" }
      assert.is_nil(ok)   -- http:// to a name that is not loopback
    end)
  end)

  describe("azure_cli", function()
    local function fake_az(name, body)
      local path = tmp .. "/" .. name
      write(path, "#!/bin/sh\n" .. body, "+x")
      return path
    end

    it("runs az without a shell and reads accessToken and expires_on", function()
      local log = tmp .. "/az.log"
      local expires = os.time() + 3000       -- what az prints, however long it takes to run
      local az = fake_az("az-ok", ([[
echo "$@" >> %s
printf '{"accessToken": "cli-token", "expiresOn": "2099-01-01 00:00:00.000000", "expires_on": %d, '
printf '"subscription": "s", "tenant": "t", "tokenType": "Bearer"}\n'
]]):format(log, expires))
      local c = assert(core.token_credential { kind = "azure_cli", command = az })
      local tok, exp = token(c, BATCH)
      assert.are.equal("cli-token", tok)
      assert.are.equal(expires, exp)
      assert.are.equal(tok, token(c, BATCH))
      assert.are.equal("account get-access-token --output json --resource https://batch.core.windows.net/\n",
                       read(log))
      token(c, ARM)
      assert.matches("%-%-resource https://management%.azure%.com\n$", read(log))
      assert.are.equal("azbatch.TokenCredential(azure_cli)", tostring(c))
    end)

    it("passes --tenant and falls back to expiresOn (local time)", function()
      local log = tmp .. "/az2.log"
      local at = os.time() + 2000
      local az = fake_az("az-old", ([[
echo "$@" > %s
echo '{"accessToken": "old-cli", "expiresOn": "%s"}'
]]):format(log, os.date("%Y-%m-%d %H:%M:%S.000000", at)))
      local c = assert(core.token_credential { kind = "azure_cli", command = az, tenant = TENANT })
      local tok, exp = token(c, BATCH)
      assert.are.equal("old-cli", tok)
      assert.are.equal(at, exp)
      assert.matches("%-%-tenant " .. TENANT:gsub("%-", "%%-"), read(log))
    end)

    it("reports az's ERROR line, a missing program, bad output and a hang", function()
      local fail = fake_az("az-fail", [[
echo "WARNING: something" >&2
echo "ERROR: Please run 'az login' to setup account." >&2
exit 1
]])
      local ok, msg, err = token(core.token_credential({ kind = "azure_cli", command = fail }), BATCH)
      assert.is_nil(ok)
      assert.are.equal("auth: azure_cli credential: ERROR: Please run 'az login' to setup account", msg)
      assert.are.same({ kind = "auth", exit_code = 1 }, err)

      ok, msg, err = token(core.token_credential({ kind = "azure_cli", command = tmp .. "/missing" }), BATCH)
      assert.is_nil(ok)
      assert.are.equal("auth: azure_cli credential: cannot run '" .. tmp .. "/missing'",
                       msg:sub(1, #tmp + 49))
      -- posix_spawn reports ENOENT itself, or (under valgrind) the child exits 127
      assert.truthy(msg:find(": No such file or directory$") or msg:find(" %(exit status 127%)$"), msg)
      assert.are.equal("auth", err.kind)

      local junk = fake_az("az-junk", "echo 'not json'\n")
      ok, msg = token(core.token_credential({ kind = "azure_cli", command = junk }), BATCH)
      assert.is_nil(ok)
      assert.are.equal("auth: azure_cli credential: malformed token response", msg)

      local hang = fake_az("az-hang", "exec sleep 5\n")
      ok, msg = token(core.token_credential({ kind = "azure_cli", command = hang, timeout = 0.3 }), BATCH)
      assert.is_nil(ok)
      assert.matches("timed out after 0%.3 s$", msg)
    end)

    it("refuses a scope that is not a plain URL", function()
      local c = assert(core.token_credential { kind = "azure_cli", command = "/bin/false" })
      for _, s in ipairs { "--debug", "https://x y/.default", "a;b" } do
        local ok, msg, err = token(c, s)
        assert.is_nil(ok)
        assert.matches("^auth: azure_cli credential: scope must be", msg)
        assert.are.same({ kind = "validation", field = "scope" }, err)
      end
    end)
  end)

  describe("lifetime and misuse", function()
    it("raises on bad options", function()
      local cases = {
        { { kind = "password" }, "invalid option 'password'" },
        { { kind = "client_secret", client_id = CLIENT, client_secret = SECRET }, "'tenant' is required" },
        { { kind = "client_secret", tenant = TENANT, client_id = CLIENT, client_secret = SECRET, token_file = "x" },
          "option 'token_file' does not apply to kind 'client_secret'" },
        { { kind = "managed_identity", endpoint = 3 }, "option 'endpoint': string expected" },
        { { kind = "azure_cli", refresh_before = -1 }, "refresh_before" },
        { { kind = "azure_cli", [1] = "x" }, "option names are strings" },
        { { kind = "azure_cli", comand = "x" }, "unknown option 'comand' (did you mean 'command'?)" },
      }
      for _, c in ipairs(cases) do
        assert.error_matches(function() core.token_credential(c[1]) end, c[2], 1, true)
      end
      assert.error_matches(function() core.token_credential() end, "table expected")
      local c = secret_cred()
      assert.error_matches(function() c:expires() end, "bad argument #1 to 'expires'")
      assert.error_matches(function() c:start(http, "") end, "scope is empty")
      assert.error_matches(function() c:start({}, BATCH) end, "azbatch.Http expected")
      assert.error_matches(function() c:run(BATCH) end, "only the azure_cli credential runs a program")
      local cli = assert(core.token_credential { kind = "azure_cli", command = "/bin/false" })
      assert.error_matches(function() cli:start(http, BATCH) end, "use cred:run")
      assert.error_matches(function() c:finish(BATCH, {}) end, "azbatch.Request expected")
      local inflight = assert(c:start(http, ARM))
      assert.error_matches(function() c:finish(ARM, inflight) end, "request still in flight")
      inflight:cancel()
    end)

    it("close, __close and __gc share one idempotent release", function()
      local c = secret_cred()
      token(c, BATCH)
      assert.is_true(c:close())
      assert.is_true(c:close())
      assert.are.equal("azbatch.TokenCredential (closed)", tostring(c))
      assert.error_matches(function() token(c, BATCH) end, "attempt to use a closed azbatch.TokenCredential")
      assert.error_matches(function() c:kind() end, "closed")
      local held
      do
        local c2 <close> = secret_cred()
        held = c2
        token(c2, BATCH)
      end
      assert.are.equal("azbatch.TokenCredential (closed)", tostring(held))
      token(secret_cred(), ARM)
      collectgarbage()
      collectgarbage()
    end)
  end)
end)
