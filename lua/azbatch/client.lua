--- The Batch client: builds and sends requests over the one transport,
-- retries what is worth retrying, and turns responses into tables or fail
-- values. The request itself (URL parsed once, headers, Content-Length,
-- signature) is built in C inside the call that sends it.
local core = require "azbatch.core"
local json = require "azbatch.json"
local check = require "azbatch.check"
local retry = require "azbatch.retry"
local parallel = require "azbatch.parallel"
local credential = require "azbatch.credential"
local transport = require "azbatch.transport"

local M = {}

-- The parts of a request that differ between the services a client talks
-- to: the Batch data plane and Azure Resource Manager (preflight, images).
local BATCH = {
  name = "azbatch.Client",
  content_type = "application/json; odata=minimalmetadata",
  next_link = "odata.nextLink",
  headers = function(crid)
    return { ["ocp-date"] = core.rfc1123(), ["client-request-id"] = crid, ["return-client-request-id"] = "true",
      ["Accept"] = "application/json" }
  end,
}
local ARM = {
  name = "azbatch.Arm",
  content_type = "application/json",
  next_link = "nextLink",
  headers = function(crid)
    return { ["x-ms-client-request-id"] = crid, ["Accept"] = "application/json" }
  end,
}
M.ARM_ENDPOINT = "https://management.azure.com"

local Client = {}
Client.__index = Client
Client.__name = "azbatch.Client"
M.Client = Client

-- The ARM client: the same request machinery, its own methods (arm.lua).
local Arm = {}
Arm.__index = Arm
Arm.__name = "azbatch.Arm"
M.Arm = Arm

-- The methods other modules add, each module loaded on a method's first use:
-- a script or CLI call pays only for what it runs (lazy_load_spec checks
-- these lists against the modules). azbatch.pool's are always loaded.
M.LAZY_METHODS = {
  Client = {
    wait_pool = "azbatch.wait", wait_pool_deleted = "azbatch.wait",
    arm_client = "azbatch.preflight", preflight = "azbatch.preflight", choose_node_agent = "azbatch.preflight",
    image_from_vhd = "azbatch.images", publish_image = "azbatch.images", replicate_image = "azbatch.images",
    pool_image = "azbatch.audit", pool_images = "azbatch.audit",
    list_jobs = "azbatch.jobs", get_job = "azbatch.jobs", patch_job = "azbatch.jobs",
    disable_job = "azbatch.jobs", enable_job = "azbatch.jobs", hand_over_jobs = "azbatch.jobs",
  },
  Arm = {
    get = "azbatch.arm", list = "azbatch.arm", put = "azbatch.arm", patch = "azbatch.arm",
    subscriptions = "azbatch.arm", batch_accounts = "azbatch.arm", batch_account = "azbatch.arm",
    gallery_image = "azbatch.arm", gallery_version = "azbatch.arm", gallery_versions = "azbatch.arm",
    managed_image = "azbatch.arm", storage_account = "azbatch.arm", storage_accounts = "azbatch.arm",
    vm_sizes = "azbatch.arm",
  },
}

local function lazy_method(class, lazy, name)
  local mod = lazy[name]
  if mod then
    require(mod)
    return rawget(class, name)
  end
end
setmetatable(Client, { __index = function(_, name) return lazy_method(Client, M.LAZY_METHODS.Client, name) end })
setmetatable(Arm, { __index = function(_, name)
  local f = lazy_method(Arm, M.LAZY_METHODS.Arm, name)
  if f ~= nil then return f end
  return Client[name]
end })

local OPTIONS = check.set { "endpoint", "credential", "account", "timeout", "connect_timeout", "ca_file",
  "ca_path", "retry", "http", "scope", "user_agent", "max_connections", "max_response", "verbose",
  "api_version" }

-- The first label of https://{account}.{region}.batch.azure.com, or nil.
local function account_of(host)
  return host:lower():match("^([a-z0-9][a-z0-9-]*)%.[a-z0-9-]+%.batch%.azure%.com$")
end

local function bad_endpoint(what, msg)
  return nil, what .. ".endpoint: " .. msg, { kind = "validation", field = what .. ".endpoint" }
end

-- The checked endpoint URL, or fail.
local function endpoint_of(endpoint, what, shape)
  if not endpoint:match("^%a[%w+.-]*://") then endpoint = "https://" .. endpoint end  -- az accepts a bare host
  local u, why = core.url_check(endpoint)
  if not u then return bad_endpoint(what, (why:gsub("^url: ", ""))) end
  if endpoint:find("?", 1, true) or not endpoint:match("^%a[%w+.-]*://[^/]*/?$") then
    return bad_endpoint(what, ("expected %s with no path or query, got %q"):format(shape,
      core.sanitize(endpoint, 200)))
  end
  return u
end

-- The fields every client has, from checked options.
local function base(opts, fname, class, profile, u, cred)
  for _, k in ipairs { "timeout", "connect_timeout" } do check.seconds(opts[k], k, fname) end
  for _, k in ipairs { "account", "scope", "user_agent", "ca_file", "ca_path", "api_version" } do
    check.type(opts[k], "string", k, fname)
  end
  local http, own_http = opts.http, false
  if http == nil and opts.max_connections then
    http = core.http { max_connections = opts.max_connections }
    own_http = true
  end
  return setmetatable({
    profile = profile,
    endpoint = u.where:gsub("/$", ""),
    origin = u.origin,
    host = u.host,
    credential = cred,
    http = http or transport.shared(),
    own_http = own_http,
    retry = retry.policy(opts.retry),
    -- per-request transport settings
    net = { timeout = opts.timeout, connect_timeout = opts.connect_timeout, ca_file = opts.ca_file,
      ca_path = opts.ca_path, user_agent = opts.user_agent, max_response = opts.max_response,
      verbose = opts.verbose },
    inflight = parallel.keyed("k"),
  }, class)
end

--- azbatch.client{endpoint=, credential=, ...} -> Client | fail
function M.new(opts)
  opts = check.options(opts, 1, "client", OPTIONS)
  check.type(opts.endpoint, "string", "endpoint", "client")
  local endpoint = opts.endpoint or os.getenv("AZURE_BATCH_ENDPOINT")
  if not endpoint or endpoint == "" then
    return bad_endpoint("client", "required (pass endpoint= or set AZURE_BATCH_ENDPOINT)")
  end
  local u, why, err = endpoint_of(endpoint, "client", "https://{account}.{region}.batch.azure.com")
  if not u then return nil, why, err end
  local cred = opts.credential
  if cred == nil then
    cred, why, err = credential.from_env()
    if not cred then return nil, why, err end
  end
  local self = base(opts, "client", Client, BATCH, u, cred)
  self.account = opts.account or (credential.is_shared_key(cred) and cred:account()) or account_of(u.host)
  self.scope = opts.scope or credential.BATCH_SCOPE
  self.api_version = opts.api_version or core.API_VERSION
  return self
end

local ARM_OPTIONS = check.set { "endpoint", "credential", "timeout", "connect_timeout", "ca_file", "ca_path",
  "retry", "http", "scope", "user_agent", "max_connections", "max_response", "verbose" }

--- azbatch.arm{endpoint=, credential=, ...} -> Arm | fail: Azure Resource
-- Manager on the same machinery. endpoint: AZURE_RESOURCE_MANAGER_ENDPOINT
-- or https://management.azure.com. Every call names its api-version.
function M.new_arm(opts)
  opts = check.options(opts, 1, "arm", ARM_OPTIONS)
  check.type(opts.endpoint, "string", "endpoint", "arm")
  local env = os.getenv("AZURE_RESOURCE_MANAGER_ENDPOINT")
  local endpoint = opts.endpoint or (env ~= "" and env) or M.ARM_ENDPOINT
  local u, why, err = endpoint_of(endpoint, "arm", "https://management.azure.com")
  if not u then return nil, why, err end
  local cred = opts.credential
  if cred == nil then
    cred, why, err = credential.default()
    if not cred then return nil, why, err end
  end
  if credential.is_shared_key(cred) then
    return nil, "arm.credential: Azure Resource Manager takes Microsoft Entra ID tokens, not a Batch Shared Key "
      .. "(use azbatch.credential.default())", { kind = "auth", field = "arm.credential" }
  end
  local self = base(opts, "arm", Arm, ARM, u, cred)
  self.scope = opts.scope or credential.ARM_SCOPE
  return self
end

function Client:__tostring()
  if self.closed then return self.profile.name .. " (closed)" end
  local how = credential.is_shared_key(self.credential) and "shared key" or "entra id"
  return ("%s(%s, %s)"):format(self.profile.name, self.endpoint, how)
end
Arm.__tostring = Client.__tostring

-- What a caller whose request was ended by close() is told.
local function closed_msg(self) return "the " .. self.profile.name .. " was closed" end

--- End this client's requests in flight (their callers get a fail) and
-- release its own transport, if it made one; a shared transport and other
-- clients' requests go on. Idempotent.
function Client:close()
  if self.closed then return end
  self.closed = true
  for _, req in ipairs(self.inflight:keys()) do req:cancel(closed_msg(self)) end
  if self.own_http then self.http:close() end
end
Client.__close = Client.close
Client.__gc = Client.close
Arm.__close = Client.close
Arm.__gc = Client.close

local function check_open(self, level)
  local mt = getmetatable(self)
  if mt ~= Client and mt ~= Arm then error("bad self: azbatch.Client expected", (level or 2) + 1) end
  if self.closed then error("attempt to use a closed " .. mt.__name, (level or 2) + 1) end
end
M.check_open = check_open

-- "api-version=..." for each version seen: the query of most requests.
local API_QUERY = setmetatable({}, { __index = function(t, v)
  local q = "api-version=" .. core.url_encode(v)
  t[v] = q
  return q
end })

-- Query string with names as given and values percent-encoded; arrays
-- ($select, $expand) comma-joined; integers written as integers. The
-- client's api-version unless the query names its own.
local function query_string(query, api_version)
  if query == nil or next(query) == nil then
    if not api_version then error("bad query: the api-version is missing (ARM calls name their own)", 4) end
    return API_QUERY[api_version]
  end
  local names = {}
  for k in pairs(query) do
    if type(k) ~= "string" then error("bad query: names must be strings", 4) end
    names[#names + 1] = k
  end
  table.sort(names)
  local parts = {}
  if query["api-version"] == nil then
    if not api_version then error("bad query: the api-version is missing (ARM calls name their own)", 4) end
    parts[1] = API_QUERY[api_version]
  end
  for _, k in ipairs(names) do
    local v = query[k]
    if type(v) == "table" then v = table.concat(v, ",") end
    if math.type(v) == "float" and v == math.floor(v) and v >= -2^53 and v <= 2^53 then v = math.tointeger(v) end
    if v ~= nil and v ~= false then parts[#parts + 1] = core.url_encode(k) .. "=" .. core.url_encode(tostring(v)) end
  end
  return table.concat(parts, "&")
end

local function clean(s, max)
  if type(s) ~= "string" then return nil end
  return core.sanitize(s, max or 512)
end

-- A Batch or ARM error body into fail values: "<code>: <message> [detail]".
-- Every string from the service is cleaned before it reaches a message or
-- a table a CLI may print.
local function api_error(status, headers, body, attempts)
  local err = { kind = "api", status = status, request_id = clean(headers["request-id"]
      or headers["x-ms-request-id"], 128),
    client_request_id = clean(headers["client-request-id"], 128), retry_after = retry.retry_after(headers),
    attempts = attempts, values = {} }
  local decoded = body ~= "" and json.decode(body) or nil
  if type(decoded) == "table" and type(decoded.error) == "table" then decoded = decoded.error end  -- ARM shape
  if type(decoded) == "table" and type(decoded.code) == "string" then
    err.code = clean(decoded.code, 128)
    local m = decoded.message
    if type(m) == "table" then m = m.value end
    err.message = clean(type(m) == "string" and m:match("^[^\r\n]*") or "")
    local values = decoded.values or decoded.details
    for _, kv in ipairs(type(values) == "table" and values or {}) do
      if type(kv) == "table" then
        local key = kv.key or kv.code
        local value = kv.value or kv.message
        if type(key) == "string" and (type(value) == "string" or math.type(value)) then
          err.values[#err.values + 1] = { key = clean(key, 128), value = clean(tostring(value)) }
        end
      end
    end
  else
    err.code = ("HTTP%d"):format(status)
    err.message = status == 404 and "not found" or ("HTTP status %d"):format(status)
  end
  local details = {}
  for _, kv in ipairs(err.values) do details[#details + 1] = ("%s=%s"):format(kv.key, kv.value) end
  local text = ("%s: %s"):format(err.code, err.message)
  if #details > 0 then text = text .. " [" .. table.concat(details, ", ") .. "]" end
  if err.request_id then text = text .. " (request-id " .. err.request_id .. ")" end
  return nil, text, err
end
M.api_error = api_error

-- The table http:start reads for this client's requests: what never
-- changes filled in once, the rest set before each start (http:start reads
-- it during the call and keeps nothing of it).
local function start_table(self)
  local t = self.start_req
  if t == nil then
    local net = self.net
    t = { origin = self.origin, connect_timeout = net.connect_timeout, ca_file = net.ca_file,
      ca_path = net.ca_path, user_agent = net.user_agent, max_response = net.max_response, verbose = net.verbose }
    self.start_req = t
  end
  return t
end

local REQUEST_OPTS = check.set { "query", "body", "kind", "headers", "if_match", "if_none_match", "ok",
  "timeout", "retry", "url", "fresh_connect" }
local METHODS = check.set { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" }

--- client:request(method, path, opts) -> value, response | fail
-- opts: query, body (string or table), kind (descriptor for a table body),
-- headers (name -> value), if_match, if_none_match, ok (extra accepted
-- statuses, e.g. {404}), timeout, retry (options or false), url (absolute,
-- e.g. an odata.nextLink: it must be on the client's endpoint),
-- fresh_connect (send on a new connection, so libcurl never re-sends it
-- by itself: for calls that are not idempotent).
-- On failure err.outcome = "unknown" says the operation may have taken
-- effect (an attempt may have reached the service and its answer is lost);
-- without it, the failure means it did not.
function Client:request(method, path, opts)
  check_open(self)
  if type(method) ~= "string" or not METHODS[method:upper()] then
    error(("bad argument #1 to 'request' (one of GET, HEAD, POST, PUT, PATCH, DELETE expected, got %s)")
      :format(type(method) == "string" and ("%q"):format(method) or type(method)), 2)
  end
  opts = check.options(opts, 3, "request", REQUEST_OPTS)
  check.seconds(opts.timeout, "timeout", "request")
  method = method:upper()
  local url = opts.url
  if url == nil then
    if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
      error(("bad argument #2 to 'request' (a path starting with '/' expected, got %s)")
        :format(type(path) == "string" and ("%q"):format(path) or type(path)), 2)
    end
    if path:find("[?#]") then
      error("bad argument #2 to 'request' (a path without '?' or '#': give parameters in opts.query)", 2)
    end
    url = self.endpoint .. path .. "?" .. query_string(opts.query, self.api_version)
  elseif type(url) ~= "string" then
    error("bad argument #3 to 'request' (option 'url' must be a string)", 2)
  end
  local body = opts.body
  if type(body) == "table" then
    local text, why, err = json.encode(body, opts.kind)
    if not text then return nil, why, err end
    body = text
  elseif body ~= nil and type(body) ~= "string" then
    error("bad argument #3 to 'request' (option 'body' must be a string or a table)", 2)
  end
  local policy = opts.retry ~= nil and retry.policy(opts.retry) or self.retry
  local client_request_id = core.uuid()       -- the same for every attempt of this call
  local started = core.now()
  local mutating = method ~= "GET" and method ~= "HEAD"
  local maybe_applied = false                 -- an earlier attempt may have taken effect
  local shared_key = credential.is_shared_key(self.credential)
  local extra = opts.headers
  local attempt = 0
  while true do
    attempt = attempt + 1
    local headers = self.profile.headers(client_request_id)
    if body then headers["Content-Type"] = self.profile.content_type end
    if opts.if_match ~= nil then headers["If-Match"] = opts.if_match end
    if opts.if_none_match ~= nil then headers["If-None-Match"] = opts.if_none_match end
    if extra then for k, v in pairs(extra) do headers[k] = v end end
    local auth, scope = self.credential, nil
    local why, err
    if not shared_key then
      scope = self.scope
      auth, why, err = credential.ensure(self.credential, scope, self.http)
      if self.closed then return nil, "request: " .. closed_msg(self), { kind = "transport", cancelled = true } end
      if not auth then
        -- still an auth failure to the caller; the cause (transport,
        -- timeout) and whether it is worth retrying are kept
        err = err or {}
        err.cause = err.kind ~= "auth" and err.kind or err.cause
        err.kind = "auth"
        err.attempts = attempt
        if not (err.retryable or err.cause == "timeout") or attempt >= policy.max_attempts then
          return nil, why, err
        end
        local delay = retry.delay(policy, attempt)
        if core.now() - started + delay > policy.max_elapsed then return nil, why, err end
        parallel.sleep(delay)
        goto continue
      end
    end
    do
      local start = start_table(self)
      start.method, start.url, start.headers, start.body = method, url, headers, body
      start.auth, start.scope, start.timeout = auth, scope, opts.timeout or self.net.timeout
      start.fresh_connect = opts.fresh_connect
      local req
      req, why, err = self.http:start(start)
      start.headers, start.body, start.auth = nil, nil, nil   -- keep nothing alive
      if not req then return nil, why, err end
      self.inflight:put(req, true)
      parallel.await(self.http, req)
      self.inflight:take(req)
      local status, rheaders, rbody, info = req:take()   -- the scheduler's maps may keep req a while
      -- libcurl re-sent this attempt by itself after a dead connection: its
      -- first send may have taken effect
      local resent = (status and info.resent) or (not status and rbody.resent) or false
      local accepted = status and (status >= 200 and status < 300)
      if status and not accepted then
        for _, s in ipairs(opts.ok or {}) do accepted = accepted or s == status end
      end
      if accepted then
        local resp = { status = status, headers = rheaders, request_id = clean(rheaders["request-id"], 128),
          client_request_id = clean(rheaders["client-request-id"], 128) or client_request_id,
          etag = rheaders["etag"], attempts = attempt, maybe_applied = maybe_applied or (mutating and resent) }
        local ctype = rheaders["content-type"]
        if rbody ~= "" and ctype and ctype:find("json", 1, true) then
          local value, jwhy = core.json_decode(rbody)
          if value == nil then
            local e = { kind = "api", code = "InvalidResponse", status = status, request_id = resp.request_id,
              attempts = attempt }
            return nil, ("request: %s %s: the service answered with malformed JSON (%s)")
              :format(method, path or "(next link)", jwhy), e
          end
          return value, resp
        end
        return true, resp
      end
      -- failure: retry or report
      local fail_msg, fail_err
      if status then
        if status == 401 and not shared_key and attempt == 1 then
          -- a token revoked or expired early: fetch a fresh one once
          if self.credential.clear then self.credential:clear() end
        end
        local _
        _, fail_msg, fail_err = api_error(status, rheaders, rbody, attempt)
      else
        fail_msg, fail_err = rheaders, rbody            -- result() returned nil, msg, err
        fail_err.attempts = attempt
      end
      fail_err.client_request_id = fail_err.client_request_id or client_request_id
      -- may this attempt have taken effect? A request whose bytes never
      -- left, a 429 or a 503 did not; a lost answer or a 500 may have
      local this_maybe = mutating and ((status == nil and fail_err.sent ~= false)
        or status == 500 or status == 502 or status == 503 or status == 504 or status == 408)
      maybe_applied = maybe_applied or (mutating and resent)
      local again = (retry.retryable(status, fail_err) or (status == 401 and attempt == 1
        and not shared_key))
      local delay = again and retry.delay(policy, attempt, status and fail_err.retry_after)
      if not again or attempt >= policy.max_attempts or core.now() - started + delay > policy.max_elapsed then
        if this_maybe then fail_err.outcome = "unknown" end
        fail_err.maybe_applied = maybe_applied or nil
        return nil, fail_msg, fail_err
      end
      maybe_applied = maybe_applied or this_maybe
      parallel.sleep(delay)
      if self.closed then
        return nil, "request: " .. closed_msg(self), { kind = "transport", cancelled = true,
          outcome = maybe_applied and "unknown" or nil }
      end
    end
    ::continue::
  end
end

-- One page fetch for pages(): the page's items and the next link, or fail.
--- Check one decoded list page: its items and its next link (nil at the
-- end), or fail (kind "api", code "InvalidResponse") for a page that is not
-- an object, a 'value' that is not an array of objects, a next link that is
-- not a string or was seen before ('seen' remembers them). Pure: fuzzed.
function M.read_page(page, key, seen, where)
  local function invalid(what)
    return nil, ("%s: the service sent a malformed page (%s)"):format(where, what),
      { kind = "api", code = "InvalidResponse" }
  end
  if type(page) ~= "table" or json.is_array(page) then return invalid("not a JSON object") end
  local items = page.value
  if items == nil then items = json.array {} end
  if not json.is_array(items) then return invalid("'value' is not an array") end
  for i = 1, #items do
    if type(items[i]) ~= "table" or json.is_array(items[i]) then
      return invalid(("item %d is not an object"):format(i))
    end
  end
  local link = page[key]
  if link ~= nil and type(link) ~= "string" then return invalid(("'%s' is not a string"):format(key)) end
  if link == "" then link = nil end
  if link then
    if seen[link] then
      return nil, ("%s: the service sent the same %s twice; stopping (it would never end)"):format(where, key),
        { kind = "api", code = "InvalidResponse" }
    end
    seen[link] = true
  end
  return items, link
end

-- One page fetch for pages(): the page's items and the next link, or fail.
local function fetch_page(self, path, query, next_url, seen)
  local page, why, err = self:request("GET", path, { url = next_url, query = next_url == nil and query or nil })
  if not page then return nil, why, err end
  return M.read_page(page, self.profile.next_link, seen, path)
end

--- A paged list as a function producing each item, or nil at the end, or
-- fail (once) on a failure. Used by collect() and the raising iterator.
function Client:page_reader(path, query)
  check_open(self)
  local items, i, next_url, done, started = nil, 0, nil, false, false
  local seen = {}
  return function()
    while true do
      if items and i < #items then
        i = i + 1
        return items[i]
      end
      if done or (started and not next_url) then return nil end
      if self.closed then
        done = true
        return nil, "list: " .. closed_msg(self), { kind = "transport", cancelled = true }
      end
      local got, link_or_why, err = fetch_page(self, path, query, next_url, seen)
      started = true
      if not got then
        done = true
        return nil, link_or_why, err
      end
      items, next_url, i = got, link_or_why, 0
    end
  end
end

--- Iterate over a paged list, following odata.nextLink. A failure raises,
-- as io.lines does; azbatch.collect(...) returns fail instead.
function Client:pages(path, query)
  local read = self:page_reader(path, query)
  local iter = function()
    local item, why = read()
    if item == nil and why ~= nil then error(why, 2) end
    return item
  end
  return setmetatable({}, { __call = iter, __name = "azbatch.Pages", reader = read })
end

--- Gather a list into an array, or fail. Takes what a list method returns.
function M.collect(list)
  local mt = getmetatable(list)
  local read = type(mt) == "table" and mt.reader
  if not read then
    error(("bad argument #1 to 'collect' (a list from a client method expected, got %s)"):format(type(list)), 2)
  end
  local out = {}
  while true do
    local item, why, err = read()
    if item == nil then
      if why ~= nil then return nil, why, err end
      return out
    end
    out[#out + 1] = item
  end
end

return M
