-- The credential layer (lua/azbatch/credential.lua): the default chain
-- and its order, from_env, one token request for many callers, and the
-- token() helper; against tests/unit/support/loopback_server.py.
local credential = require "azbatch.credential"
local parallel = require "azbatch.parallel"
local core = require "azbatch.core"
local server = dofile("tests/unit/support/server.lua")

local BATCH = credential.BATCH_SCOPE
local SECRET = "s3cret-value-never-logged"
local TENANT = "00000000-0000-0000-0000-0000000000aa"
local CLIENT = "00000000-0000-0000-0000-0000000000c1"

describe("azbatch.credential", function()
  local srv, http
  setup(function()
    srv = server.start()
    http = core.http()
  end)
  teardown(function()
    http:close()
    server.stop(srv)
  end)

  local function count()
    local _, _, body = assert(http:request { method = "GET", url = srv.url .. "/_count" })
    return tonumber(body)
  end

  local function env(t)
    local e = { AZURE_TENANT_ID = TENANT, AZURE_CLIENT_ID = CLIENT, AZURE_AUTHORITY_HOST = srv.url }
    for k, v in pairs(t or {}) do e[k] = v end
    return e
  end

  it("default() chains client secret, workload, managed identity and az in that order", function()
    local c = credential.default { env = env { AZURE_CLIENT_SECRET = SECRET, AZURE_FEDERATED_TOKEN_FILE = "/x" },
      managed_identity_endpoint = srv.url .. "/metadata/identity/oauth2/token", azure_cli_command = "/bin/false" }
    assert.are.equal("azbatch.ChainedCredential(client_secret, workload, managed_identity, azure_cli)", tostring(c))
    assert.are.equal("chain", c:kind())
    assert.is_nil(tostring(c):find(SECRET, 1, true))
  end)

  it("leaves out sources without their settings, and those turned off", function()
    local c = credential.default { env = {}, managed_identity = false, azure_cli = false }
    assert.are.equal("azbatch.ChainedCredential()", tostring(c))
    local ok, msg, err = credential.ensure(c, BATCH, http)
    assert.is_nil(ok)
    assert.are.equal("auth: no credential could get a token: no credential source is configured", msg)
    assert.are.equal("auth", err.kind)
  end)

  it("keeps the first source that works, and never switches", function()
    local c = credential.default { env = env(), azure_cli_command = "/bin/false",
      managed_identity_endpoint = srv.url .. "/metadata/identity/oauth2/token" }
    local held = assert(credential.ensure(c, BATCH, http))
    assert.are.equal("managed_identity", held:kind())
    assert.are.equal("managed_identity", c:kind())
    assert.truthy(held:expires(BATCH))
    c:clear()
    assert.are.equal("chain", c:kind())
  end)

  it("says why each source failed, without secrets", function()
    local c = credential.default { env = env { AZURE_CLIENT_SECRET = "wrong-" .. SECRET },
      managed_identity_endpoint = srv.url .. "/nothing-here", azure_cli_command = "/bin/false" }
    local ok, msg, err = credential.ensure(c, BATCH, http)
    assert.is_nil(ok)
    assert.matches("^auth: no credential could get a token: auth: client_secret credential: invalid_client", msg)
    assert.matches("managed_identity credential: HTTP 404", msg)
    assert.matches("azure_cli credential: az exited with status 1", msg)
    assert.are.equal(3, #err.errors)
    assert.is_nil(msg:find(SECRET, 1, true))
  end)

  it("from_env prefers Shared Key when the az variables are set", function()
    local sk = assert(credential.from_env { env = { AZURE_BATCH_ACCOUNT = "acct",
      AZURE_BATCH_ACCESS_KEY = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=" } })
    assert.is_true(credential.is_shared_key(sk))
    local chain = credential.from_env { env = {}, managed_identity = false, azure_cli = false }
    assert.is_false(credential.is_shared_key(chain))
    assert.are.equal("azbatch.ChainedCredential()", tostring(chain))
  end)

  it("one token request serves every coroutine that needs it at once", function()
    local c = assert(credential.client_secret { tenant = TENANT, client_id = CLIENT, client_secret = SECRET,
      authority = srv.url })
    local before = count()
    local fns = {}
    for i = 1, 8 do fns[i] = function() return assert(credential.ensure(c, BATCH, http)) == c end end
    local r = parallel.run(fns)
    for i = 1, 8 do assert.is_true(r[i][1]) end
    assert.are.equal(before + 1, count())
  end)

  it("token() gives the token itself, on the shared transport or the one given", function()
    local c = assert(credential.client_secret { tenant = TENANT, client_id = CLIENT, client_secret = SECRET,
      authority = srv.url })
    local tok, exp = assert(credential.token(c, BATCH))
    assert.matches("^tok%-%d+%-", tok)
    assert.is_true(exp > os.time())
    assert.are.equal(tok, (credential.token(c, BATCH, { http = http })))
  end)

  it("raises on misuse", function()
    assert.error_matches(function() credential.default { evn = {} } end,
                         "unknown option 'evn' (did you mean 'env'?)", 1, true)
    assert.error_matches(function() credential.from_env { azure_clii = false } end, "unknown option 'azure_clii'")
    assert.error_matches(function() credential.chain { {} } end, "item 1 is not an Entra ID credential")
    assert.error_matches(function() credential.client_secret "x" end, "table expected")
    assert.error_matches(function() credential.token(credential.chain {}, "") end, "non-empty string expected", 1, true)
    assert.error_matches(function() credential.token(credential.chain {}, BATCH, { htp = 1 }) end,
                         "unknown option 'htp'")
    assert.error_matches(function() credential.ensure({}, BATCH, http) end, "bad credential")
  end)
end)
