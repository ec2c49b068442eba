--- Concurrency without threads: coroutines that yield while their
-- requests are in flight on curl multi handles. Outside azbatch.parallel
-- every call simply blocks. A parallel run inside a parallel run joins the
-- scheduler that is already running (its functions become more tasks of
-- it, and the caller waits for them), so every request is still waited on
-- in one place.
local core = require "azbatch.core"

local M = {}

local WAIT, SLEEP, JOIN = {}, {}, {}           -- yield markers
local owner = setmetatable({}, { __mode = "k" }) -- coroutine -> its scheduler

-- The longest the loop naps with nothing to wake it, so that a transport
-- closed by a callback is noticed.
local MAX_NAP = 0.5

--- True when the running coroutine is driven by azbatch.parallel.
function M.managed()
  return owner[coroutine.running()] ~= nil
end

--- Wait until 'req' (started on 'http') has finished, been cancelled, or
-- its transport closed; then req:result() tells which.
function M.await(http, req)
  if req:done() then return end
  if owner[coroutine.running()] then
    coroutine.yield(WAIT, http, req)
  else
    while not req:done() and not http:closed() do http:poll(1.0) end
  end
end

--- Sleep without blocking other coroutines.
function M.sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 or seconds == math.huge then
    error(("bad argument #1 to 'sleep' (finite number of seconds >= 0 expected, got %s)")
      :format(type(seconds) == "number" and tostring(seconds) or type(seconds)), 2)
  end
  if seconds == 0 then return end
  if owner[coroutine.running()] then
    coroutine.yield(SLEEP, core.now() + seconds)
  else
    core.sleep(seconds)
  end
end

local Scheduler = {}
Scheduler.__index = Scheduler

local function new_scheduler()
  return setmetatable({ ready = {}, sleepers = {}, waiting = {}, by_http = {}, live = 0 }, Scheduler)
end

-- A group: the functions of one parallel{} call, and who waits for them.
local function new_group(n, parent)
  return { pending = n, results = {}, parent = parent }
end

function Scheduler:spawn(group, i, fn)
  local co = coroutine.create(fn)
  owner[co] = self
  self.live = self.live + 1
  self.ready[#self.ready + 1] = { co = co, i = i, group = group }
end

-- A task ended (returned or raised): record it; wake its group's parent
-- when it was the last one.
function Scheduler:finished(task, result, failed)
  local g = task.group
  g.results[task.i] = result
  if failed then g.first_error = g.first_error or result[2] end
  g.pending = g.pending - 1
  self.live = self.live - 1
  if g.pending == 0 and g.parent then self.ready[#self.ready + 1] = g.parent end
end

function Scheduler:step(task, ...)
  local r = table.pack(coroutine.resume(task.co, ...))
  if not r[1] then
    self:finished(task, { n = 2, false, r[2] }, true)
  elseif coroutine.status(task.co) == "dead" then
    self:finished(task, table.pack(table.unpack(r, 2, r.n)))
  elseif r[2] == WAIT then
    local http, req = r[3], r[4]
    local w = self.waiting[req]
    if w then
      w[#w + 1] = task
    else
      self.waiting[req] = { task, http = http }
      self.by_http[http] = (self.by_http[http] or 0) + 1
    end
  elseif r[2] == SLEEP then
    self.sleepers[task] = r[3]
  elseif r[2] == JOIN then
    r[3].parent = task                          -- woken when its group is done
  else
    self.ready[#self.ready + 1] = task          -- a plain yield: run again soon
  end
end

function Scheduler:wake(req)
  local w = self.waiting[req]
  if not w then return end
  self.waiting[req] = nil
  local n = self.by_http[w.http] - 1
  self.by_http[w.http] = n > 0 and n or nil
  for _, task in ipairs(w) do self:step(task) end
end

-- Run until 'done()' says so.
function Scheduler:loop(done)
  while not done() do
    local batch = self.ready
    self.ready = {}
    for _, task in ipairs(batch) do self:step(task) end
    if done() then break end
    -- a transport closed under waiting tasks: their requests have ended
    local ended = {}
    for req, w in pairs(self.waiting) do
      if w.http:closed() then ended[#ended + 1] = req end
    end
    for _, req in ipairs(ended) do self:wake(req) end
    local now = core.now()
    local wait = #self.ready > 0 and 0 or MAX_NAP
    for _, deadline in pairs(self.sleepers) do wait = math.min(wait, math.max(0, deadline - now)) end
    local open = {}
    for http in pairs(self.by_http) do
      if not http:closed() then open[#open + 1] = http end
    end
    if #open == 1 then
      for _, req in ipairs(open[1]:poll(wait)) do self:wake(req) end
    elseif #open > 1 then
      core.wait(open, wait)                      -- one wait across them all
      for _, http in ipairs(open) do
        if not http:closed() then
          for _, req in ipairs(http:poll(0)) do self:wake(req) end
        end
      end
    elseif #self.ready == 0 and wait > 0 then
      core.sleep(wait)                           -- only sleepers left
    end
    now = core.now()
    local due = {}
    for task, deadline in pairs(self.sleepers) do
      if deadline <= now then due[#due + 1] = task end
    end
    for _, task in ipairs(due) do
      self.sleepers[task] = nil
      self:step(task)
    end
  end
end

--- Run functions concurrently; returns one packed result table per function
-- ({n=, ...} as table.pack). If any function raised, raises the first error
-- after all the others have finished.
---@param fns function[]
---@return table[] results
function M.run(fns)
  if type(fns) ~= "table" then
    error(("bad argument #1 to 'parallel' (table expected, got %s)"):format(type(fns)), 2)
  end
  for i, fn in ipairs(fns) do
    if type(fn) ~= "function" then
      error(("bad argument #1 to 'parallel' (item %d is a %s, not a function)"):format(i, type(fn)), 2)
    end
  end
  local group = new_group(#fns)
  local sched = owner[coroutine.running()]
  if sched then
    -- inside a run: more tasks of the same scheduler; wait for them
    for i, fn in ipairs(fns) do sched:spawn(group, i, fn) end
    if group.pending > 0 then coroutine.yield(JOIN, group) end
  else
    sched = new_scheduler()
    for i, fn in ipairs(fns) do sched:spawn(group, i, fn) end
    sched:loop(function() return group.pending == 0 end)
  end
  if group.first_error ~= nil then error(group.first_error, 0) end
  return group.results
end

return M
