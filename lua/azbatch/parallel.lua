--- Concurrency without threads: coroutines that yield while their
-- requests are in flight on a shared curl multi handle.
-- Outside azbatch.parallel every call simply blocks.
local core = require "azbatch.core"

local M = {}

local WAIT, SLEEP = {}, {}                     -- yield markers
local managed = setmetatable({}, { __mode = "k" })

--- True when the running coroutine is driven by azbatch.parallel.
function M.managed()
  return managed[coroutine.running()] ~= nil
end

--- Wait until 'req' (started on 'http') has finished.
function M.await(http, req)
  if managed[coroutine.running()] then
    coroutine.yield(WAIT, http, req)
  else
    while not req:done() do http:poll(1.0) end
  end
end

--- Sleep without blocking other coroutines; 'http' serves as the timer
-- when blocking (curl_multi_poll waits the full time with nothing to do).
function M.sleep(seconds, http)
  if seconds <= 0 then return end
  local deadline = core.now() + seconds
  if managed[coroutine.running()] then
    coroutine.yield(SLEEP, deadline)
  else
    local left = seconds
    while left > 0 do
      if http then http:poll(left) else os.execute(("sleep %.3f"):format(left)) end
      left = deadline - core.now()
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
  local results, first_error = {}, nil
  local remaining = 0
  local ready, waiting, sleepers, pollers = {}, {}, {}, {}

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
      waiting[r[4]] = task
      pollers[r[3]] = true
    elseif r[2] == SLEEP then
      sleepers[task] = r[3]
    else
      ready[#ready + 1] = task                  -- a plain yield: run again soon
    end
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
    local now = core.now()
    local wait = #ready > 0 and 0 or 0.5
    for _, deadline in pairs(sleepers) do wait = math.min(wait, math.max(0, deadline - now)) end
    local any = false
    for http in pairs(pollers) do
      local finished = http:poll(any and 0 or wait)
      any = true
      for _, req in ipairs(finished) do
        local task = waiting[req]
        if task then
          waiting[req] = nil
          step(task)
        end
      end
      if http:pending() == 0 then pollers[http] = nil end
    end
    if not any and #ready == 0 and wait > 0 then
      os.execute(("sleep %.3f"):format(wait))   -- only sleepers left, no transport to wait on
    end
    now = core.now()
    for task, deadline in pairs(sleepers) do
      if deadline <= now then
        sleepers[task] = nil
        step(task)
      end
    end
  end
  if first_error ~= nil then error(first_error, 0) end
  return results
end

return M
