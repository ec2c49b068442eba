--- Credentials: Shared Key and Microsoft Entra ID, and the default chain.
-- The token work (building requests, reading answers, the cache) is in C
-- and sans-I/O; the requests go over a transport like every other one, so
-- a token fetch yields inside azbatch.parallel. The order in which sources
-- are tried is policy, so it is here.
local core = require "azbatch.core"
local check = require "azbatch.check"
local parallel = require "azbatch.parallel"
local transport = require "azbatch.transport"

local M = {}

M.BATCH_SCOPE = "https://batch.core.windows.net//.default"   -- the double slash is right
M.ARM_SCOPE = "https://management.azure.com/.default"

--- An environment variable, from 'env' (a table standing in for the
-- environment, in tests) or the process; an empty value counts as unset.
local function getenv(env, name)
  local v
  if env then v = env[name] else v = os.getenv(name) end
  if v == "" then return nil end
  return v
end
M.getenv = getenv

--- Shared Key: account name and base64 key (AZURE_BATCH_ACCOUNT / AZURE_BATCH_ACCESS_KEY).
---@return userdata|nil credential, string? message, table? err
function M.shared_key(account, key)
  return core.shared_key(account, key)
end

local function token_kind(kind, fname)
  return function(opts)
    if opts ~= nil and type(opts) ~= "table" then
      error(("bad argument #1 to '%s' (table expected, got %s)"):format(fname, type(opts)), 2)
    end
    local o = { kind = kind }
    for k, v in pairs(opts or {}) do o[k] = v end
    return core.token_credential(o)
  end
end

--- Service principal with a client secret.
M.client_secret = token_kind("client_secret", "client_secret")
--- Workload identity: a federated token file exchanged for an Entra ID token.
M.workload = token_kind("workload", "workload")
--- Managed identity through the instance metadata endpoint.
M.managed_identity = token_kind("managed_identity", "managed_identity")
--- The Azure CLI's cached login (az account get-access-token).
M.azure_cli = token_kind("azure_cli", "azure_cli")

--- Is this a Shared Key credential?
function M.is_shared_key(cred)
  local mt = getmetatable(cred)
  return type(mt) == "table" and mt.__name == "azbatch.SharedKey"
end

local function is_token(cred)
  local mt = getmetatable(cred)
  return type(mt) == "table" and mt.__name == "azbatch.TokenCredential"
end

-- Token requests in flight, per credential and scope: callers that need
-- the same token at once wait on one request instead of each sending one.
local fetching = setmetatable({}, { __mode = "k" })

-- One C credential: a fresh token in its cache, fetched over 'http' when
-- needed. Returns the credential, or fail.
local function fetch(c, scope, http)
  if c:expires(scope) then return c end
  local ok, why, err
  if c:kind() == "azure_cli" then
    ok, why, err = c:run(scope)
    if not ok then return nil, why, err end
    return c
  end
  local per = fetching[c]
  if not per then
    per = {}
    fetching[c] = per
  end
  local f = per[scope]
  if not f then
    local req
    req, why, err = c:start(http, scope)
    if not req then return nil, why, err end
    f = { req = req, http = http }
    per[scope] = f
  end
  parallel.await(f.http, f.req)
  if not f.result then                -- whoever wakes first reads the answer
    f.result = table.pack(c:finish(scope, f.req))
    per[scope] = nil
  end
  ok, why, err = table.unpack(f.result, 1, 3)
  if not ok then return nil, why, err end
  return c
end

local Chain = {}
Chain.__index = Chain
Chain.__name = "azbatch.ChainedCredential"

function Chain:kind() return self.chosen and self.chosen:kind() or "chain" end

function Chain:__tostring()
  local names = {}
  for _, c in ipairs(self.sources) do names[#names + 1] = c:kind() end
  return ("azbatch.ChainedCredential(%s)"):format(table.concat(names, ", "))
end

--- The first source that yields a token is kept for later calls, as
-- DefaultAzureCredential does: no surprise switch of identity mid-script.
function Chain:ensure(scope, http)
  if self.chosen then return fetch(self.chosen, scope, http) end
  local reasons = {}
  for _, source in ipairs(self.sources) do
    local c, why = fetch(source, scope, http)
    if c then
      self.chosen = source
      return c
    end
    reasons[#reasons + 1] = why        -- the message (never holds secrets)
  end
  if #reasons == 0 then reasons[1] = "no credential source is configured" end
  return nil, "auth: no credential could get a token: " .. table.concat(reasons, "; "),
    { kind = "auth", errors = reasons }
end

function Chain:clear()
  for _, c in ipairs(self.sources) do c:clear() end
  self.chosen = nil
end

--- A chain of credentials tried in order.
function M.chain(sources)
  if type(sources) ~= "table" then
    error(("bad argument #1 to 'chain' (table expected, got %s)"):format(type(sources)), 2)
  end
  for i, s in ipairs(sources) do
    if not is_token(s) then
      error(("bad argument #1 to 'chain' (item %d is not an Entra ID credential)"):format(i), 2)
    end
  end
  return setmetatable({ sources = sources }, Chain)
end

--- Make sure 'cred' (a token credential or a chain) holds a fresh token
-- for 'scope', fetching it over 'http'. Returns the C credential that
-- holds it (the transport writes the header from it), or fail.
function M.ensure(cred, scope, http)
  if getmetatable(cred) == Chain then return cred:ensure(scope, http) end
  if is_token(cred) then return fetch(cred, scope, http) end
  error("bad credential: an Entra ID credential or a chain expected", 2)
end

local TOKEN_OPTS = check.set { "http" }

--- A token for callers that need the token itself (another tool, another
-- API): token, expires_on, or fail. opts.http: the transport to fetch on.
function M.token(cred, scope, opts)
  if type(scope) ~= "string" or scope == "" then
    error(("bad argument #2 to 'token' (non-empty string expected, got %s)"):format(type(scope)), 2)
  end
  opts = check.options(opts, 3, "token", TOKEN_OPTS)
  local c, why, err = M.ensure(cred, scope, opts.http or transport.shared())
  if not c then return nil, why, err end
  return c:peek(scope)
end

local DEFAULT_OPTS = check.set { "env", "managed_identity", "managed_identity_endpoint",
  "managed_identity_connect_timeout", "azure_cli", "azure_cli_command" }

--- Microsoft Entra ID from the environment, in the order DefaultAzureCredential
-- uses: client secret, workload identity, managed identity, Azure CLI.
-- opts.env replaces os.getenv (a table), opts.managed_identity_endpoint and
-- opts.azure_cli_command override the endpoints (for tests and emulators);
-- managed_identity = false and azure_cli = false leave those out.
function M.default(opts)
  opts = check.options(opts, 1, "default", DEFAULT_OPTS)
  local env = opts.env
  local sources = {}
  local tenant, client = getenv(env, "AZURE_TENANT_ID"), getenv(env, "AZURE_CLIENT_ID")
  local authority = getenv(env, "AZURE_AUTHORITY_HOST")
  local secret = getenv(env, "AZURE_CLIENT_SECRET")
  local function add(c, why)
    if not c then error("credential.default: " .. why, 3) end
    sources[#sources + 1] = c
  end
  if tenant and client and secret then
    add(M.client_secret { tenant = tenant, client_id = client, client_secret = secret, authority = authority })
  end
  local token_file = getenv(env, "AZURE_FEDERATED_TOKEN_FILE")
  if tenant and client and token_file then
    add(M.workload { tenant = tenant, client_id = client, token_file = token_file, authority = authority })
  end
  if opts.managed_identity ~= false then
    add(M.managed_identity { client_id = client,
      endpoint = opts.managed_identity_endpoint or getenv(env, "AZBATCH_IMDS_ENDPOINT"),
      connect_timeout = opts.managed_identity_connect_timeout or 1, timeout = 5 })
  end
  if opts.azure_cli ~= false then
    add(M.azure_cli { command = opts.azure_cli_command })
  end
  return M.chain(sources)
end

--- Shared Key when AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY are set
-- (the az CLI's names), Microsoft Entra ID (default chain) otherwise.
function M.from_env(opts)
  opts = check.options(opts, 1, "from_env", DEFAULT_OPTS)
  local account = getenv(opts.env, "AZURE_BATCH_ACCOUNT")
  local key = getenv(opts.env, "AZURE_BATCH_ACCESS_KEY")
  if account and key then return M.shared_key(account, key) end
  return M.default(opts)
end

return M
