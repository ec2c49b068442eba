--- Progress of a long wait, on stderr (stdout keeps the answer): on a
-- terminal one line redrawn in place (a bar and the node-state counts);
-- otherwise one timestamped line per change, for logs:
--   2026-12-01T20:01:02Z render-v14 resizing 3/10 idle=3 starting=7
local azbatch = require "azbatch"

local M = {}

-- The order counts are shown in: ready first, then on the way, then trouble.
M.ORDER = { "idle", "running", "creating", "starting", "waitingforstarttask", "rebooting", "reimaging",
  "upgradingos", "leavingpool", "deallocating", "deallocated", "preempted", "offline", "unusable",
  "starttaskfailed", "unknown" }

local BAR = 24

local Progress = {}
Progress.__index = Progress

--- progress.new(w, {terminal=, now=}) -> Progress. w: a file (stderr);
-- terminal: redraw one line; now: seconds since the epoch (os.time).
function M.new(w, opts)
  opts = opts or {}
  return setmetatable({ w = w, terminal = opts.terminal == true, now = opts.now or os.time, last = nil,
    drawn = false }, Progress)
end

local function clean(s) return (azbatch.sanitize(tostring(s), 128):gsub("^%s+", ""):gsub("%s+$", "")) end

--- "idle=3 starting=7": the states with nodes, in ORDER.
function M.counts_text(counts)
  local parts = {}
  for _, s in ipairs(M.ORDER) do
    local n = counts and math.tointeger(counts[s]) or 0
    if n and n > 0 then parts[#parts + 1] = ("%s=%d"):format(s, n) end
  end
  return table.concat(parts, " ")
end

local function bar(done, total)
  local filled = total > 0 and math.min(BAR, math.floor(done * BAR / total)) or (done > 0 and BAR or 0)
  return "[" .. string.rep("#", filled) .. string.rep("-", BAR - filled) .. "]"
end

-- Show one state: label, what it is doing, done/total (both may be nil), the rest.
function Progress:show(label, state, done, total, rest, elapsed)
  local count = done and ("%d/%d"):format(done, total or 0) or nil
  local parts = { clean(label), clean(state) }
  if count then parts[#parts + 1] = count end
  if rest and rest ~= "" then parts[#parts + 1] = clean(rest) end
  local key = table.concat(parts, " ")
  if self.terminal then
    local line = { clean(label) }
    if done then line[#line + 1] = bar(done, total or 0) .. " " .. count end
    line[#line + 1] = clean(state)
    if rest and rest ~= "" then line[#line + 1] = clean(rest) end
    if elapsed then line[#line + 1] = ("(%ds)"):format(math.floor(elapsed)) end
    self.w:write("\r\27[K", table.concat(line, " "))
    self.drawn = true
  elseif key ~= self.last then
    self.w:write(os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(self.now())), " ", key, "\n")
  end
  self.last = key
  if self.w.flush then self.w:flush() end
end

--- wait_pool's on_progress: {id, state, allocationState, target, current, counts, elapsed}.
function Progress:pool(p)
  local counts = p.counts or {}
  local ready = (math.tointeger(counts.idle) or 0) + (math.tointeger(counts.running) or 0)
  local state = p.state == "deleting" and "deleting" or p.allocationState or p.state or "unknown"
  self:show(p.id, state, ready, math.tointeger(p.target) or 0, M.counts_text(counts), p.elapsed)
end

--- wait_pool_deleted's on_progress: {id, state, current, elapsed}.
function Progress:deleting(p)
  self:show(p.id, p.state or "deleting", nil, nil, ("%d node(s) left"):format(math.tointeger(p.current) or 0),
    p.elapsed)
end

--- Anything else: a label and a state (image replication, long-running ARM operations).
function Progress:step(label, state, rest)
  self:show(label, state, nil, nil, rest)
end

--- End the redrawn line (a terminal needs its newline).
function Progress:done()
  if self.terminal and self.drawn then self.w:write("\n") end
  self.drawn = false
end

return M
