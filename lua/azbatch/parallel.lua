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

-- A map for keys that come and go all the time (requests in flight). Lua
-- rehashes a table when an insert finds no free node, and a table whose
-- live keys fill a power of two (32 requests at concurrency 32) does so on
-- nearly every insert after a delete. So a key taken out keeps its node
-- (as false) until the dead outnumber the live by DEAD_SLACK; then the
-- table is built anew. It measured 48k instructions a request at
-- concurrency 32 (tests/bench/profile.sh), a seventh of the request.
local Keyed = {}
Keyed.__index = Keyed
local DEAD_SLACK = 64

local function new_table(weak)
  return weak and setmetatable({}, { __mode = weak }) or {}
end

--- A Keyed map; weak = "k" for weak keys.
function M.keyed(weak)
  return setmetatable({ t = new_table(weak), live = 0, dead = 0, weak = weak }, Keyed)
end

function Keyed:get(k)
  return self.t[k] or nil
end

function Keyed:put(k, v)
  local t = self.t
  local old = t[k]
  if old == false then self.dead = self.dead - 1 end
  if not old then self.live = self.live + 1 end
  t[k] = v
end

--- Remove k; returns its value.
function Keyed:take(k)
  local t = self.t
  local v = t[k]
  if not v then return nil end
  t[k] = false
  self.live, self.dead = self.live - 1, self.dead + 1
  if self.dead > self.live + DEAD_SLACK then
    local fresh = new_table(self.weak)
    local live = 0
    for key, value in pairs(t) do
      if value then
        fresh[key] = value
        live = live + 1
      end
    end
    self.t, self.live, self.dead = fresh, live, 0   -- weak keys may have gone meanwhile
  end
  return v
end

--- The live keys, as a list (so the map may change while the caller goes through it).
function Keyed:keys()
  local list = {}
  for k, v in pairs(self.t) do
    if v then list[#list + 1] = k end
  end
  return list
end

local Scheduler = {}
Scheduler.__index = Scheduler

-- waiting: req -> the task awaiting it (or, rarely, a list of tasks);
-- http_of: req -> its transport; by_http: transport -> requests awaited on it.
local function new_scheduler()
  return setmetatable({ ready = {}, spare = {}, sleepers = {}, nsleepers = 0, waiting = M.keyed(),
    http_of = M.keyed(), by_http = {}, live = 0 }, Scheduler)
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

-- What a resume gave: the results as varargs, so that the common yields
-- (a wait, a sleep) build no table.
local function after(self, task, ok, ...)
  if not ok then
    self:finished(task, { n = 2, false, (...) }, true)
    return
  end
  if coroutine.status(task.co) == "dead" then
    self:finished(task, table.pack(...))
    return
  end
  local marker, a, b = ...
  if marker == WAIT then
    local http, req = a, b
    local w = self.waiting:get(req)
    if w == nil then
      self.waiting:put(req, task)
      self.http_of:put(req, http)
      self.by_http[http] = (self.by_http[http] or 0) + 1
    elseif w.co then
      self.waiting:put(req, { w, task })        -- a second task awaits the same request
    else
      w[#w + 1] = task
    end
  elseif marker == SLEEP then
    if self.sleepers[task] == nil then self.nsleepers = self.nsleepers + 1 end
    self.sleepers[task] = a
  elseif marker == JOIN then
    a.parent = task                             -- woken when its group is done
  else
    self.ready[#self.ready + 1] = task          -- a plain yield: run again soon
  end
end

function Scheduler:step(task, ...)
  after(self, task, coroutine.resume(task.co, ...))
end

function Scheduler:wake(req)
  local w = self.waiting:take(req)
  if w == nil then return end
  local http = self.http_of:take(req)
  local n = self.by_http[http] - 1
  self.by_http[http] = n > 0 and n or nil
  if w.co then
    self:step(w)
  else
    for _, task in ipairs(w) do self:step(task) end
  end
end

-- Wake every request awaited on a transport that was closed: they have ended.
function Scheduler:wake_closed()
  local ended
  for http in pairs(self.by_http) do
    if http:closed() then
      ended = ended or {}
      for req, h in pairs(self.http_of.t) do
        if h == http then ended[#ended + 1] = req end
      end
    end
  end
  for _, req in ipairs(ended or {}) do self:wake(req) end
end

-- Step the sleepers whose time has come.
function Scheduler:wake_sleepers(now)
  local due
  for task, deadline in pairs(self.sleepers) do
    if deadline <= now then
      due = due or {}
      due[#due + 1] = task
    end
  end
  for _, task in ipairs(due or {}) do
    self.sleepers[task] = nil
    self.nsleepers = self.nsleepers - 1
    self:step(task)
  end
end

-- Run until 'done()' says so.
function Scheduler:loop(done)
  local open = {}
  while not done() do
    -- the tasks made ready while these run wait for the next round
    local batch = self.ready
    self.ready, self.spare = self.spare, batch
    for i = 1, #batch do
      local task = batch[i]
      batch[i] = nil
      self:step(task)
    end
    if done() then break end
    self:wake_closed()
    local wait = #self.ready > 0 and 0 or MAX_NAP
    if self.nsleepers > 0 then
      local now = core.now()
      for _, deadline in pairs(self.sleepers) do wait = math.min(wait, math.max(0, deadline - now)) end
    end
    local nopen = 0
    for http in pairs(self.by_http) do
      if not http:closed() then
        nopen = nopen + 1
        open[nopen] = http
      end
    end
    for i = nopen + 1, #open do open[i] = nil end
    if nopen == 1 then
      local finished = open[1]:poll(wait)
      for i = 1, #finished do self:wake(finished[i]) end
    elseif nopen > 1 then
      core.wait(open, wait)                      -- one wait across them all
      for i = 1, nopen do
        local http = open[i]
        if not http:closed() then
          local finished = http:poll(0)
          for j = 1, #finished do self:wake(finished[j]) end
        end
      end
    elseif #self.ready == 0 and wait > 0 then
      core.sleep(wait)                           -- only sleepers left
    end
    if self.nsleepers > 0 then self:wake_sleepers(core.now()) end
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
