-- Progress rendering: timestamped lines (one per change) when not on a
-- terminal, one line redrawn in place with a bar when on one.
local progress = require "azbatch.cli_progress"

local function sink()
  local parts = {}
  return setmetatable({}, { __index = {
    write = function(self, ...)
      for i = 1, select("#", ...) do parts[#parts + 1] = select(i, ...) end
      return self
    end,
    text = function() return table.concat(parts) end,
  } })
end

-- 2026-12-01T20:01:02Z
local T0 = 1796155262

local function at(t) return function() return t end end

describe("progress", function()
  it("writes one timestamped line per change, in the documented form", function()
    local w = sink()
    local p = progress.new(w, { terminal = false, now = at(T0) })
    p:pool { id = "render-v14", state = "active", allocationState = "resizing", target = 10, current = 10,
      counts = { idle = 3, starting = 7 }, elapsed = 1 }
    p:pool { id = "render-v14", state = "active", allocationState = "resizing", target = 10, current = 10,
      counts = { idle = 3, starting = 7 }, elapsed = 3 }       -- nothing changed: no line
    p:pool { id = "render-v14", state = "active", allocationState = "steady", target = 10, current = 10,
      counts = { idle = 9, running = 1 }, elapsed = 9 }
    p:done()
    assert.equal("2026-12-01T20:01:02Z render-v14 resizing 3/10 idle=3 starting=7\n"
      .. "2026-12-01T20:01:02Z render-v14 steady 10/10 idle=9 running=1\n", w:text())
  end)

  it("shows every state with nodes, trouble last, and none without", function()
    assert.equal("idle=1 running=2 creating=3 starting=4 waitingforstarttask=5 leavingpool=6 unusable=7 "
      .. "starttaskfailed=8", progress.counts_text { starttaskfailed = 8, unusable = 7, leavingpool = 6,
        waitingforstarttask = 5, starting = 4, creating = 3, running = 2, idle = 1, offline = 0 })
    assert.equal("", progress.counts_text {})
  end)

  it("redraws one line with a bar on a terminal, and ends it once", function()
    local w = sink()
    local p = progress.new(w, { terminal = true, now = at(T0) })
    p:pool { id = "p1", allocationState = "resizing", target = 4, counts = { idle = 1, starting = 3 }, elapsed = 2.7 }
    p:pool { id = "p1", allocationState = "steady", target = 4, counts = { idle = 4 }, elapsed = 5 }
    p:done()
    p:done()
    assert.equal("\r\27[Kp1 [######------------------] 1/4 resizing idle=1 starting=3 (2s)"
      .. "\r\27[Kp1 [########################] 4/4 steady idle=4 (5s)\n", w:text())
  end)

  it("says a pool being deleted and the nodes it has left", function()
    local w = sink()
    local p = progress.new(w, { now = at(T0) })
    p:deleting { id = "old", state = "deleting", current = 3 }
    p:deleting { id = "old", state = "deleting", current = 0 }
    assert.equal("2026-12-01T20:01:02Z old deleting 3 node(s) left\n2026-12-01T20:01:02Z old deleting 0 node(s) left\n",
      w:text())
  end)

  it("cleans what the service named before it reaches the terminal", function()
    local w = sink()
    progress.new(w, { now = at(T0) }):step("img\27[2J", "InProgress\r\n", "40%")
    assert.equal("2026-12-01T20:01:02Z img[2J InProgress 40%\n", w:text())
  end)

  it("draws an empty bar for a pool with no target", function()
    local w = sink()
    progress.new(w, { terminal = true }):pool { id = "z", allocationState = "steady", target = 0, counts = {} }
    assert.equal("\r\27[Kz [------------------------] 0/0 steady", w:text())
  end)
end)
