--- Credentials: Shared Key and Microsoft Entra ID, and the default chain.
-- The token work (requests, cache, refresh) is in C; the order in which
-- sources are tried is policy, so it is here.
local core = require "azbatch.core"

local M = {}

M.BATCH_SCOPE = "https://batch.core.windows.net//.default"   -- the double slash is right
M.ARM_SCOPE = "https://management.azure.com/.default"

local function getenv(env, name)
  local v
  if env then v = env[name] else v = os.getenv(name) end
  if v == "" then return nil end
  return v
end

--- Shared Key: account name and base64 key (AZURE_BATCH_ACCOUNT / AZURE_BATCH_ACCESS_KEY).
---@return userdata|nil credential, string? message, table? err
function M.shared_key(account, key)
  return core.shared_key(account, key)
end

local function token_kind(kind)
  return function(opts)
    local o = { kind = kind }
    for k, v in pairs(opts or {}) do o[k] = v end
    return core.token_credential(o)
  end
end

--- Service principal with a client secret.
M.client_secret = token_kind("client_secret")
--- Workload identity: a federated token file exchanged for an Entra ID token.
M.workload = token_kind("workload")
--- Managed identity through the instance metadata endpoint.
M.managed_identity = token_kind("managed_identity")
--- The Azure CLI's cached login (az account get-access-token).
M.azure_cli = token_kind("azure_cli")

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
function Chain:token(scope)
  if self.chosen then return self.chosen:token(scope) end
  local reasons = {}
  for _, source in ipairs(self.sources) do
    local token, expires = source:token(scope)
    if token then
      self.chosen = source
      return token, expires
    end
    reasons[#reasons + 1] = expires     -- the message (never holds secrets)
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
  return setmetatable({ sources = sources }, Chain)
end

--- Microsoft Entra ID from the environment, in the order DefaultAzureCredential
-- uses: client secret, workload identity, managed identity, Azure CLI.
-- opts.env replaces os.getenv (a table), opts.managed_identity_endpoint and
-- opts.azure_cli_command override the endpoints (for tests and emulators).
function M.default(opts)
  opts = opts or {}
  local env = opts.env
  local sources = {}
  local tenant, client = getenv(env, "AZURE_TENANT_ID"), getenv(env, "AZURE_CLIENT_ID")
  local authority = getenv(env, "AZURE_AUTHORITY_HOST")
  local secret = getenv(env, "AZURE_CLIENT_SECRET")
  if tenant and client and secret then
    sources[#sources + 1] = assert(M.client_secret { tenant = tenant, client_id = client,
      client_secret = secret, authority = authority })
  end
  local token_file = getenv(env, "AZURE_FEDERATED_TOKEN_FILE")
  if tenant and client and token_file then
    sources[#sources + 1] = assert(M.workload { tenant = tenant, client_id = client,
      token_file = token_file, authority = authority })
  end
  if opts.managed_identity ~= false then
    sources[#sources + 1] = assert(M.managed_identity { client_id = client,
      endpoint = opts.managed_identity_endpoint or getenv(env, "AZBATCH_IMDS_ENDPOINT"),
      connect_timeout = opts.managed_identity_connect_timeout or 1, timeout = 5 })
  end
  if opts.azure_cli ~= false then
    sources[#sources + 1] = assert(M.azure_cli { command = opts.azure_cli_command })
  end
  return M.chain(sources)
end

--- Shared Key when AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY are set
-- (the az CLI's names), Microsoft Entra ID (default chain) otherwise.
function M.from_env(opts)
  opts = opts or {}
  local account = getenv(opts.env, "AZURE_BATCH_ACCOUNT")
  local key = getenv(opts.env, "AZURE_BATCH_ACCESS_KEY")
  if account and key then return M.shared_key(account, key) end
  return M.default(opts)
end

--- Is this a Shared Key credential?
function M.is_shared_key(cred)
  local mt = getmetatable(cred)
  return type(mt) == "table" and mt.__name == "azbatch.SharedKey"
end

return M
