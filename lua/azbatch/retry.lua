--- Retry policy: which failures are worth another attempt and how long to
-- wait before it (exponential backoff with jitter, honouring Retry-After).
local core = require "azbatch.core"

local M = {}

M.DEFAULTS = {
  max_attempts = 5,     -- attempts in all, the first included
  max_elapsed = 60,     -- seconds from the first attempt; no retry would start past it
  base_delay = 0.5,     -- seconds before the first retry, doubled each time
  max_delay = 30,       -- cap of one backoff delay
}

local RETRY_STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

local POLICY_OPTS = {}
for k in pairs(M.DEFAULTS) do POLICY_OPTS[k] = true end

--- A policy table from user options (false disables retries).
function M.policy(opts)
  if opts == false then return { max_attempts = 1, max_elapsed = 0, base_delay = 0, max_delay = 0 } end
  opts = core.check_options(opts, 1, "retry", POLICY_OPTS)
  local p = {}
  for k, v in pairs(M.DEFAULTS) do p[k] = v end
  for k, v in pairs(opts) do
    if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
      error(("bad argument #1 to 'retry' (option '%s' must be a finite number >= 0)"):format(k), 3)
    end
    p[k] = v
  end
  if p.max_attempts < 1 or math.type(p.max_attempts) ~= "integer" and p.max_attempts ~= math.floor(p.max_attempts) then
    error("bad argument #1 to 'retry' (option 'max_attempts' must be an integer >= 1)", 3)
  end
  return p
end

-- The longest wait a service may ask for that is still believed.
M.MAX_RETRY_AFTER = 3600

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
  Nov = 11, Dec = 12 }

-- Days since 1970-01-01 of a proleptic Gregorian date (no time zone involved).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- Epoch seconds of an RFC 1123 date ("Sun, 06 Nov 1994 08:49:37 GMT").
function M.parse_http_date(s)
  local d, mon, y, hh, mm, ss = tostring(s):match("^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  return days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400
    + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

--- Seconds the service asked us to wait, from the response headers: a
-- finite number in [0, MAX_RETRY_AFTER], or nil when it said nothing
-- usable (a negative, non-finite or unparsable value is ignored).
function M.retry_after(headers)
  if type(headers) ~= "table" then return nil end
  local secs
  local ms = tostring(headers["retry-after-ms"] or headers["x-ms-retry-after-ms"] or ""):match("^%s*(%d+)%s*$")
  if ms then
    secs = tonumber(ms) / 1000
  else
    local v = headers["retry-after"]
    if type(v) ~= "string" then return nil end
    secs = tonumber(v:match("^%s*(%d+)%s*$") or "")
    if not secs then
      local at = M.parse_http_date(v)
      secs = at and math.max(0, at - core.time()) or nil
    end
  end
  if not secs or secs ~= secs or secs < 0 then return nil end
  return math.min(secs, M.MAX_RETRY_AFTER)
end

--- Is this outcome worth retrying? (status or transport error)
function M.retryable(status, err)
  if status then return RETRY_STATUS[status] == true end
  return err ~= nil and (err.retryable == true or err.kind == "timeout")
end

--- Delay before attempt 'attempt' + 1 (attempt >= 1): full backoff with
-- jitter in [half, full], or the service's Retry-After when it says more.
function M.delay(policy, attempt, retry_after)
  local backoff = math.min(policy.max_delay, policy.base_delay * 2 ^ (attempt - 1))
  backoff = backoff * (0.5 + math.random() * 0.5)
  if retry_after and retry_after > backoff then return retry_after end
  return backoff
end

return M
