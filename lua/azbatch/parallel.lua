--- Concurrency without threads: coroutines that yield while their
-- requests are in flight on curl multi handles. Outside azbatch.parallel
-- every call simply blocks.
local core = require "azbatch.core"

local M = {}

local WAIT, SLEEP = {}, {}                     -- yield markers
local managed = setmetatable({}, { __mode = "k" })

-- The longest the loop naps with nothing to wake it, so that a transport
-- closed by a callback is noticed.
local MAX_NAP = 0.5

--- True when the running coroutine is driven by azbatch.parallel.
function M.managed()
  return managed[coroutine.running()] ~= nil
end

--- Wait until 'req' (started on 'http') has finished, been cancelled, or
-- its transport closed; then req:result() tells which.
function M.await(http, req)
  if req:done() then return end
  if managed[coroutine.running()] then
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
  if managed[coroutine.running()] then
    coroutine.yield(SLEEP, core.now() + seconds)
  else
    core.sleep(seconds)
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
  local results, first_error = {}, nil
  local remaining = 0
  local ready, sleepers = {}, {}
  local waiting = {}          -- req -> the tasks waiting on it (a token fetch has several)
  local by_http = {}          -- http -> number of requests waited on

  local function step(task, ...)
    local r = table.pack(coroutine.resume(task.co, ...))
    if not r[1] then
      results[task.i] = { n = 2, false, r[2] }
      first_error = first_error or r[2]
      remaining = remaining - 1
    elseif coroutine.status(task.co) == "dead" then
      results[task.i] = table.pack(table.unpack(r, 2, r.n))
      remaining = remaining - 1
    elseif r[2] == WAIT then
      local http, req = r[3], r[4]
      local w = waiting[req]
      if w then
        w[#w + 1] = task
      else
        waiting[req] = { task, http = http }
        by_http[http] = (by_http[http] or 0) + 1
      end
    elseif r[2] == SLEEP then
      sleepers[task] = r[3]
    else
      ready[#ready + 1] = task                  -- a plain yield: run again soon
    end
  end

  local function wake(req)
    local w = waiting[req]
    if not w then return end
    waiting[req] = nil
    local n = by_http[w.http] - 1
    by_http[w.http] = n > 0 and n or nil
    for _, task in ipairs(w) do step(task) end
  end

  for i, fn in ipairs(fns) do
    if type(fn) ~= "function" then
      error(("bad argument #1 to 'parallel' (item %d is a %s, not a function)"):format(i, type(fn)), 2)
    end
    local co = coroutine.create(fn)
    managed[co] = true
    remaining = remaining + 1
    ready[#ready + 1] = { co = co, i = i }
  end

  while remaining > 0 do
    local batch = ready
    ready = {}
    for _, task in ipairs(batch) do step(task) end
    if remaining == 0 then break end
    -- a transport closed under waiting tasks: their requests have ended
    local ended = {}
    for req, w in pairs(waiting) do
      if w.http:closed() then ended[#ended + 1] = req end
    end
    for _, req in ipairs(ended) do wake(req) end
    local now = core.now()
    local wait = #ready > 0 and 0 or MAX_NAP
    for _, deadline in pairs(sleepers) do wait = math.min(wait, math.max(0, deadline - now)) end
    local open = {}
    for http in pairs(by_http) do
      if not http:closed() then open[#open + 1] = http end
    end
    if #open == 1 then
      for _, req in ipairs(open[1]:poll(wait)) do wake(req) end
    elseif #open > 1 then
      core.wait(open, wait)                      -- one wait across them all
      for _, http in ipairs(open) do
        if not http:closed() then
          for _, req in ipairs(http:poll(0)) do wake(req) end
        end
      end
    elseif #ready == 0 and wait > 0 then
      core.sleep(wait)                           -- only sleepers left
    end
    now = core.now()
    local due = {}
    for task, deadline in pairs(sleepers) do
      if deadline <= now then due[#due + 1] = task end
    end
    for _, task in ipairs(due) do
      sleepers[task] = nil
      step(task)
    end
  end
  if first_error ~= nil then error(first_error, 0) end
  return results
end

return M
