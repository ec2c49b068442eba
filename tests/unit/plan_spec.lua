-- The large-pool planner: replicas per 600 VMs, resizeTimeout per 1000 VMs.
local core = require "azbatch.core"

local function fails(message, field, v, msg, err)
  assert.is_nil(v)
  assert.equal(message, msg)
  assert.is_table(err)
  assert.equal("validation", err.kind)
  assert.equal(field, err.field)
end

local REPLICA_NOTE = "one gallery replica per 600 VMs: %d VMs need %d replica(s) of the image "
  .. "version in the pool's region"
local TIMEOUT_NOTE = "fixed-size pools need a resizeTimeout of at least 15 minutes per 1000 VMs, "
  .. "never below the 15-minute default: %s"
local AUTOSCALE_NOTE = "resizeTimeout is ignored by autoscale pools; plan nodes as the largest "
  .. "size the formula can reach"

describe("core.plan figures", function()
  -- nodes, replicas, resizeTimeout, seconds
  local rows = {
    { 0, 1, "PT15M", 900 },
    { 1, 1, "PT15M", 900 },
    { 600, 1, "PT15M", 900 },
    { 601, 2, "PT15M", 900 },
    { 1000, 2, "PT15M", 900 },
    { 1001, 2, "PT30M", 1800 },
    { 1200, 2, "PT30M", 1800 },
    { 1201, 3, "PT30M", 1800 },
    { 2000, 4, "PT30M", 1800 },
    { 3000, 5, "PT45M", 2700 },
    { 4000, 7, "PT1H", 3600 },
    { 10000, 17, "PT2H30M", 9000 },
    { 2147483647, 3579140, "P22369DT15H", 1932735600 },
  }
  for _, row in ipairs(rows) do
    local nodes, replicas, timeout, seconds = row[1], row[2], row[3], row[4]
    it(("plans %d VMs: %d replica(s), %s"):format(nodes, replicas, timeout), function()
      local p, msg = core.plan { nodes = nodes }
      assert.is_nil(msg, msg)
      local note1 = nodes == 0
        and "0 VMs need no replica to allocate, but the image version still needs 1 replica in "
          .. "the pool's region"
        or REPLICA_NOTE:format(nodes, replicas)
      assert.same({
        nodes = nodes, replicas = replicas, resizeTimeout = timeout,
        resizeTimeoutSeconds = seconds, autoscale = false, customImage = true,
        warnings = {}, notes = { note1, TIMEOUT_NOTE:format(timeout) },
      }, p)
      assert.equal("integer", math.type(p.resizeTimeoutSeconds))
    end)
  end

  it("adds targetDedicatedNodes and targetLowPriorityNodes", function()
    local p = assert(core.plan { targetDedicatedNodes = 1500, targetLowPriorityNodes = 500 })
    assert.equal(2000, p.nodes)
    assert.equal(4, p.replicas)
    assert.equal("PT30M", p.resizeTimeout)
    assert.equal(601, core.plan { targetLowPriorityNodes = 601 }.nodes)
    assert.equal(2, core.plan { targetDedicatedNodes = 601.0 }.replicas)   -- integral float
  end)

  for _, opts in ipairs { { enableAutoScale = true }, { autoscale = true },
                          { enableAutoScale = true, autoscale = true } } do
    it("plans an autoscale pool without a resize timeout", function()
      opts.nodes = 3000
      local p = assert(core.plan(opts))
      assert.same({
        nodes = 3000, replicas = 5, autoscale = true, customImage = true, warnings = {},
        notes = { REPLICA_NOTE:format(3000, 5), AUTOSCALE_NOTE },
      }, p)
    end)
  end

  it("ignores a short resizeTimeout on an autoscale pool", function()
    local p = assert(core.plan { nodes = 3000, autoscale = true, resizeTimeout = "PT5M" })
    assert.same({}, p.warnings)
    assert.is_nil(p.resizeTimeout)
  end)

  it("plans a marketplace image without replicas", function()
    local p = assert(core.plan { nodes = 2000, customImage = false, replicas = 1 })
    assert.same({
      nodes = 2000, autoscale = false, customImage = false, resizeTimeout = "PT30M",
      resizeTimeoutSeconds = 1800, warnings = {},
      notes = { "marketplace images need no gallery replicas",
        "replicas ignored: they apply to gallery images", TIMEOUT_NOTE:format("PT30M") },
    }, p)
  end)

  it("marks warnings and notes as arrays when the JSON module registered the marker", function()
    local p = assert(core.plan { nodes = 1 })
    local mt = debug.getregistry()["azbatch.Array"]
    if mt then
      assert.equal(mt, getmetatable(p.warnings))
      assert.equal(mt, getmetatable(p.notes))
    end
  end)
end)

describe("core.plan warnings", function()
  -- options, expected warnings
  local rows = {
    { { nodes = 2000, resizeTimeout = "PT20M" }, { {
      field = "plan.resizeTimeout", recommended = "PT30M",
      message = "PT20M is short for 2000 VMs; allow at least 15 minutes per 1000 VMs (PT30M)" } } },
    { { nodes = 3000, resizeTimeout = 1800 }, { {
      field = "plan.resizeTimeout", recommended = "PT45M",
      message = "PT30M is short for 3000 VMs; allow at least 15 minutes per 1000 VMs (PT45M)" } } },
    { { nodes = 100, resizeTimeout = "PT4M" }, { {
      field = "plan.resizeTimeout", recommended = "PT15M",
      message = "PT4M is short for 100 VMs; allow at least 15 minutes per 1000 VMs (PT15M); "
        .. "the service refuses values below PT5M" } } },
    { { nodes = 2000, replicas = 2 }, { {
      field = "plan.replicas", recommended = 4,
      message = "2 replica(s) serve at most 1200 VMs; 2000 VMs need 4 (one per 600 VMs in the "
        .. "pool's region)" } } },
    { { nodes = 601, replicas = 0 }, { {
      field = "plan.replicas", recommended = 2,
      message = "0 replica(s) serve at most 0 VMs; 601 VMs need 2 (one per 600 VMs in the "
        .. "pool's region)" } } },
    { { nodes = 3000, replicas = 4, resizeTimeout = "PT30M" }, {
      { field = "plan.replicas", recommended = 5,
        message = "4 replica(s) serve at most 2400 VMs; 3000 VMs need 5 (one per 600 VMs in the "
          .. "pool's region)" },
      { field = "plan.resizeTimeout", recommended = "PT45M",
        message = "PT30M is short for 3000 VMs; allow at least 15 minutes per 1000 VMs (PT45M)" } } },
    -- enough already: no warning
    { { nodes = 2000, replicas = 4, resizeTimeout = "PT30M" }, {} },
    { { nodes = 2000, replicas = 10, resizeTimeout = "PT1H" }, {} },
    { { nodes = 600, resizeTimeout = "PT15M" }, {} },
  }
  for i, row in ipairs(rows) do
    it("warns as expected #" .. i, function()
      local p, msg = core.plan(row[1])
      assert.is_nil(msg, msg)
      assert.same(row[2], p.warnings)
    end)
  end
end)

describe("core.plan bad input", function()
  local INT = "must be an integer in [0, 2147483647]"
  local rows = {
    { {}, "plan.nodes: required field missing (the pool's total VMs, or targetDedicatedNodes and "
      .. "targetLowPriorityNodes)", "plan.nodes" },
    { { nodes = -1 }, "plan.nodes: " .. INT, "plan.nodes" },
    { { nodes = 1.5 }, "plan.nodes: " .. INT, "plan.nodes" },
    { { nodes = 2147483648 }, "plan.nodes: " .. INT, "plan.nodes" },
    { { nodes = 0 / 0 }, "plan.nodes: " .. INT, "plan.nodes" },
    { { nodes = math.huge }, "plan.nodes: " .. INT, "plan.nodes" },
    { { nodes = "600" }, "plan.nodes: expected number, got string", "plan.nodes" },
    { { nodes = { 600 } }, "plan.nodes: expected number, got table", "plan.nodes" },
    { { targetDedicatedNodes = -5 }, "plan.targetDedicatedNodes: " .. INT,
      "plan.targetDedicatedNodes" },
    { { targetLowPriorityNodes = true }, "plan.targetLowPriorityNodes: expected number, got boolean",
      "plan.targetLowPriorityNodes" },
    { { nodes = 10, targetDedicatedNodes = 10 }, "plan.nodes: give nodes or targetDedicatedNodes "
      .. "and targetLowPriorityNodes, not both", "plan.nodes" },
    { { nodes = 10, resizeTimeout = "15m" }, "plan.resizeTimeout: expected ISO-8601 duration such as "
      .. "'PT15M', got \"15m\"", "plan.resizeTimeout" },
    { { nodes = 10, resizeTimeout = "P1M" }, "plan.resizeTimeout: years and months are not fixed "
      .. "lengths; use days, got \"P1M\"", "plan.resizeTimeout" },
    { { nodes = 10, resizeTimeout = -1 }, "plan.resizeTimeout: must be a number of seconds in "
      .. "[0, 864000000] or an ISO-8601 duration such as 'PT15M'", "plan.resizeTimeout" },
    { { nodes = 10, resizeTimeout = true }, "plan.resizeTimeout: expected string or number, got "
      .. "boolean", "plan.resizeTimeout" },
    { { nodes = 10, replicas = 1.5 }, "plan.replicas: " .. INT, "plan.replicas" },
    { { nodes = 10, enableAutoScale = "yes" }, "plan.enableAutoScale: expected boolean, got string",
      "plan.enableAutoScale" },
    { { nodes = 10, autoscale = 1 }, "plan.autoscale: expected boolean, got number",
      "plan.autoscale" },
    { { nodes = 10, customImage = "no" }, "plan.customImage: expected boolean, got string",
      "plan.customImage" },
    { { nodes = 10, enableAutoScale = true, autoscale = false }, "plan.autoscale: contradicts "
      .. "enableAutoScale", "plan.autoscale" },
    { { nodes = 10, node = 5 }, "plan.node: unknown field (did you mean 'nodes'?)", "plan.node" },
    { { node = 5 }, "plan.node: unknown field (did you mean 'nodes'?)", "plan.node" },
    { { nodes = 10, resizetimeout = "PT5M" }, "plan.resizetimeout: unknown field (did you mean "
      .. "'resizeTimeout'?)", "plan.resizetimeout" },
    { { nodes = 10, targetDedicated = 5 }, "plan.targetDedicated: unknown field", "plan.targetDedicated" },
    { { nodes = 10, [1] = 5 }, "plan[1]: unexpected number key (field names are strings)", "plan[1]" },
    { { 600 }, "plan.nodes: required field missing (the pool's total VMs, or targetDedicatedNodes and "
      .. "targetLowPriorityNodes) (and 1 more)", "plan.nodes" },
  }
  for _, row in ipairs(rows) do
    it("fails: " .. row[2], function()
      fails(row[2], row[3], core.plan(row[1]))
    end)
  end

  for _, arg in ipairs { { nil, "nil" }, { 600, "number" }, { "nodes=600", "string" } } do
    it("raises on a " .. arg[2] .. " argument", function()
      assert.error_matches(function() core.plan(arg[1]) end,
        "bad argument #1 to 'plan' %(table expected, got " .. arg[2] .. "%)")
    end)
  end
end)
