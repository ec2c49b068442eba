-- The output formats, in this process: json, jsonc, table, tsv and none,
-- with and without --query; and what a terminal must never be sent.
local output = require "azbatch.cli_output"
local json = require "azbatch.json"

local function sink(terminal)
  local parts = {}
  return setmetatable({ terminal = terminal }, { __index = {
    write = function(self, ...)
      for i = 1, select("#", ...) do parts[#parts + 1] = select(i, ...) end
      return self
    end,
    text = function() return table.concat(parts) end,
  } })
end

local POOLS = assert(json.decode('[{"id": "a", "n": 2, "on": true, "nested": {"x": 1}}, {"id": "b", "n": 1.5}]'))
local VIEW = { columns = { { "Id", function(p) return p.id end }, { "Nodes", function(p) return p.n end } } }

local function write(value, fmt, view, opts)
  local w = sink()
  assert(output.write(w, value, fmt, view, opts))
  return w:text()
end

describe("CLI output formats", function()
  it("prints json indented, with sorted keys and integers as integers", function()
    assert.equal('[\n  {\n    "id": "a",\n    "n": 2,\n    "nested": {\n      "x": 1\n    },\n    "on": true\n  },'
      .. '\n  {\n    "id": "b",\n    "n": 1.5\n  }\n]\n', write(POOLS, "json", VIEW))
  end)

  it("colours jsonc only when asked for a terminal", function()
    local plain = write(POOLS, "jsonc", VIEW, { terminal = false })
    assert.equal(write(POOLS, "json", VIEW), plain)
    local coloured = write({ k = "v", n = 1, t = true, z = json.null }, "jsonc", VIEW, { terminal = true })
    assert.equal('{\n  \27[94m"k"\27[0m: \27[32m"v"\27[0m,\n  \27[94m"n"\27[0m: \27[36m1\27[0m,\n'
      .. '  \27[94m"t"\27[0m: \27[35mtrue\27[0m,\n  \27[94m"z"\27[0m: \27[35mnull\27[0m\n}\n', coloured)
  end)

  it("prints a verb's columns as a table and as tsv without a header", function()
    assert.equal("Id  Nodes\n--  -----\na   2\nb   1.5\n", write(POOLS, "table", VIEW))
    assert.equal("a\t2\nb\t1.5\n", write(POOLS, "tsv", VIEW))
  end)

  it("prints nothing for none", function()
    assert.equal("", write(POOLS, "none", VIEW))
  end)

  it("prints what a query left as az does: a column per scalar field, capitalised", function()
    assert.equal("Id  N    On\n--  ---  ----\na   2    true\nb   1.5\n",
      write(POOLS, "table", VIEW, { generic = true }))
    assert.equal("a\t2\ttrue\nb\t1.5\t\n", write(POOLS, "tsv", VIEW, { generic = true }))
    assert.equal("Result\n------\na\nb\n", write(json.array { "a", "b" }, "table", nil, { generic = true }))
    assert.equal("a\nb\n", write(json.array { "a", "b" }, "tsv", nil, { generic = true }))
    assert.equal("7\n", write(7, "tsv", nil, { generic = true }))
  end)

  it("prints nothing for a query that selected nothing, in every format", function()
    for _, fmt in ipairs(output.FORMATS) do
      assert.equal("", write(nil, fmt, VIEW, { generic = true }))
    end
  end)

  it("escapes what a terminal acts on inside JSON strings, so the value decodes the same", function()
    local evil = "a\127b\194\155c\226\128\174d\226\128\168e\226\129\167f\27g"
    local text = write({ v = evil }, "json")
    for _, bad in ipairs { "\127", "\194\155", "\226\128\174", "\226\128\168", "\226\129\167", "\27" } do
      assert.falsy(text:find(bad, 1, true))
    end
    assert.equal(evil, assert(json.decode(text)).v)
    assert.matches('\\u007f', text)
    assert.matches('\\u009b', text)
    assert.matches('\\u202e', text)
  end)

  it("cleans table and tsv cells: no control characters, no tab inside a tsv value", function()
    local rows = { { id = "x\27[2J\ty\r\nz" } }
    local cols = { { "Id", function(r) return r.id end } }
    local tsv = output.tsv_text(rows, cols)
    assert.falsy(tsv:find("\t", 1, true))          -- one column: a tab would split it
    assert.falsy(tsv:find("\27", 1, true))
    assert.equal(1, select(2, tsv:gsub("\n", "")))
  end)

  it("says when an answer cannot be printed as JSON, printing nothing", function()
    local w = sink()
    local ok, why = output.write(w, { f = print }, "json")
    assert.is_nil(ok)
    assert.equal("cannot print the answer as JSON: value.f: cannot encode a function", why)
    assert.equal("", w:text())
  end)

  it("writes a float too large for an integer as digits, not 1e+20", function()
    assert.equal("100000000000000000000\n", write(1e20, "json"))
  end)
end)
