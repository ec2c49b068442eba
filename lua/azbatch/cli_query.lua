--- --query: the common subset of JMESPath (jmespath.org/specification),
-- written for azbatch. Identifiers (bare or "quoted"), sub-expressions
-- a.b, indexes [0] [-1], slices [0:2], projections [*] and .*, flattening
-- [], filters [?expr] with comparisons, && || ! and parentheses,
-- multiselect lists [a, b] and hashes {k: expr}, pipes |, the current node
-- @, literals `json` and 'raw', and the common functions.
-- compile(text) -> query | nil, message (naming the column);
-- query(value) -> result | nil, message. Null is nil inside, azbatch.null
-- where a table must hold it.
local azbatch = require "azbatch"

local M = {}

local null = azbatch.json.null
local array = azbatch.json.array
local ARRAY_MT = getmetatable(array {})

local function is_array(t)
  return type(t) == "table" and (getmetatable(t) == ARRAY_MT or (next(t) ~= nil and t[1] ~= nil))
end
local function is_object(t) return type(t) == "table" and not is_array(t) end
local function nonnull(v) if v == null then return nil end return v end

-- {==================================================================
-- Lexer
-- ===================================================================

local SIMPLE = {
  ["."] = "dot", ["*"] = "star", [","] = "comma", [":"] = "colon", ["@"] = "current", ["]"] = "rbracket",
  ["{"] = "lbrace", ["}"] = "rbrace", ["("] = "lparen", [")"] = "rparen",
}

local function lex(text)
  local tokens, i, n = {}, 1, #text
  local function add(kind, value, at) tokens[#tokens + 1] = { kind = kind, value = value, pos = at } end
  while i <= n do
    local c = text:sub(i, i)
    local two = text:sub(i, i + 1)
    if c:match("%s") then
      i = i + 1
    elseif c:match("[%a_]") then
      local word = text:match("^[%w_]+", i)
      add("identifier", word, i)
      i = i + #word
    elseif c:match("%d") or (c == "-" and text:sub(i + 1, i + 1):match("%d")) then
      local num = text:match("^%-?%d+", i)
      add("number", math.tointeger(tonumber(num)), i)
      i = i + #num
    elseif c == '"' then
      local j = i + 1
      while j <= n and text:sub(j, j) ~= '"' do j = j + (text:sub(j, j) == "\\" and 2 or 1) end
      if j > n then return nil, i, "unterminated quoted identifier" end
      local s = azbatch.json.decode(text:sub(i, j))
      if type(s) ~= "string" then return nil, i, "invalid quoted identifier" end
      add("quoted", s, i)
      i = j + 1
    elseif c == "'" then
      local j, parts = i + 1, {}
      while j <= n and text:sub(j, j) ~= "'" do
        if text:sub(j, j + 1) == "\\'" then parts[#parts + 1] = "'"; j = j + 2
        else parts[#parts + 1] = text:sub(j, j); j = j + 1 end
      end
      if j > n then return nil, i, "unterminated raw string literal" end
      add("literal", table.concat(parts), i)
      i = j + 1
    elseif c == "`" then
      local j, parts = i + 1, {}
      while j <= n and text:sub(j, j) ~= "`" do
        if text:sub(j, j + 1) == "\\`" then parts[#parts + 1] = "`"; j = j + 2
        else parts[#parts + 1] = text:sub(j, j); j = j + 1 end
      end
      if j > n then return nil, i, "unterminated JSON literal" end
      local raw = table.concat(parts)
      local v, why = azbatch.json.decode(raw)
      if v == nil and why then
        -- the spec's older form: `foo` means the string "foo"
        v = azbatch.json.decode('"' .. raw:gsub("^%s+", ""):gsub("%s+$", "") .. '"')
        if v == nil then return nil, i, "invalid JSON literal" end
      end
      add("literal", v, i)
      i = j + 1
    elseif two == "[]" then add("flatten", nil, i); i = i + 2
    elseif two == "[?" then add("filter", nil, i); i = i + 2
    elseif c == "[" then add("lbracket", nil, i); i = i + 1
    elseif two == "||" then add("or", nil, i); i = i + 2
    elseif two == "&&" then add("and", nil, i); i = i + 2
    elseif c == "|" then add("pipe", nil, i); i = i + 1
    elseif c == "&" then add("expref", nil, i); i = i + 1
    elseif two == "==" or two == "!=" or two == "<=" or two == ">=" then add("compare", two, i); i = i + 2
    elseif c == "<" or c == ">" then add("compare", c, i); i = i + 1
    elseif c == "!" then add("not", nil, i); i = i + 1
    elseif c == "=" then return nil, i, "'=' is not an operator (compare with '==')"
    elseif SIMPLE[c] then add(SIMPLE[c], nil, i); i = i + 1
    else
      return nil, i, ("unexpected character %q"):format(c)
    end
  end
  add("eof", nil, n + 1)
  return tokens
end

-- }==================================================================


-- {==================================================================
-- Parser (top-down operator precedence, the spec's binding powers)
-- ===================================================================

local BP = { eof = 0, identifier = 0, quoted = 0, literal = 0, rbracket = 0, rparen = 0, comma = 0,
  rbrace = 0, number = 0, current = 0, expref = 0, colon = 0, pipe = 1, ["or"] = 2, ["and"] = 3,
  compare = 5, flatten = 9, star = 20, filter = 21, dot = 40, ["not"] = 45, lbrace = 50, lbracket = 55,
  lparen = 60 }

-- name -> {min, max} arguments (max nil: any number)
local FUNCTIONS = {
  length = { 1, 1 }, contains = { 2, 2 }, starts_with = { 2, 2 }, ends_with = { 2, 2 }, keys = { 1, 1 },
  values = { 1, 1 }, sort = { 1, 1 }, sort_by = { 2, 2 }, max = { 1, 1 }, min = { 1, 1 }, max_by = { 2, 2 },
  min_by = { 2, 2 }, sum = { 1, 1 }, avg = { 1, 1 }, join = { 2, 2 }, to_string = { 1, 1 },
  to_number = { 1, 1 }, type = { 1, 1 }, not_null = { 1 }, reverse = { 1, 1 }, abs = { 1, 1 },
  floor = { 1, 1 }, ceil = { 1, 1 }, to_array = { 1, 1 }, merge = { 1 },
}

local DESCRIBE = { eof = "the end", rbracket = "']'", rparen = "')'", rbrace = "'}'", comma = "','",
  colon = "':'", lbracket = "'['", lbrace = "'{'", lparen = "'('", dot = "'.'", star = "'*'",
  pipe = "'|'", ["or"] = "'||'", ["and"] = "'&&'", ["not"] = "'!'", flatten = "'[]'", filter = "'[?'",
  current = "'@'", expref = "'&'", number = "a number", literal = "a literal", identifier = "an identifier",
  quoted = "a quoted identifier", compare = "a comparison" }

local Parser = {}
Parser.__index = Parser

local function parse_error(tok, what)
  error({ pos = tok.pos, msg = what }, 0)
end

function Parser:peek(k) return self.tokens[self.i + (k or 0)] end
function Parser:next_token()
  local t = self.tokens[self.i]
  self.i = self.i + 1
  return t
end
function Parser:expect(kind)
  local t = self:peek()
  if t.kind ~= kind then
    parse_error(t, ("expected %s, got %s"):format(DESCRIBE[kind], DESCRIBE[t.kind]))
  end
  return self:next_token()
end

function Parser:expression(rbp)
  local left = self:nud(self:next_token())
  while rbp < BP[self:peek().kind] do
    left = self:led(self:next_token(), left)
  end
  return left
end

local CURRENT = { type = "current" }

function Parser:projection_rhs(rbp)
  local t = self:peek()
  if BP[t.kind] < 10 then return CURRENT end
  if t.kind == "lbracket" or t.kind == "filter" then return self:expression(rbp) end
  if t.kind == "dot" then
    self:next_token()
    return self:dot_rhs(rbp)
  end
  parse_error(t, "expected '.', '[' or '[?' after a projection, got " .. DESCRIBE[t.kind])
end

function Parser:dot_rhs(rbp)
  local t = self:peek()
  if t.kind == "identifier" or t.kind == "quoted" or t.kind == "star" then return self:expression(rbp) end
  if t.kind == "lbracket" then
    self:next_token()
    return self:multiselect_list()
  end
  if t.kind == "lbrace" then
    self:next_token()
    return self:multiselect_hash()
  end
  parse_error(t, "expected an identifier, '*', '[' or '{' after '.', got " .. DESCRIBE[t.kind])
end

function Parser:multiselect_list()
  local items = {}
  repeat
    items[#items + 1] = self:expression(0)
  until self:peek().kind ~= "comma" or not self:next_token()
  self:expect("rbracket")
  return { type = "list", items = items }
end

function Parser:multiselect_hash()
  local pairs_ = {}
  repeat
    local key = self:peek()
    if key.kind ~= "identifier" and key.kind ~= "quoted" then
      parse_error(key, "expected a key name in '{...}', got " .. DESCRIBE[key.kind])
    end
    self:next_token()
    self:expect("colon")
    pairs_[#pairs_ + 1] = { key = key.value, value = self:expression(0) }
  until self:peek().kind ~= "comma" or not self:next_token()
  self:expect("rbrace")
  return { type = "hash", pairs = pairs_ }
end

-- [N] or [start:stop:step], after the '['.
function Parser:index_expression()
  local parts, current = { nil, nil, nil }, 1
  local t = self:peek()
  if t.kind == "number" and self:peek(1).kind == "rbracket" then
    self:next_token()
    self:next_token()
    return { type = "index", index = t.value }
  end
  while true do
    t = self:peek()
    if t.kind == "rbracket" then break end
    if t.kind == "colon" then
      current = current + 1
      if current > 3 then parse_error(t, "a slice has at most two ':'") end
      self:next_token()
    elseif t.kind == "number" then
      parts[current] = t.value
      self:next_token()
    else
      parse_error(t, "expected a number, ':' or ']' in '[...]', got " .. DESCRIBE[t.kind])
    end
  end
  self:expect("rbracket")
  if parts[3] == 0 then parse_error(t, "a slice step cannot be 0") end
  return { type = "slice", start = parts[1], stop = parts[2], step = parts[3] }
end

function Parser:nud(t)
  local k = t.kind
  if k == "literal" then return { type = "literal", value = t.value } end
  if k == "identifier" then return { type = "field", name = t.value } end
  if k == "quoted" then
    if self:peek().kind == "lparen" then parse_error(self:peek(), "a quoted identifier cannot be called") end
    return { type = "field", name = t.value }
  end
  if k == "current" then return CURRENT end
  if k == "star" then return { type = "values", left = CURRENT, right = self:projection_rhs(BP.star) } end
  if k == "not" then return { type = "not", expr = self:expression(BP["not"]) } end
  if k == "lparen" then
    local e = self:expression(0)
    self:expect("rparen")
    return e
  end
  if k == "flatten" then
    return { type = "project", left = { type = "flatten", expr = CURRENT }, right = self:projection_rhs(BP.flatten) }
  end
  if k == "filter" then return self:led(t, CURRENT) end
  if k == "lbrace" then return self:multiselect_hash() end
  if k == "expref" then return { type = "expref", expr = self:expression(BP.expref) } end
  if k == "lbracket" then
    local nk = self:peek().kind
    if nk == "number" or nk == "colon" then
      local idx = self:index_expression()
      if idx.type == "slice" then
        return { type = "project", left = { type = "sub", left = CURRENT, right = idx },
          right = self:projection_rhs(BP.star) }
      end
      return { type = "sub", left = CURRENT, right = idx }
    end
    if nk == "star" and self:peek(1).kind == "rbracket" then
      self:next_token()
      self:next_token()
      return { type = "project", left = CURRENT, right = self:projection_rhs(BP.star) }
    end
    return self:multiselect_list()
  end
  if k == "eof" then parse_error(t, "the query ends too soon") end
  parse_error(t, ("did not expect %s here"):format(DESCRIBE[k]))
end

function Parser:led(t, left)
  local k = t.kind
  if k == "dot" then
    if self:peek().kind == "star" then
      self:next_token()
      return { type = "values", left = left, right = self:projection_rhs(BP.dot) }
    end
    return { type = "sub", left = left, right = self:dot_rhs(BP.dot) }
  end
  if k == "pipe" then return { type = "pipe", left = left, right = self:expression(BP.pipe) } end
  if k == "or" then return { type = "or", left = left, right = self:expression(BP["or"]) } end
  if k == "and" then return { type = "and", left = left, right = self:expression(BP["and"]) } end
  if k == "compare" then return { type = "compare", op = t.value, left = left, right = self:expression(BP.compare) } end
  if k == "flatten" then
    return { type = "project", left = { type = "flatten", expr = left }, right = self:projection_rhs(BP.flatten) }
  end
  if k == "filter" then
    local cond = self:expression(0)
    self:expect("rbracket")
    return { type = "filter", left = left, cond = cond, right = self:projection_rhs(BP.filter) }
  end
  if k == "lbracket" then
    local nk = self:peek().kind
    if nk == "number" or nk == "colon" then
      local idx = self:index_expression()
      if idx.type == "slice" then
        return { type = "project", left = { type = "sub", left = left, right = idx },
          right = self:projection_rhs(BP.star) }
      end
      return { type = "sub", left = left, right = idx }
    end
    self:expect("star")
    self:expect("rbracket")
    return { type = "project", left = left, right = self:projection_rhs(BP.star) }
  end
  if k == "lparen" then
    if left.type ~= "field" then parse_error(t, "only a function name can be called") end
    local spec = FUNCTIONS[left.name]
    if not spec then parse_error(t, ("unknown function %s()"):format(left.name)) end
    local args = {}
    while self:peek().kind ~= "rparen" do
      args[#args + 1] = self:expression(0)
      if self:peek().kind == "comma" then self:next_token() elseif self:peek().kind ~= "rparen" then
        parse_error(self:peek(), "expected ',' or ')' in the arguments of " .. left.name .. "()")
      end
    end
    self:expect("rparen")
    if #args < spec[1] or (spec[2] and #args > spec[2]) then
      parse_error(t, ("%s() takes %s argument%s, got %d"):format(left.name,
        spec[2] == spec[1] and tostring(spec[1]) or ("at least " .. spec[1]), spec[1] == 1 and "" or "s", #args))
    end
    return { type = "call", name = left.name, args = args }
  end
  parse_error(t, ("did not expect %s here"):format(DESCRIBE[k]))
end

-- }==================================================================


-- {==================================================================
-- Evaluation
-- ===================================================================

local function truthy(v)
  if v == nil or v == null or v == false or v == "" then return false end
  if type(v) == "table" then return next(v) ~= nil end
  return true
end

local function equal(a, b)
  a, b = nonnull(a), nonnull(b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  if is_array(a) ~= is_array(b) then return false end
  for k, v in pairs(a) do if not equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function type_name(v)
  v = nonnull(v)
  if v == nil then return "null" end
  if type(v) == "table" then return is_array(v) and "array" or "object" end
  return type(v)
end

local function type_error(fname, want, v)
  error({ runtime = true, msg = ("%s() expects %s, got %s"):format(fname, want, type_name(v)) }, 0)
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
  return keys
end

local eval

local function slice(list, s)
  local n = #list
  local step = s.step or 1
  local function clamp(v, default)
    if v == nil then return default end
    if v < 0 then v = v + n; if v < 0 then v = step < 0 and -1 or 0 end
    elseif v >= n then v = step < 0 and n - 1 or n end
    return v
  end
  local start = clamp(s.start, step < 0 and n - 1 or 0)
  local stop = clamp(s.stop, step < 0 and -1 or n)
  local out = array {}
  local i = start
  while (step > 0 and i < stop) or (step < 0 and i > stop) do
    out[#out + 1] = list[i + 1]
    i = i + step
  end
  return out
end

local function project(base, right)
  local out = array {}
  for _, item in ipairs(base) do
    local v = nonnull(eval(right, item))
    if v ~= nil then out[#out + 1] = v end
  end
  return out
end

local function by_key(fname, list, expref, keep)
  if not is_array(list) then type_error(fname, "an array", list) end
  local keyed = {}
  for i, item in ipairs(list) do
    local k = nonnull(eval(expref.expr, item))
    if type(k) ~= "number" and type(k) ~= "string" then type_error(fname, "keys that are numbers or strings", k) end
    keyed[i] = { key = k, item = item, i = i }
    if i > 1 and type(k) ~= type(keyed[1].key) then type_error(fname, "keys of one type", k) end
  end
  return keep(keyed)
end

local function numbers(fname, list)
  if not is_array(list) then type_error(fname, "an array of numbers", list) end
  for _, v in ipairs(list) do if type(v) ~= "number" then type_error(fname, "an array of numbers", list) end end
  return list
end

local CALLS = {}
function CALLS.length(a)
  local v = nonnull(a[1])
  if type(v) == "string" then return utf8.len(v) or #v end
  if type(v) == "table" then
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    return n
  end
  type_error("length", "a string, array or object", v)
end
function CALLS.contains(a)
  local subject, search = nonnull(a[1]), nonnull(a[2])
  if type(subject) == "string" then
    return type(search) == "string" and subject:find(search, 1, true) ~= nil
  end
  if is_array(subject) then
    for _, v in ipairs(subject) do if equal(v, search) then return true end end
    return false
  end
  type_error("contains", "a string or an array", subject)
end
function CALLS.starts_with(a)
  if type(a[1]) ~= "string" or type(a[2]) ~= "string" then type_error("starts_with", "strings", a[1]) end
  return a[1]:sub(1, #a[2]) == a[2]
end
function CALLS.ends_with(a)
  if type(a[1]) ~= "string" or type(a[2]) ~= "string" then type_error("ends_with", "strings", a[1]) end
  return #a[2] == 0 or a[1]:sub(-#a[2]) == a[2]
end
function CALLS.keys(a)
  if not is_object(a[1]) then type_error("keys", "an object", a[1]) end
  return array(sorted_keys(a[1]))
end
function CALLS.values(a)
  if not is_object(a[1]) then type_error("values", "an object", a[1]) end
  local out = array {}
  for _, k in ipairs(sorted_keys(a[1])) do out[#out + 1] = a[1][k] end
  return out
end
function CALLS.sort(a)
  local list = a[1]
  if not is_array(list) then type_error("sort", "an array", list) end
  local copy = array(table.move(list, 1, #list, 1, {}))
  for _, v in ipairs(copy) do
    if type(v) ~= type(copy[1]) or (type(v) ~= "number" and type(v) ~= "string") then
      type_error("sort", "an array of numbers or of strings", list)
    end
  end
  table.sort(copy)
  return copy
end
function CALLS.sort_by(a)
  if type(a[2]) ~= "table" or a[2].type ~= "expref" then type_error("sort_by", "an &expression", a[2]) end
  return by_key("sort_by", a[1], a[2], function(keyed)
    table.sort(keyed, function(x, y) if x.key == y.key then return x.i < y.i end return x.key < y.key end)
    local out = array {}
    for i, k in ipairs(keyed) do out[i] = k.item end
    return out
  end)
end
local function extreme(fname, pick)
  return function(a)
    local list = a[1]
    if not is_array(list) then type_error(fname, "an array", list) end
    local best
    for _, v in ipairs(list) do
      if type(v) ~= "number" and type(v) ~= "string" then type_error(fname, "numbers or strings", v) end
      if best == nil or pick(v, best) then best = v end
    end
    return best
  end
end
CALLS.max = extreme("max", function(x, y) return x > y end)
CALLS.min = extreme("min", function(x, y) return x < y end)
local function extreme_by(fname, pick)
  return function(a)
    if type(a[2]) ~= "table" or a[2].type ~= "expref" then type_error(fname, "an &expression", a[2]) end
    return by_key(fname, a[1], a[2], function(keyed)
      local best
      for _, k in ipairs(keyed) do if best == nil or pick(k.key, best.key) then best = k end end
      return best and best.item
    end)
  end
end
CALLS.max_by = extreme_by("max_by", function(x, y) return x > y end)
CALLS.min_by = extreme_by("min_by", function(x, y) return x < y end)
function CALLS.sum(a)
  local s = 0
  for _, v in ipairs(numbers("sum", a[1])) do s = s + v end
  return s
end
function CALLS.avg(a)
  local list = numbers("avg", a[1])
  if #list == 0 then return nil end
  return CALLS.sum(a) / #list
end
function CALLS.join(a)
  if type(a[1]) ~= "string" then type_error("join", "a string separator", a[1]) end
  if not is_array(a[2]) then type_error("join", "an array of strings", a[2]) end
  for _, v in ipairs(a[2]) do if type(v) ~= "string" then type_error("join", "an array of strings", a[2]) end end
  return table.concat(a[2], a[1])
end
function CALLS.to_string(a)
  if type(a[1]) == "string" then return a[1] end
  return (azbatch.json.encode(a[1] == nil and null or a[1]))
end
function CALLS.to_number(a)
  local v = nonnull(a[1])
  if type(v) == "number" then return v end
  if type(v) == "string" and v:match("^%s*%-?%d+%.?%d*[eE]?[%-+]?%d*%s*$") then return tonumber(v) end
  return nil
end
function CALLS.type(a) return type_name(a[1]) end
function CALLS.not_null(a)
  for i = 1, a.n do if nonnull(a[i]) ~= nil then return a[i] end end
  return nil
end
function CALLS.reverse(a)
  local v = nonnull(a[1])
  if type(v) == "string" then return v:reverse() end
  if not is_array(v) then type_error("reverse", "a string or an array", v) end
  local out = array {}
  for i = #v, 1, -1 do out[#out + 1] = v[i] end
  return out
end
local function num1(fname, f)
  return function(a)
    if type(a[1]) ~= "number" then type_error(fname, "a number", a[1]) end
    return f(a[1])
  end
end
CALLS.abs = num1("abs", math.abs)
CALLS.floor = num1("floor", math.floor)
CALLS.ceil = num1("ceil", math.ceil)
function CALLS.to_array(a)
  if is_array(a[1]) then return a[1] end
  return array { a[1] == nil and null or a[1] }
end
function CALLS.merge(a)
  local out = {}
  for i = 1, a.n do
    if not is_object(a[i]) then type_error("merge", "objects", a[i]) end
    for k, v in pairs(a[i]) do out[k] = v end
  end
  return out
end

function eval(node, v)
  local t = node.type
  if t == "current" then return v end
  if t == "literal" then return nonnull(node.value) end
  if t == "field" then
    if is_object(v) then return nonnull(v[node.name]) end
    return nil
  end
  if t == "sub" then
    local left = eval(node.left, v)
    if left == nil then return nil end
    return eval(node.right, left)
  end
  if t == "index" then
    if not is_array(v) then return nil end
    local i = node.index
    if i < 0 then i = #v + i end
    return nonnull(v[i + 1])
  end
  if t == "slice" then
    if not is_array(v) then return nil end
    return slice(v, node)
  end
  if t == "project" then
    local base = eval(node.left, v)
    if not is_array(base) then return nil end
    return project(base, node.right)
  end
  if t == "values" then
    local base = eval(node.left, v)
    if not is_object(base) then return nil end
    local list = {}
    for _, k in ipairs(sorted_keys(base)) do list[#list + 1] = base[k] end
    return project(list, node.right)
  end
  if t == "flatten" then
    local base = eval(node.expr, v)
    if not is_array(base) then return nil end
    local out = array {}
    for _, item in ipairs(base) do
      if is_array(item) then
        for _, x in ipairs(item) do out[#out + 1] = x end
      elseif nonnull(item) ~= nil then
        out[#out + 1] = item
      end
    end
    return out
  end
  if t == "filter" then
    local base = eval(node.left, v)
    if not is_array(base) then return nil end
    local kept = {}
    for _, item in ipairs(base) do
      if truthy(eval(node.cond, item)) then kept[#kept + 1] = item end
    end
    return project(kept, node.right)
  end
  if t == "list" then
    if v == nil then return nil end
    local out = array {}
    for i, item in ipairs(node.items) do
      local r = eval(item, v)
      out[i] = r == nil and null or r
    end
    return out
  end
  if t == "hash" then
    if v == nil then return nil end
    local out = {}
    for _, p in ipairs(node.pairs) do
      local r = eval(p.value, v)
      out[p.key] = r == nil and null or r
    end
    return out
  end
  if t == "pipe" then return eval(node.right, eval(node.left, v)) end
  if t == "or" then
    local left = eval(node.left, v)
    if truthy(left) then return left end
    return eval(node.right, v)
  end
  if t == "and" then
    local left = eval(node.left, v)
    if not truthy(left) then return left end
    return eval(node.right, v)
  end
  if t == "not" then return not truthy(eval(node.expr, v)) end
  if t == "compare" then
    local a, b = eval(node.left, v), eval(node.right, v)
    local op = node.op
    if op == "==" then return equal(a, b) end
    if op == "!=" then return not equal(a, b) end
    if type(a) ~= "number" or type(b) ~= "number" then return nil end
    if op == "<" then return a < b elseif op == "<=" then return a <= b
    elseif op == ">" then return a > b else return a >= b end
  end
  if t == "expref" then return node end
  if t == "call" then
    local args = { n = #node.args }
    for i, a in ipairs(node.args) do
      args[i] = a.type == "expref" and a or eval(a, v)
    end
    return CALLS[node.name](args)
  end
  error("query: unknown node " .. tostring(t))
end

-- }==================================================================

--- Compile a query. Returns a function value -> result | nil, message;
-- or nil and a message naming the column of the problem.
function M.compile(text)
  local tokens, at, why = lex(text)
  if not tokens then return nil, ("invalid query at column %d: %s"):format(at, why) end
  local p = setmetatable({ tokens = tokens, i = 1 }, Parser)
  local ok, ast = pcall(function()
    local e = p:expression(0)
    if p:peek().kind ~= "eof" then parse_error(p:peek(), ("did not expect %s here"):format(DESCRIBE[p:peek().kind])) end
    return e
  end)
  if not ok then
    if type(ast) == "table" then return nil, ("invalid query at column %d: %s"):format(ast.pos, ast.msg) end
    error(ast, 0)
  end
  return function(value)
    local ok2, result = pcall(eval, ast, nonnull(value))
    if not ok2 then
      if type(result) == "table" and result.runtime then return nil, "query: " .. result.msg end
      error(result, 0)
    end
    return result
  end
end

return M
