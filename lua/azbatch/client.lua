--- The Batch client: builds, signs and sends requests, retries what is
-- worth retrying, and turns responses into tables or fail values.
local core = require "azbatch.core"
local json = require "azbatch.json"
local retry = require "azbatch.retry"
local parallel = require "azbatch.parallel"
local credential = require "azbatch.credential"

local M = {}

local Client = {}
Client.__index = Client
Client.__name = "azbatch.Client"
M.Client = Client

local OPTIONS = { endpoint = true, credential = true, account = true, timeout = true, connect_timeout = true,
  ca_file = true, ca_path = true, retry = true, http = true, scope = true, user_agent = true,
  max_connections = true, api_version = true }

local function is_loopback(host)
  return host == "localhost" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil or host == "[::1]"
end

--- Split "https://host[:port][/...]" into scheme, host; nil when not a URL.
local function parse_endpoint(url)
  local scheme, host = url:match("^(%a[%w+.-]*)://([^/:?#]+)")
  if not scheme and url:match("^[%w.-]+$") then return "https", url end   -- az accepts a bare host
  return scheme and scheme:lower(), host
end

--- azbatch.client{endpoint=, credential=, ...} -> Client | fail
function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error(("bad argument #1 to 'client' (table expected, got %s)"):format(type(opts)), 2)
  end
  for k in pairs(opts) do
    if not OPTIONS[k] then error(("bad argument #1 to 'client' (unknown option '%s')"):format(tostring(k)), 2) end
  end
  local endpoint = opts.endpoint or os.getenv("AZURE_BATCH_ENDPOINT")
  if not endpoint or endpoint == "" then
    return nil, "client.endpoint: required (pass endpoint= or set AZURE_BATCH_ENDPOINT)",
      { kind = "validation", field = "client.endpoint" }
  end
  local scheme, host = parse_endpoint(endpoint)
  if not host or (scheme ~= "https" and scheme ~= "http") then
    return nil, ("client.endpoint: expected https://{account}.{region}.batch.azure.com, got %q"):format(endpoint),
      { kind = "validation", field = "client.endpoint" }
  end
  if scheme == "http" and not is_loopback(host) then
    return nil, ("client.endpoint: http:// is only allowed to loopback addresses (got host %q); use https://")
      :format(host), { kind = "validation", field = "client.endpoint" }
  end
  if not endpoint:match("^%a[%w+.-]*://") then endpoint = "https://" .. endpoint end
  endpoint = endpoint:gsub("/+$", "")
  local cred = opts.credential
  if cred == nil then
    local why, err
    cred, why, err = credential.from_env()
    if not cred then return nil, why, err end
  end
  local http = opts.http
  local own_http = false
  if not http then
    http = core.http { timeout = opts.timeout, connect_timeout = opts.connect_timeout, ca_file = opts.ca_file,
      ca_path = opts.ca_path, user_agent = opts.user_agent, max_connections = opts.max_connections }
    own_http = true
  end
  local self = setmetatable({
    endpoint = endpoint,
    host = host,
    account = opts.account or (credential.is_shared_key(cred) and cred:account()) or host:match("^([^.]+)"),
    credential = cred,
    http = http,
    own_http = own_http,
    scope = opts.scope or credential.BATCH_SCOPE,
    api_version = opts.api_version or core.API_VERSION,
    retry = retry.policy(opts.retry),
    timeout = opts.timeout,
  }, Client)
  return self
end

function Client:__tostring()
  if self.closed then return "azbatch.Client (closed)" end
  local how = credential.is_shared_key(self.credential) and "shared key" or "entra id"
  return ("azbatch.Client(%s, %s)"):format(self.endpoint, how)
end

--- Release the transport (if the client made it). Idempotent.
function Client:close()
  if not self.closed then
    self.closed = true
    if self.own_http then self.http:close() end
  end
end
Client.__close = Client.close
Client.__gc = Client.close

local function check_open(self)
  if getmetatable(self) ~= Client then error("bad self: azbatch.Client expected", 3) end
  if self.closed then error("attempt to use a closed azbatch.Client", 3) end
end
M.check_open = check_open

-- Query string with names in lower case as the service documents them,
-- values percent-encoded; arrays ($select, $expand) comma-joined.
local function query_string(query, api_version)
  local names = {}
  for k in pairs(query or {}) do names[#names + 1] = k end
  table.sort(names)
  local parts = { "api-version=" .. core.url_encode(api_version) }
  for _, k in ipairs(names) do
    local v = query[k]
    if type(v) == "table" then v = table.concat(v, ",") end
    if v ~= nil and v ~= false then parts[#parts + 1] = k .. "=" .. core.url_encode(tostring(v)) end
  end
  return table.concat(parts, "&")
end

-- One-line text of a Batch error body: "<code>: <message> [key=value, ...]".
local function api_error(status, headers, body, attempts)
  local err = { kind = "api", status = status, request_id = headers["request-id"],
    client_request_id = headers["client-request-id"], retry_after = retry.retry_after(headers),
    attempts = attempts }
  local decoded = body ~= "" and json.decode(body) or nil
  if type(decoded) == "table" and type(decoded.error) == "table" then decoded = decoded.error end  -- ARM shape
  if type(decoded) == "table" and type(decoded.code) == "string" then
    err.code = decoded.code
    local m = decoded.message
    if type(m) == "table" then m = m.value end
    err.message = type(m) == "string" and m:match("^[^\r\n]*") or ""
    err.values = {}
    for _, kv in ipairs(type(decoded.values) == "table" and decoded.values or {}) do
      if type(kv) == "table" then err.values[#err.values + 1] = { key = kv.key, value = kv.value } end
    end
  else
    err.code = ("HTTP%d"):format(status)
    err.message = status == 404 and "not found" or ("HTTP status %d"):format(status)
  end
  local details = {}
  for _, kv in ipairs(err.values or {}) do
    if kv.key ~= nil and kv.key ~= "AuthenticationErrorDetail" then
      details[#details + 1] = ("%s=%s"):format(tostring(kv.key), tostring(kv.value))
    end
  end
  local text = ("%s: %s"):format(err.code, err.message)
  if #details > 0 then text = text .. " [" .. table.concat(details, ", ") .. "]" end
  if err.request_id then text = text .. " (request-id " .. err.request_id .. ")" end
  return nil, text, err
end

--- Authorization header for one attempt, or fail.
function Client:authorize(method, url, headers)
  local cred = self.credential
  if credential.is_shared_key(cred) then
    headers[#headers + 1] = "Authorization: " .. cred:sign(method, url, headers)
    return true
  end
  local token, why, err = cred:token(self.scope)
  if not token then
    -- Still an auth failure to the caller; the cause (transport, timeout)
    -- and whether it is worth retrying are kept.
    err = err or {}
    err.cause = err.kind ~= "auth" and err.kind or nil
    err.kind = "auth"
    return nil, why, err
  end
  headers[#headers + 1] = "Authorization: Bearer " .. token
  return true
end

--- client:request(method, path, opts) -> value, response | fail
-- opts: query, body (string or table), kind (descriptor for a table body),
-- headers (name -> value), if_match, if_none_match, ok (extra accepted
-- statuses, e.g. {404}), timeout, retry (options or false), url (absolute,
-- e.g. an odata.nextLink), fresh_connect (send on a new connection, so
-- libcurl never re-sends it by itself: for calls that are not idempotent).
function Client:request(method, path, opts)
  check_open(self)
  opts = opts or {}
  method = method:upper()
  local url = opts.url
  if not url then
    url = self.endpoint .. path .. "?" .. query_string(opts.query, self.api_version)
  elseif url:sub(1, #self.endpoint + 1) ~= self.endpoint .. "/" then
    return nil, ("request: next link %q is not on this account's endpoint"):format(url),
      { kind = "validation", field = "url" }
  end
  local body = opts.body
  if type(body) == "table" then
    local text, why, err = json.encode(body, opts.kind)
    if not text then return nil, why, err end
    body = text
  end
  local policy = opts.retry ~= nil and retry.policy(opts.retry) or self.retry
  local client_request_id = core.uuid()       -- the same for every attempt of this call
  local started = core.now()
  local attempt = 0
  while true do
    attempt = attempt + 1
    local headers = {
      "ocp-date: " .. core.rfc1123(),
      "client-request-id: " .. client_request_id,
      "return-client-request-id: true",
      "Accept: application/json",
    }
    if body then
      headers[#headers + 1] = "Content-Type: application/json; odata=minimalmetadata"
    end
    if body or method == "POST" or method == "PUT" or method == "PATCH" then
      headers[#headers + 1] = "Content-Length: " .. (body and #body or 0)
    end
    if opts.if_match then headers[#headers + 1] = "If-Match: " .. opts.if_match end
    if opts.if_none_match then headers[#headers + 1] = "If-None-Match: " .. opts.if_none_match end
    for k, v in pairs(opts.headers or {}) do headers[#headers + 1] = k .. ": " .. v end
    local ok, why, err = self:authorize(method, url, headers)
    if not ok then
      err.attempts = attempt
      if not err.retryable or attempt >= policy.max_attempts then return nil, why, err end
      local delay = retry.delay(policy, attempt)
      if core.now() - started + delay > policy.max_elapsed then return nil, why, err end
      parallel.sleep(delay, self.http)
      goto continue
    end
    local req
    req, why, err = self.http:start { method = method, url = url, headers = headers, body = body,
      timeout = opts.timeout, fresh_connect = opts.fresh_connect }
    if not req then return nil, why, err end
    parallel.await(self.http, req)
    local status, rheaders, rbody = req:result()
    local accepted = status and (status >= 200 and status < 300)
    if status and not accepted then
      for _, s in ipairs(opts.ok or {}) do accepted = accepted or s == status end
    end
    if accepted then
      local resp = { status = status, headers = rheaders, request_id = rheaders["request-id"],
        client_request_id = rheaders["client-request-id"] or client_request_id, etag = rheaders["etag"],
        attempts = attempt }
      if rbody ~= "" and (rheaders["content-type"] or ""):find("json", 1, true) then
        local value, jwhy, jerr = json.decode(rbody)
        if value == nil then return nil, jwhy, jerr end
        return value, resp
      end
      return true, resp
    end
    -- Failure: retry or report.
    local fail_msg, fail_err
    if status then
      if status == 401 and not credential.is_shared_key(self.credential) and attempt == 1 then
        -- A token revoked or expired early: fetch a fresh one once.
        if self.credential.clear then self.credential:clear() end
      end
      local _
      _, fail_msg, fail_err = api_error(status, rheaders, rbody, attempt)
    else
      fail_msg, fail_err = rheaders, rbody            -- result() returned nil, msg, err
      fail_err.attempts = attempt
    end
    fail_err.client_request_id = fail_err.client_request_id or client_request_id
    local again = (retry.retryable(status, fail_err) or (status == 401 and attempt == 1
      and not credential.is_shared_key(self.credential)))
    if not again or attempt >= policy.max_attempts then return nil, fail_msg, fail_err end
    local delay = retry.delay(policy, attempt, status and fail_err.retry_after)
    if core.now() - started + delay > policy.max_elapsed then return nil, fail_msg, fail_err end
    parallel.sleep(delay, self.http)
    ::continue::
  end
end

--- Iterate over a paged list, following odata.nextLink.
-- Produces each item; on a failure produces false, message, err once, then stops.
function Client:pages(path, opts)
  check_open(self)
  local items, i, next_url, done = nil, 0, nil, false
  local first = true
  return function()
    while true do
      if items and i < #items then
        i = i + 1
        return items[i]
      end
      if done or (not first and not next_url) then return nil end
      local page, why, err = self:request("GET", path, { url = next_url, query = first and opts or nil })
      first = false
      if not page then
        done = true
        return false, why, err
      end
      items, i = type(page.value) == "table" and page.value or {}, 0
      next_url = page["odata.nextLink"]
    end
  end
end

--- Gather an iterator's items into an array, or fail.
function M.collect(iter)
  local out = {}
  for item, why, err in iter do
    if item == false then return nil, why, err end
    out[#out + 1] = item
  end
  return out
end

return M
