-- Shared Key and Microsoft Entra ID against the emulator, and the rule that
-- gallery-image pools need Entra ID.
local azbatch = require "azbatch"
local helper = test_helper

local GALLERY = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev"
  .. "/providers/Microsoft.Compute/galleries/devgallery/images/ubuntu2204/versions/1.0.0"
local WRONG_KEY = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="

local function gallery_spec(id)
  return { id = id, vmSize = "Standard_D2s_v3", targetDedicatedNodes = 1,
    virtualMachineConfiguration = { imageReference = GALLERY, nodeAgentSKUId = "batch.node.ubuntu 22.04" } }
end

describe("auth against the emulator", function()
  local emu
  local messages = {}          -- every message and tostring seen, checked for secrets at the end
  local function seen(...)
    for i = 1, select("#", ...) do messages[#messages + 1] = tostring((select(i, ...))) end
    return ...
  end

  setup(function() emu = helper.emulator("--time-scale 500") end)
  teardown(function() if emu then emu.stop() end end)

  it("rejects a wrong Shared Key with AuthenticationFailed", function()
    local cred = assert(azbatch.credential.shared_key(helper.DEV_ACCOUNT, WRONG_KEY))
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = cred })
    local ok, msg, err = seen(batch:get_pool("anything"))
    assert.is_nil(ok)
    assert.matches("^AuthenticationFailed: ", msg)
    assert.same({ "api", 403, "AuthenticationFailed" }, { err.kind, err.status, err.code })
    seen(tostring(cred), tostring(batch))
  end)

  it("refuses a gallery pool over Shared Key locally, before sending", function()
    local cred = assert(azbatch.credential.shared_key(helper.DEV_ACCOUNT, helper.DEV_KEY))
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = cred })
    local res, msg, err = seen(batch:create_pool(gallery_spec("sk-gallery")))
    assert.is_nil(res)
    assert.equal("auth", err.kind)
    assert.equal("pool.virtualMachineConfiguration.imageReference.virtualMachineImageId", err.field)
    assert.matches("SharedKey is not allowed when external resources of type Compute are linked", msg, 1, true)
    assert.matches("Entra ID", msg, 1, true)
    assert.is_false(batch:pool_exists("sk-gallery"))
  end)

  it("creates a gallery pool with a client-secret credential", function()
    local cred = assert(azbatch.credential.client_secret { tenant = helper.DEV_TENANT,
      client_id = helper.DEV_CLIENT, client_secret = helper.DEV_SECRET, authority = emu.url })
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = cred })
    local res, why = seen(batch:create_pool(gallery_spec("entra-gallery")))
    assert.is_table(res, why)
    local pool = assert(batch:get_pool("entra-gallery"))
    assert.equal(GALLERY, pool.virtualMachineConfiguration.imageReference.virtualMachineImageId)
    seen(tostring(cred), tostring(batch))
  end)

  it("reports a bad client secret as kind auth, without the secret", function()
    local cred = assert(azbatch.credential.client_secret { tenant = helper.DEV_TENANT,
      client_id = helper.DEV_CLIENT, client_secret = "not-the-secret-s3cr3t", authority = emu.url })
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = cred })
    local ok, msg, err = seen(batch:get_pool("entra-gallery"))
    assert.is_nil(ok)
    assert.equal("auth", err.kind)
    assert.is_string(msg)
    assert.is_nil(msg:find("not-the-secret-s3cr3t", 1, true))
    seen(tostring(cred))
  end)

  it("gets tokens from the managed-identity endpoint", function()
    local cred = assert(azbatch.credential.managed_identity {
      endpoint = emu.url .. "/metadata/identity/oauth2/token" })
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = cred })
    assert.is_true(batch:pool_exists("entra-gallery"))
  end)

  it("chains credentials from the environment (client secret first)", function()
    local cred = azbatch.credential.default { env = { AZURE_TENANT_ID = helper.DEV_TENANT,
      AZURE_CLIENT_ID = helper.DEV_CLIENT, AZURE_CLIENT_SECRET = helper.DEV_SECRET,
      AZURE_AUTHORITY_HOST = emu.url }, managed_identity = false, azure_cli = false }
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = cred })
    assert.is_true(batch:pool_exists("entra-gallery"))
    assert.equal("client_secret", cred:kind())
    seen(tostring(cred))
  end)

  it("fails a chain with nothing configured as kind auth", function()
    local cred = azbatch.credential.default { env = {}, managed_identity = false, azure_cli = false }
    local batch <close> = assert(azbatch.client { endpoint = emu.url, credential = cred })
    local ok, msg, err = batch:get_pool("x")
    assert.is_nil(ok)
    assert.equal("auth", err.kind)
    assert.matches("no credential", msg)
  end)

  it("never shows a key, secret or token in any message or tostring", function()
    local banned = { helper.DEV_KEY, WRONG_KEY, helper.DEV_SECRET, "not-the-secret-s3cr3t" }
    for _, m in ipairs(messages) do
      for _, secret in ipairs(banned) do
        assert.is_nil(m:find(secret, 1, true), "secret found in: " .. m)
      end
      assert.is_nil(m:find("Bearer ", 1, true), "token header found in: " .. m)
      assert.is_nil(m:find("SharedKey " .. helper.DEV_ACCOUNT .. ":", 1, true), "signature found in: " .. m)
    end
    assert.is_true(#messages >= 8)
  end)
end)

describe("secrets on the verbose and process paths", function()
  local emu
  setup(function() emu = helper.emulator("--time-scale 100") end)
  teardown(function() if emu then emu.stop() end end)

  it("verbose output shows neither keys, secrets, tokens nor signatures", function()
    local script = helper.tempfile(([[
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local azbatch = require "azbatch"
local sk = assert(azbatch.client { endpoint = %q, verbose = true,
  credential = assert(azbatch.credential.shared_key(%q, %q)) })
assert(sk:pool_exists("x") == false)
local entra = assert(azbatch.client { endpoint = %q, verbose = true,
  credential = assert(azbatch.credential.client_secret { tenant = %q, client_id = %q, client_secret = %q,
    authority = %q }) })
assert(entra:pool_exists("x") == false)
print(assert(azbatch.credential.token(entra.credential, "https://batch.core.windows.net//.default")))
]]):format(emu.url, helper.DEV_ACCOUNT, helper.DEV_KEY, emu.url, helper.DEV_TENANT, helper.DEV_CLIENT,
      helper.DEV_SECRET, emu.url))
    local status, out, err = helper.run("LD_PRELOAD= lua5.4 " .. helper.shq(script))
    os.remove(script)
    assert.equal(0, status, err)
    local token = out:match("^(%S+)")
    assert.truthy(token and #token > 20, out)
    assert.truthy(err:find("* azbatch: ", 1, true), "no verbose output: " .. err)
    for _, secret in ipairs { helper.DEV_KEY, helper.DEV_SECRET, token, "SharedKey " .. helper.DEV_ACCOUNT .. ":",
                              "Bearer ", "client_secret=" } do
      assert.is_nil(err:find(secret, 1, true), "secret in verbose output: " .. secret)
    end
  end)
end)

describe("token endpoint failures", function()
  it("keep kind auth, with the transport cause, after retrying", function()
    local cred = assert(azbatch.credential.client_secret { tenant = helper.DEV_TENANT,
      client_id = helper.DEV_CLIENT, client_secret = helper.DEV_SECRET, authority = "http://127.0.0.1:9" })
    local batch <close> = assert(azbatch.client { endpoint = "http://127.0.0.1:9", credential = cred,
      retry = { max_attempts = 2, base_delay = 0.01 } })
    local ok, msg, err = batch:get_pool("p")
    assert.is_nil(ok)
    assert.equal("auth", err.kind)
    assert.equal("transport", err.cause)
    assert.is_true(err.retryable)
    assert.equal(2, err.attempts)
    assert.is_string(msg)
  end)
end)
