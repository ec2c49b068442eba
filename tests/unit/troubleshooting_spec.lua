-- docs/troubleshooting.md maps every code azbatch can return to its cause and fix. This spec
-- keeps the map complete: it finds the codes azbatch itself produces (preflight, audit and
-- rollout findings, and the err.code values it sets) in ext/*.c and lua/azbatch/*.lua with the
-- patterns below, and checks that each has a row marked "azbatch" in the doc, with the right
-- kind or severity, and that every such row is still produced somewhere (no stale rows).
-- Codes that only pass through (the service's, Entra ID's, libcurl's) are rows of their own
-- and not checked against the source. A code made in a way no pattern knows fails the
-- "every fail(...) call names its code" spec, or shows up as a missing row once a pattern
-- is added here.
local ROOT = test_helper.ROOT
local DOC = "docs/troubleshooting.md"

local function read(path)
  local f = assert(io.open(ROOT .. "/" .. path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function list(glob)
  local out = {}
  local p = assert(io.popen("cd " .. test_helper.shq(ROOT) .. " && ls " .. glob))
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

-- {================================================================
-- The scanner
-- =================================================================

-- The top-level arguments (as source text) of the call whose '(' is just before position i:
-- strings, long strings and comments are skipped, so parentheses inside them do not count.
local function call_args(s, i)
  local args, depth, start = {}, 0, i
  while i <= #s do
    local c = s:sub(i, i)
    local eq = s:match("^%[(=*)%[", i) or s:match("^%-%-%[(=*)%[", i)
    if c == '"' or c == "'" then
      local j = i + 1
      while s:sub(j, j) ~= c do
        assert(j <= #s, "unterminated string")
        j = j + (s:sub(j, j) == "\\" and 2 or 1)
      end
      i = j + 1
    elseif eq then
      local _, e = s:find("]" .. eq .. "]", i, true)
      i = assert(e, "unterminated long string") + 1
    elseif s:sub(i, i + 1) == "--" then
      i = (s:find("\n", i, true) or #s) + 1
    elseif c == "(" or c == "{" or c == "[" then
      depth, i = depth + 1, i + 1
    elseif (c == ")" or c == "}" or c == "]") and depth > 0 then
      depth, i = depth - 1, i + 1
    elseif c == ")" or (c == "," and depth == 0) then
      args[#args + 1] = s:sub(start, i - 1)
      if c == ")" then return args end
      start, i = i + 1, i + 1
    else
      i = i + 1
    end
  end
  error("unterminated call")
end

local function line_of(s, pos)
  local _, n = s:sub(1, pos):gsub("\n", "")
  return n + 1
end

-- Where azbatch produces a code: one rule a way of making one. 'min' is how many codes the
-- rule finds at least in the tree, so that a rule a refactoring has broken says so.
-- add(code, {prefix=, kind=, severity=}) records what a match found.
local RULES = {
  { what = 'a preflight finding: emit(c, SEV_X, "CODE", ...)', lang = "c", min = 30,
    scan = function(s, add)
      for sev, code in s:gmatch('emit%(c,%s*SEV_(%u+),%s*"([%u%d_]+)"') do add(code, { severity = sev:lower() }) end
    end },
  { what = 'a quota finding: core_quota(c, "CODE", ...) (an error, or a warning with autoscale)', lang = "c", min = 3,
    scan = function(s, add)
      for code in s:gmatch('core_quota%(c,%s*"([%u%d_]+)"') do add(code, {}) end
    end },
  { what = 'err.code set in C: lua_pushliteral(L, "Code"); lua_setfield(L, -2, "code")', lang = "c", min = 1,
    scan = function(s, add)
      for code in s:gmatch('lua_pushliteral%(L,%s*"(%w+)"%);%s*lua_setfield%(L,%s*%-2,%s*"code"%)') do
        add(code, {})
      end
    end },
  { what = 'code = "X" in a Lua table or on err ("X" .. more: a prefix)', lang = "lua", min = 20,
    scan = function(s, add)
      for code, pos in s:gmatch('%f[%w_]code%s*=%s*"([%w_]+)"()') do
        add(code, { prefix = s:find("^%s*%.%.", pos) ~= nil })
      end
    end },
  { what = 'the kind of a Lua error table: { kind = "k", ..., code = "X" }', lang = "lua", min = 5,
    scan = function(s, add)
      for kind, code in s:gmatch('{%s*kind%s*=%s*"(%l+)"[^{}]-%f[%w_]code%s*=%s*"(%w+)"') do
        add(code, { kind = kind })
      end
    end },
  { what = 'the severity of a Lua finding: { severity = "s", code = "X" }', lang = "lua", min = 3,
    scan = function(s, add)
      for sev, code in s:gmatch('{%s*severity%s*=%s*"(%l+)",%s*code%s*=%s*"([%u%d_]+)"') do
        add(code, { severity = sev })
      end
    end },
  { what = 'a code made from a format: code = ("X%d"):format(...) (a prefix)', lang = "lua", min = 1,
    scan = function(s, add)
      for code in s:gmatch('code%s*=%s*%("(%u%a*)%%d"%)') do add(code, { prefix = true, kind = "api" }) end
    end },
  { what = 'a default code: e.code or "X"', lang = "lua", min = 1,
    scan = function(s, add)
      for code in s:gmatch('%.code%s+or%s+"(%u%a+)"') do add(code, {}) end
    end },
  { what = "wait_pool's node states that stop a wait: { state, limit, \"Code\" }", lang = "lua", min = 2,
    scan = function(s, add)
      for code in s:gmatch('{%s*"%l+",%s*[%w_]+,%s*"(%u%a+)"%s*}') do add(code, { kind = "api" }) end
    end },
  { what = "the code argument of a module's own fail(msg, code [, extra]) helper", lang = "lua", min = 20,
    scan = function(s, add, path)
      if not s:find("local function fail%(msg, code") then return end
      for pos in s:gmatch("%f[%w_.:]fail%(()") do
        if not s:sub(1, pos - 1):find("function%s+fail%($") then
          local args = call_args(s, pos)
          local code = args[2] and args[2]:match('^%s*"(%u%a+)"%s*$')
          if not code then
            error(("%s:%d: a fail(...) call whose code is not a string literal: teach the scanner"):format(path,
              line_of(s, pos)))
          end
          add(code, { kind = args[3] and args[3]:match('kind%s*=%s*"(%l+)"') or "api" })
        end
      end
    end },
}

--- The codes in one source text: code -> {prefix=, kinds={}, severities={}, where={}}.
local function scan_text(path, text, codes, found)
  local lang = path:match("%.c$") and "c" or "lua"
  for r, rule in ipairs(RULES) do
    if rule.lang == lang then
      rule.scan(text, function(code, how)
        local c = codes[code] or { kinds = {}, severities = {}, where = {} }
        codes[code] = c
        c.prefix = c.prefix or how.prefix
        if how.kind then c.kinds[how.kind] = true end
        if how.severity then c.severities[how.severity] = true end
        c.where[path] = true
        found[r] = (found[r] or 0) + 1
      end, path)
    end
  end
end

local function scan_tree()
  local codes, found = {}, {}
  for _, glob in ipairs { "ext/*.c", "lua/azbatch/*.lua" } do
    for _, path in ipairs(list(glob)) do scan_text(path, read(path), codes, found) end
  end
  return codes, found
end

-- }================================================================


-- {================================================================
-- The doc
-- =================================================================

local CODE_HEADER = "| code | from | kind | cause | fix |"
local FROM = { azbatch = true, Batch = true, ARM = true, ["Batch, ARM"] = true, ["ARM, Batch"] = true,
  ["Entra ID"] = true, libcurl = true }

local function cells_of(line)
  local cells = {}
  for cell in line:sub(2):gmatch("([^|]*)|") do cells[#cells + 1] = cell:match("^%s*(.-)%s*$") end
  return cells
end

--- The rows of the doc's code tables: {code, from, kind, cause, fix, group, line, ncells}.
local function doc_rows(text)
  local rows, group, in_table, n = {}, nil, false, 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    group = line:match("^## (.+)$") or group
    if line == CODE_HEADER then
      in_table = true
    elseif in_table and line:match("^|") then
      if not line:match("^|[%-|]+|$") then   -- not the header's separator
        local c = cells_of(line)
        rows[#rows + 1] = { code = c[1] and c[1]:match("^`([^`]+)`"), from = c[2], kind = c[3], cause = c[4],
          fix = c[5], group = group, line = n, ncells = #c }
      end
    else
      in_table = false
    end
  end
  return rows
end

local function own_rows(rows)
  local out = {}
  for _, r in ipairs(rows) do
    if r.from == "azbatch" and r.code then out[#out + 1] = r end
  end
  return out
end

local function matches(code, row_code, prefix)
  return row_code == code or (prefix and row_code:sub(1, #code) == code and #row_code > #code)
end

--- Codes azbatch produces with no "azbatch" row.
local function missing(codes, rows)
  local out = {}
  for code, c in pairs(codes) do
    local have = false
    for _, r in ipairs(own_rows(rows)) do have = have or matches(code, r.code, c.prefix) end
    if not have then out[#out + 1] = code end
  end
  table.sort(out)
  return out
end

--- "azbatch" rows whose code azbatch no longer produces.
local function stale(codes, rows)
  local out = {}
  for _, r in ipairs(own_rows(rows)) do
    local live = false
    for code, c in pairs(codes) do live = live or matches(code, r.code, c.prefix) end
    if not live then out[#out + 1] = r.code end
  end
  table.sort(out)
  return out
end

--- "code: kind" for each kind or severity the source gives a code that none of its rows says.
local function wrong_kinds(codes, rows)
  local out = {}
  for code, c in pairs(codes) do
    for _, set in ipairs { c.kinds, c.severities } do
      for k in pairs(set) do
        local said = false
        for _, r in ipairs(own_rows(rows)) do
          said = said or (matches(code, r.code, c.prefix) and (" " .. r.kind .. " "):find("%W" .. k .. "%W") ~= nil)
        end
        if not said then out[#out + 1] = code .. ": " .. k end
      end
    end
  end
  table.sort(out)
  return out
end

-- }================================================================


describe("docs/troubleshooting.md", function()
  local codes, found = scan_tree()
  local doc = read(DOC)
  local rows = doc_rows(doc)

  it("finds codes with every rule of the scanner", function()
    for r, rule in ipairs(RULES) do
      assert((found[r] or 0) >= rule.min, ("rule %d (%s) found %d codes, expected at least %d"):format(r,
        rule.what, found[r] or 0, rule.min))
    end
    -- a few that must be there, one of each way of making a code
    for _, code in ipairs { "RESIZE_TIMEOUT_SHORT", "QUOTA_DEDICATED_CORES", "ResponseTooLarge", "POOL_MIXED_VERSIONS",
                            "RolloutCommitted", "NodesUnusable", "HTTP", "OperationFailed", "Provisioning" } do
      assert(codes[code], code .. " was not found in the source")
    end
    assert.is_true(codes.HTTP.prefix and codes.Provisioning.prefix)
  end)

  it("has a row for every code azbatch produces", function()
    assert.same({}, missing(codes, rows))
  end)

  it("has no row for a code azbatch no longer produces", function()
    assert.same({}, stale(codes, rows))
  end)

  it("gives each code the kind or severity the source gives it", function()
    assert.same({}, wrong_kinds(codes, rows))
  end)

  it("has complete rows: a code, who chose it, a kind, a cause and a fix", function()
    assert.is_true(#rows > 100)
    for _, r in ipairs(rows) do
      local where = ("%s:%d"):format(DOC, r.line)
      assert.equal(5, r.ncells, where .. ": expected 5 cells")
      assert(r.code, where .. ": the first cell is not a `code`")
      assert(FROM[r.from], where .. ": unknown 'from' " .. tostring(r.from))
      assert(r.kind ~= "" and r.cause ~= "" and r.fix ~= "", where .. ": an empty cell")
    end
  end)

  it("says every exit status the CLI has", function()
    local want, have = {}, {}
    for line in read("lua/azbatch/cli.lua"):gmatch("\nlocal EXIT_[%u_, ]+=%s*([%d, ]+)") do
      for n in line:gmatch("%d+") do want[#want + 1] = n end
    end
    assert(#want >= 4, "the CLI's exit statuses were not found")
    local in_table = false
    for l in doc:gmatch("[^\n]+") do
      if l:match("^| exit status |") then in_table = true
      elseif in_table and l:match("^| `%d+` |") then have[#have + 1] = l:match("^| `(%d+)` |")
      elseif not l:match("^|") then in_table = false end
    end
    table.sort(want)
    table.sort(have)
    assert.same(want, have)
  end)

  it("is linked from the README, whose codes it maps", function()
    local readme = read("README.md")
    local section = readme:match("\n## Troubleshooting\n(.-)\n## ") or readme:match("\n## Troubleshooting\n(.*)$")
    assert(section, "README.md has no Troubleshooting section")
    assert.truthy(section:find("(docs/troubleshooting.md)", 1, true))
    local known, listed = {}, 0
    for _, r in ipairs(rows) do known[r.code] = true end
    for line in section:gmatch("[^\n]+") do
      local code = line:match("^| `([^`]+)` |")
      if code then
        listed = listed + 1
        assert(known[code], "README.md lists " .. code .. ", which " .. DOC .. " does not")
      end
    end
    assert.is_true(listed >= 10 and listed <= 15, ("README.md lists %d codes, expected 10 to 15"):format(listed))
  end)

  describe("the checks themselves", function()
    local function without(text, code)
      local out = text:gsub("\n| `" .. code:gsub("%p", "%%%0") .. "` | azbatch |[^\n]*", "")
      return out
    end

    -- what a check says of the changed doc and not of the doc as it is
    local function added(check, text)
      local before, out = {}, {}
      for _, v in ipairs(check(codes, rows)) do before[v] = true end
      for _, v in ipairs(check(codes, doc_rows(text))) do
        if not before[v] then out[#out + 1] = v end
      end
      return out
    end

    it("catch a code whose row is gone", function()
      assert.same({ "NodesUnusable" }, added(missing, without(doc, "NodesUnusable")))
      assert.same({ "VHD_ACCOUNT_MODE" }, added(missing, without(doc, "VHD_ACCOUNT_MODE")))
      -- a prefix wants a row that starts with it
      assert.same({ "HTTP" }, added(missing, without(doc, "HTTP<status>")))
    end)

    it("catch a row whose code azbatch no longer produces", function()
      local more = doc:gsub("\n| `NodesUnusable` |", "\n| `NodesUnusabel` | azbatch | api | a typo | none |%0", 1)
      assert.same({ "NodesUnusabel" }, added(stale, more))
    end)

    it("catch a row that gives the wrong kind", function()
      local wrong = doc:gsub("(\n| `BatchAccountNotFound` | azbatch | )api", "%1validation", 1)
      assert.same({ "BatchAccountNotFound: api" }, added(wrong_kinds, wrong))
    end)

    it("find a new code however azbatch makes it", function()
      local lua_src = table.concat({
        "local function fail(msg, code, extra) return nil, msg, extra end",
        'local function f() return fail(("a (b"):format(1), "BrandNewCode", { kind = "validation" }) end',
        'local g = { kind = "api", code = "OtherNewCode" }',
        'local h = { severity = "warning", code = "NEW_FINDING" }',
      }, "\n")
      local c_src = 'emit(c, SEV_ERROR, "NEW_C_FINDING", F_VMID, msg, fix);'
      local more = {}
      for k, v in pairs(codes) do more[k] = v end
      scan_text("lua/azbatch/new.lua", lua_src, more, {})
      scan_text("ext/azb_new.c", c_src, more, {})
      local before = {}
      for _, v in ipairs(missing(codes, rows)) do before[v] = true end
      local new = {}
      for _, v in ipairs(missing(more, rows)) do
        if not before[v] then new[#new + 1] = v end
      end
      assert.same({ "BrandNewCode", "NEW_C_FINDING", "NEW_FINDING", "OtherNewCode" }, new)
      assert.is_true(more.BrandNewCode.kinds.validation)
      assert.is_true(more.NEW_C_FINDING.severities.error)
    end)

    it("refuse a fail(...) call whose code they cannot read", function()
      local src = "local function fail(msg, code) end\nlocal c = 'X'\nreturn fail('m', c)"
      assert.error_matches(function() scan_text("lua/azbatch/x.lua", src, {}, {}) end,
        "x.lua:3: a fail%(...%) call whose code is not a string literal")
    end)
  end)
end)
