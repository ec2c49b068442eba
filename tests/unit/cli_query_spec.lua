-- --query: the JMESPath subset, row by row against one pool list, and the
-- errors that name their column.
local query = require "azbatch.cli_query"
local json = require "azbatch.json"

local POOLS = assert(json.decode([[
[{"id": "render-v13", "state": "active", "allocationState": "steady", "targetDedicatedNodes": 2,
  "metadata": [{"name": "team", "value": "vfx"}], "tags": [1, 2],
  "virtualMachineConfiguration": {"imageReference": {"publisher": "Canonical", "sku": "22_04-lts"}}},
 {"id": "render-v14", "state": "active", "allocationState": "resizing", "targetDedicatedNodes": 10,
  "metadata": [], "tags": [3], "enableAutoScale": false},
 {"id": "old", "state": "deleting", "allocationState": "steady", "targetDedicatedNodes": 0,
  "tags": [], "displayName": null}]
]]))

local function q(text, value)
  local f = assert(query.compile(text))
  local r, why = f(value == nil and POOLS or value)
  assert(why == nil, why)
  return r
end

local function encoded(v)
  if v == nil then return "nil" end
  return assert(json.encode(v))
end

describe("--query", function()
  local rows = {
    -- identifiers, sub-expressions, indexes
    { "[0].id", '"render-v13"' },
    { "[-1].id", '"old"' },
    { "[5].id", "nil" },
    { "[0].virtualMachineConfiguration.imageReference.sku", '"22_04-lts"' },
    { '[0]."allocationState"', '"steady"' },
    { "[0].nope.deeper", "nil" },
    { "[0].id.length", "nil" },
    -- projections and flattening
    { "[*].id", '["render-v13","render-v14","old"]' },
    { "[].id", '["render-v13","render-v14","old"]' },
    { "[*].displayName", "[]" },
    { "[].tags[]", "[1,2,3]" },
    { "[*].tags", "[[1,2],[3],[]]" },
    { "[*].tags[0]", "[1,3]" },
    { "[0].virtualMachineConfiguration.imageReference.*", '["Canonical","22_04-lts"]' },
    { "[0:2].id", '["render-v13","render-v14"]' },
    { "[::-1].id", '["old","render-v14","render-v13"]' },
    { "[1:].targetDedicatedNodes", "[10,0]" },
    -- filters
    { "[?state=='active'].id", '["render-v13","render-v14"]' },
    { "[?state==`active`].id", '["render-v13","render-v14"]' },
    { "[?state=='active' && allocationState=='steady'].id", '["render-v13"]' },
    { "[?state=='deleting' || targetDedicatedNodes > `5`].id", '["render-v14","old"]' },
    { "[?!(state=='active')].id", '["old"]' },
    { "[?targetDedicatedNodes >= `2`].targetDedicatedNodes", "[2,10]" },
    { "[?targetDedicatedNodes < `2`].id", '["old"]' },
    { "[?targetDedicatedNodes <= `2`].id", '["render-v13","old"]' },
    { "[?targetDedicatedNodes != `10`].id", '["render-v13","old"]' },
    { "[?metadata].id", '["render-v13"]' },
    { "[?enableAutoScale == `false`].id", '["render-v14"]' },
    { "[?state > 'a'].id", "[]" },          -- strings do not order: null, so nothing passes
    { "[?contains(id, 'v1')].id", '["render-v13","render-v14"]' },
    { "[?starts_with(id, 'render')] | length(@)", "2" },
    -- multiselect
    { "[*].{id: id, n: targetDedicatedNodes}",
      '[{"id":"render-v13","n":2},{"id":"render-v14","n":10},{"id":"old","n":0}]' },
    { "[*].[id, state]", '[["render-v13","active"],["render-v14","active"],["old","deleting"]]' },
    { "[0].{id: id, missing: nope}", '{"id":"render-v13","missing":null}' },
    { "[0].[id, nope]", '["render-v13",null]' },
    { "{first: [0].id, count: length(@)}", '{"count":3,"first":"render-v13"}' },
    -- pipes stop projections
    { "[*].id | [0]", '"render-v13"' },
    { "[*].id[0]", "[]" },
    { "[?state=='active'] | [1].id", '"render-v14"' },
    -- literals and the current node
    { "`{\"a\": [1, 2]}`.a[1]", "2" },
    { "'raw \\' quote'", '"raw \' quote"' },
    { "`true`", "true" },
    { "@[0].id", '"render-v13"' },
    -- functions
    { "length(@)", "3" },
    { "length([0].id)", "10" },
    { "length([0].metadata[0])", "2" },
    { "sum([*].targetDedicatedNodes)", "12" },
    { "avg([*].targetDedicatedNodes)", "4" },
    { "max([*].targetDedicatedNodes)", "10" },
    { "min([*].id)", '"old"' },
    { "sort([*].id)", '["old","render-v13","render-v14"]' },
    { "sort_by(@, &targetDedicatedNodes)[*].id", '["old","render-v13","render-v14"]' },
    { "max_by(@, &targetDedicatedNodes).id", '"render-v14"' },
    { "min_by(@, &targetDedicatedNodes).id", '"old"' },
    { "join(', ', [*].id)", '"render-v13, render-v14, old"' },
    { "keys([0].virtualMachineConfiguration.imageReference)", '["publisher","sku"]' },
    { "values([0].virtualMachineConfiguration.imageReference)", '["Canonical","22_04-lts"]' },
    { "reverse([*].targetDedicatedNodes)", "[0,10,2]" },
    { "to_string([0].targetDedicatedNodes)", '"2"' },
    { "to_number('42')", "42" },
    { "to_number('x')", "nil" },
    { "type([0].tags)", '"array"' },
    { "not_null([0].nope, [0].id)", '"render-v13"' },
    { "ends_with([0].id, 'v13')", "true" },
    { "abs(`-3`)", "3" },
    { "to_array([0].id)", '["render-v13"]' },
    { "merge(`{\"a\":1}`, `{\"b\":2}`)", '{"a":1,"b":2}' },
  }
  for _, row in ipairs(rows) do
    it(row[1] .. " -> " .. row[2], function()
      assert.equal(row[2], encoded(q(row[1])))
    end)
  end

  it("keeps an empty projection an array, so it prints as []", function()
    assert.equal("[]", encoded(q("[?state=='gone'].id")))
  end)

  it("gives null for a projection of something that is not a list", function()
    assert.is_nil(q("id[*]", { id = "x" }))
    assert.is_nil(q("*.a", "scalar"))
  end)

  local errors = {
    { "[0", 3, "expected a number, ':' or ']'" },
    { "[?a=b]", 4, "'=' is not an operator" },
    { "a..b", 3, "after '.'" },
    { "[0].id.", 8, "after '.', got the end" },
    { "'open", 1, "unterminated raw string literal" },
    { '"open', 1, "unterminated quoted identifier" },
    { "`open", 1, "unterminated JSON literal" },
    { "nosuch(@)", 7, "unknown function nosuch%(%)" },
    { "length(@, @)", 7, "length%(%) takes 1 argument, got 2" },
    { "join(',')", 5, "join%(%) takes 2 arguments, got 1" },
    { "[1:2:0]", 7, "a slice step cannot be 0" },
    { "foo bar", 5, "did not expect an identifier here" },
    { "a[*]b", 5, "did not expect an identifier here" },
    { ")", 1, "did not expect '%)' here" },
    { "a # b", 3, "unexpected character" },
    { "", 1, "the query ends too soon" },
    { "{a}", 3, "expected ':'" },
    { '"q"(@)', 4, "a quoted identifier cannot be called" },
    { "[0](@)", 4, "only a function name can be called" },
    { "[*]{a: b}", 4, "after a projection" },
  }
  for _, row in ipairs(errors) do
    it(("refuses %q at column %d"):format(row[1], row[2]), function()
      local f, why = query.compile(row[1])
      assert.is_nil(f)
      assert.matches("^invalid query at column " .. row[2] .. ": ", why)
      assert.matches(row[3], why)
    end)
  end

  it("reports a function given the wrong type when it runs, not as a crash", function()
    local f = assert(query.compile("length(`1`)"))
    local r, why = f(POOLS)
    assert.is_nil(r)
    assert.equal("query: length() expects a string, array or object, got number", why)
    f = assert(query.compile("sum([*].id)"))
    r, why = f(POOLS)
    assert.is_nil(r)
    assert.matches("^query: sum%(%) expects an array of numbers", why)
  end)
end)
