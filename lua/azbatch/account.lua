--- Finding the Batch account's ARM resource (its location, allocation
-- mode, quotas and subscription): from its resource id when given, or by
-- name among the subscriptions the credential can see. What was found is
-- kept for the life of the process.
local core = require "azbatch.core"
local check = require "azbatch.check"
local collect = require("azbatch.client").collect
local getenv = require("azbatch.credential").getenv

local M = {}

local cache = {}       -- "<arm endpoint>|<id or name>" -> account resource

local FIND_OPTS = check.set { "resource_id", "name", "host", "subscription", "env" }

local function not_found(what, why)
  return nil, ("account: %s%s"):format(what, why and (" (" .. why .. ")") or ""),
    { kind = "api", code = "BatchAccountNotFound" }
end

--- account.find(arm, opts) -> account resource | fail
-- opts: resource_id (default AZURE_BATCH_ACCOUNT_RESOURCE_ID), name (default
-- AZURE_BATCH_ACCOUNT), host (the Batch endpoint's host, to tell accounts of
-- one name apart and to name the account when nothing else does),
-- subscription (searched first; default AZURE_SUBSCRIPTION_ID), env (a
-- table replacing os.getenv).
function M.find(arm, opts)
  opts = check.options(opts, 2, "find", FIND_OPTS)
  local env = opts.env
  local id = opts.resource_id or getenv(env, "AZURE_BATCH_ACCOUNT_RESOURCE_ID")
  local host = opts.host and opts.host:lower()
  local name = opts.name or getenv(env, "AZURE_BATCH_ACCOUNT")
    or (host and host:match("^([a-z0-9][a-z0-9-]*)%.[a-z0-9-]+%.batch%.azure%.com$"))
  local key = arm.endpoint .. "|" .. tostring(id or name):lower()
  if cache[key] then return cache[key] end
  if id then
    local acct, why, err = arm:batch_account(id)
    if not acct then return nil, why, err end
    cache[key] = acct
    return acct
  end
  if not name then
    return nil, "account: the Batch account's name is needed to find it (set AZURE_BATCH_ACCOUNT, or its "
      .. "resource id in AZURE_BATCH_ACCOUNT_RESOURCE_ID)", { kind = "validation", field = "account.name" }
  end
  -- the subscription named first, then every one the credential sees
  local subs, seen = {}, {}
  local first = opts.subscription or getenv(env, "AZURE_SUBSCRIPTION_ID")
  if first then subs[1], seen[first:lower()] = first, true end
  local list, why, err = collect(arm:subscriptions())
  if not list then
    if #subs == 0 then return nil, why, err end
    list = {}
  end
  for _, s in ipairs(list) do
    local sid = type(s) == "table" and s.subscriptionId
    if type(sid) == "string" and not seen[sid:lower()] then
      subs[#subs + 1], seen[sid:lower()] = sid, true
    end
  end
  local matches, problems = {}, {}
  for _, sid in ipairs(subs) do
    local accounts, awhy = collect(arm:batch_accounts(sid))
    if not accounts then
      problems[#problems + 1] = awhy
    else
      for _, a in ipairs(accounts) do
        if type(a) == "table" and type(a.name) == "string" and a.name:lower() == name:lower() then
          matches[#matches + 1] = a
        end
      end
    end
  end
  if #matches > 1 and host then            -- one name in two subscriptions: the endpoint tells
    local by_host = {}
    for _, a in ipairs(matches) do
      local ep = type(a.properties) == "table" and a.properties.accountEndpoint
      if type(ep) == "string" and ep:lower():gsub("^https?://", ""):gsub("/$", "") == host then
        by_host[#by_host + 1] = a
      end
    end
    matches = by_host
  end
  if #matches == 0 then
    return not_found(("no Batch account named %q in the %d subscription(s) this credential can see")
      :format(core.sanitize(name, 64), #subs), problems[1])
  end
  if #matches > 1 then
    return nil, ("account: %d Batch accounts are named %q; give its resource id (AZURE_BATCH_ACCOUNT_RESOURCE_ID)")
      :format(#matches, core.sanitize(name, 64)), { kind = "validation", field = "account.resource_id" }
  end
  cache[key] = matches[1]
  return matches[1]
end

--- Forget what was found (tests, or after an account was moved).
function M.forget()
  cache = {}
end

--- The subscription id of an ARM resource id, or nil.
function M.subscription_of(id)
  return type(id) == "string" and id:match("^/[Ss][Uu][Bb][Ss][Cc][Rr][Ii][Pp][Tt][Ii][Oo][Nn][Ss]/([^/]+)") or nil
end

return M
