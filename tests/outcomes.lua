--- Judging what a client reported against what the service did. The
-- emulator's journal of applied writes (GET /_emulator/journal) is the
-- truth: one entry per write it applied, answered or not, keyed by the
-- call's client-request-id (every attempt of one call shares it). A call
-- that reported success must have been applied; one that reported failure
-- must not have been; one whose outcome is "unknown" (err.outcome) is
-- counted, and when it was settled by reading the pool back (c.settled =
-- true or false), that answer must be the journal's.
-- Used by tests/integration/reliability_spec.lua and tests/soak/soak.lua;
-- its own spec is tests/unit/outcomes_spec.lua. Pure: no network.
local M = {}

-- The columns of a tally, in the order they are printed.
M.COLUMNS = { "ops", "successes", "recovered", "failures", "unknown", "settled", "false_success",
  "false_failure", "settled_wrong" }

--- One call as the client reported it: what it returned, kept for judging.
-- 'args' (optional) is what it was asked, for reading it back.
function M.call(kind, id, res, why, err, args)
  return { kind = kind, id = id, ok = res ~= nil, result = res, why = why, err = err, args = args }
end

--- The call's client-request-id, or nil when it never got one (a
-- validation failure: nothing was sent).
function M.crid(c)
  if c.ok then return type(c.result) == "table" and c.result.client_request_id or nil end
  return type(c.err) == "table" and c.err.client_request_id or nil
end

--- What the call said: "success", "unknown" or "failure".
function M.reported(c)
  if c.ok then return "success" end
  if type(c.err) == "table" and c.err.outcome == "unknown" then return "unknown" end
  return "failure"
end

--- Journal entries into the applied set: client-request-id -> number of
-- writes applied under it. Adds to 'into' when given.
function M.applied(entries, into)
  into = into or {}
  for _, e in ipairs(entries) do
    local crid = e.clientRequestId
    if crid then into[crid] = (into[crid] or 0) + 1 end
  end
  return into
end

local Tally = {}
Tally.__index = Tally
M.Tally = Tally

--- A tally: per kind the counts of M.COLUMNS, and the problems found (one
-- line each).
function M.tally()
  return setmetatable({ kinds = {}, problems = {} }, Tally)
end

--- The counts of one kind (made on first use).
function Tally:kind(kind)
  local t = self.kinds[kind]
  if not t then
    t = {}
    for _, col in ipairs(M.COLUMNS) do t[col] = 0 end
    self.kinds[kind] = t
  end
  return t
end

local function problem(self, c, what)
  self.problems[#self.problems + 1] = ("%s %s: %s"):format(c.kind, tostring(c.id), what)
end

--- Judge one call against the applied set; count it under its kind.
-- Returns what it reported ("success", "unknown", "failure") and whether
-- the service applied it.
function Tally:judge(c, applied)
  local t = self:kind(c.kind)
  t.ops = t.ops + 1
  local crid = M.crid(c)
  local happened = crid ~= nil and (applied[crid] or 0) > 0
  local said = M.reported(c)
  if said == "success" then
    t.successes = t.successes + 1
    if c.result.recovered then t.recovered = t.recovered + 1 end
    if not happened then
      t.false_success = t.false_success + 1
      problem(self, c, "reported success, never applied")
    end
  elseif said == "unknown" then
    t.unknown = t.unknown + 1
    if c.settled ~= nil then
      t.settled = t.settled + 1
      if c.settled ~= happened then
        t.settled_wrong = t.settled_wrong + 1
        problem(self, c, ("outcome unknown, read back as %s, but the journal says %s")
          :format(c.settled and "applied" or "not applied", happened and "applied" or "not applied"))
      end
    end
  else
    t.failures = t.failures + 1
    if happened then
      t.false_failure = t.false_failure + 1
      problem(self, c, "reported failure (" .. tostring(c.why) .. "), but applied")
    end
  end
  return said, happened
end

--- The sum of every kind's counts.
function Tally:totals()
  local sum = {}
  for _, col in ipairs(M.COLUMNS) do sum[col] = 0 end
  for _, t in pairs(self.kinds) do
    for _, col in ipairs(M.COLUMNS) do sum[col] = sum[col] + t[col] end
  end
  return sum
end

--- The tally as text lines: a heading, one line per kind (sorted), and the
-- total; columns aligned.
function Tally:lines()
  local names = {}
  for k in pairs(self.kinds) do names[#names + 1] = k end
  table.sort(names)
  local rows = { { "kind", table.unpack(M.COLUMNS) } }
  local function row(name, t)
    local r = { name }
    for _, col in ipairs(M.COLUMNS) do r[#r + 1] = tostring(t[col]) end
    rows[#rows + 1] = r
  end
  for _, k in ipairs(names) do row(k, self.kinds[k]) end
  row("total", self:totals())
  local width = {}
  for _, r in ipairs(rows) do
    for i, cell in ipairs(r) do width[i] = math.max(width[i] or 0, #cell) end
  end
  local out = {}
  for _, r in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(r) do
      cells[i] = i == 1 and cell .. (" "):rep(width[i] - #cell) or (" "):rep(width[i] - #cell) .. cell
    end
    out[#out + 1] = table.concat(cells, "  ")
  end
  return out
end

return M
