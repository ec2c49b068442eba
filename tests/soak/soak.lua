--[[ make soak: a bounded run (SOAK_SECONDS, default 600) of many pools at
once against the emulator under injected faults, checking at the end that

  1. every write reported its true outcome: the emulator's journal (by
     client-request-id) says a success was applied and a failure was not;
     an "unknown" is counted, said out loud, and settled by reading the
     pool back, and the read-back must agree with the journal;
  2. no pool leaked or was made twice: each generation's pools are gone
     once it is over, none of the soak's pools is left at the end, and the
     journal shows each created id created exactly once;
  3. the client's memory stayed flat (the rule is MEMORY_RULE below);
  4. the request rate stayed under its budget (RATE_BUDGET below);
  5. every rollout ended done or rolled back (resumed when it stopped),
     and the service holds what its end says: the pools up on the image
     they should run, the others gone.

SOAK_POOLS (default 200) pool slots run at once, each through generations
("waves") until the time is up: create, resize, wait, patch, and on some of
them a rollout (azbatch.rollout: in-place on one pool, blue-green on two),
then delete. Besides the faults every request may meet, there are short
outages (every connection dropped), so that calls fail for real, outcomes
end "unknown" and rollouts stop and are resumed. Every mutating call, the
rollouts' own included, is recorded as it returns (the client's methods
are wrapped on the instance) and judged against the journal every few
seconds, read incrementally (/_emulator/journal?from=N), so that the
soak's own bookkeeping stays small.

Run by tests/soak/run.sh, which starts the emulator and passes its URL in
SOAK_EMULATOR; prints progress and the summary, writes the summary to
SOAK_SUMMARY when set; exits 1 when a check fails. ]]
local ROOT = arg and arg[0] and arg[0]:match("^(.*)/tests/soak/[^/]*$") or "."
package.path = ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. ROOT .. "/tests/?.lua;" .. package.path
package.cpath = ROOT .. "/build/?.so;" .. package.cpath

local azbatch = require "azbatch"
local rollout = require "azbatch.rollout"
local core = require "azbatch.core"
local outcomes = require "outcomes"
local helper = require "helper"
local holds = require("azbatch.rollout_steps").same    -- does a pool hold every field asked (ids ignoring case)?

local function env_number(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return assert(tonumber(v), name .. " must be a number, got " .. v)
end

local SECONDS = env_number("SOAK_SECONDS", 600)
local POOLS = math.tointeger(env_number("SOAK_POOLS", 200)) or error("SOAK_POOLS must be an integer")
local DWELL = env_number("SOAK_DWELL", 20)          -- seconds a pool stays up at work before its delete
local URL = assert(os.getenv("SOAK_EMULATOR"), "SOAK_EMULATOR (the emulator's URL) is required")
local SUMMARY = os.getenv("SOAK_SUMMARY")
local SEED = math.tointeger(env_number("SOAK_SEED", 1))

-- The faults every data-plane and ARM request meets, all run long: 4% 429
-- and 4% 503 (Retry-After 1 s), 3% connections dropped before the write,
-- 5% of the successful writes applied and then dropped, and 15 ms on every
-- answer. Token requests are not faulted (the emulator's default).
local FAULTS = { p429 = 0.04, p503 = 0.04, p500 = 0, drop = 0.03, dropAfterCommit = 0.05, latencyMs = 15,
  retryAfter = 1, seed = SEED }
-- And outages: every OUTAGE.every seconds (the first half-way into the
-- first period), OUTAGE.seconds during which every connection is dropped
-- unanswered. Longer than the client's retries last (0.5 + 1 + 2 + 4 s of
-- backoff), so that calls fail, writes whose answers were lost end
-- "unknown" (reading back fails too), and rollouts stop and are resumed.
local OUTAGE = { seconds = 8, every = math.min(120, SECONDS / 2) }
local OUTAGE_FAULTS = { p429 = 0, p503 = 0, drop = 1 }

--[[ The request budget, and why. A plain pool's generation asks for about
15 requests (create, resize, two waits of about two polls of a pool read
and a /nodecounts read each, patch, delete, the list that checks nothing is
left, and the faulted ones sent again) in at least DWELL + 2 s: 0.7/s. A
rollout asks for about 125 per pool in place, about 100 per pool blue-green
(preflight's reads, a read and a metadata write for each step on every
pool, a /nodecounts read after each step, the waits), in 30 to 40 s: 3 to
4/s per pool. With 17 pools of 20 plain, that is about 1.05/s per pool at
full load. RATE_BUDGET is 1.25/s per pool on average and PEAK_BUDGET 2/s
per pool in any window of about 10 s: room for retries in a bad stretch of
faults and for the recovery after an outage, not for a poll loop that does
not back off (wait_pool at a fixed 0.5 s would double the plain pools'
share) or for a client that hammers the emulator (one Python process on a
shared machine) as it would hammer the service. Per write (every mutating
call, the rollouts' own included) the waits and reads around it come to
about 3.6 requests; PER_OP_BUDGET is 5. ]]
local PER_OP_BUDGET = 5
local RATE_BUDGET = POOLS * 1.25                    -- requests/s, on average over the run
local PEAK_BUDGET = POOLS * 2                       -- requests/s, in any window of about 10 s

--[[ Memory: live Lua heap (collectgarbage("count") just after a full
collection) and VmRSS, sampled every SAMPLE_EVERY seconds. The first
quarter is warm-up (connections, the token cache, the rollouts' first
plans). The rule: the median of the last quarter's samples is within 10%
of the second quarter's, or within an absolute slack (512 KiB of Lua heap,
2 MiB of RSS: allocator noise), whichever is larger. A leak of a few
hundred bytes per request (about 100,000 requests in ten minutes) breaks
it. ]]
local MEMORY_RULE = { ratio = 1.10, lua_slack_kb = 512, rss_slack_kb = 2048 }
local SAMPLE_EVERY = math.max(1, SECONDS / 60)
local JUDGE_EVERY = 5

local SUB = "00000000-0000-0000-0000-000000000001"
local GALLERY = ("/subscriptions/%s/resourceGroups/azbatch-dev/providers/Microsoft.Compute/galleries/devgallery"
  .. "/images/ubuntu2204"):format(SUB)
local V1, V2 = GALLERY .. "/versions/1.0.0", GALLERY .. "/versions/1.1.0"
local ACCOUNT = ("/subscriptions/%s/resourceGroups/azbatch-dev/providers/Microsoft.Batch/batchAccounts/devbatch")
  :format(SUB)
local ROLLOUT_TIMEOUTS = { poll = 0.5, wait = 120, step = 240 }

local emu = { url = URL }
local function control(path, body) return helper.control(emu, path, body) end

local cred = assert(azbatch.credential.client_secret { tenant = helper.DEV_TENANT, client_id = helper.DEV_CLIENT,
  client_secret = helper.DEV_SECRET, authority = URL })
local batch <close> = assert(azbatch.client { endpoint = URL, credential = cred })
local arm <close> = assert(azbatch.arm { endpoint = URL, credential = cred })

local T0 = core.now()
local function say(fmt, ...)
  io.write(("[%6.1f] "):format(core.now() - T0), fmt:format(...), "\n")
  io.flush()
end

-- {===================================================================
-- Recording every write as it returns
-- ====================================================================

local tally = outcomes.tally()
local finished = {}             -- calls returned since the last judge pass
local in_rollout = {}           -- generation prefix -> true while its rollout runs
local others = {}               -- what is not judged against the journal: waits, rollouts, leaks, ...
local function count(what, n) others[what] = (others[what] or 0) + (n or 1) end
local unknowns = {}             -- said out loud: one line each (bounded)

local function prefix_of(id) return id:match("^(sk%-%d+%-g%d+%-)") or id end

-- A pool read that insists (through an outage): nil when the service
-- would not answer for a minute, false when the pool does not exist.
local function read_pool(id, select)
  local until_ = core.now() + 60
  repeat
    local p, _, err = batch:get_pool(id, { select = select })
    if p then return p end
    if err and err.code == "PoolNotFound" then return false end
    azbatch.sleep(2)
  until core.now() > until_
  return nil
end

-- Settling an unknown outcome: read the pool back and say whether the
-- call's effect is there (nil: the service would not say).
local function read(id, select, missing, test)
  local p = read_pool(id, select)
  if p == nil then return nil end
  if p == false then return missing end
  return test(p)
end
-- (The soak deletes only pools it knows are there, and a rollout reads a
-- pool before it deletes it: a pool gone after a delete is that delete's.)
local READ_BACK = {
  create_pool = function(spec) return read(spec.id, "id", false, function() return true end) end,
  delete_pool = function(id) return read(id, "id,state", true, function(p) return p.state == "deleting" end) end,
  resize_pool = function(id, body)
    return read(id, "id,targetDedicatedNodes,targetLowPriorityNodes", false, function(p)
      return (body.targetDedicatedNodes == nil or p.targetDedicatedNodes == body.targetDedicatedNodes)
        and (body.targetLowPriorityNodes == nil or p.targetLowPriorityNodes == body.targetLowPriorityNodes)
    end)
  end,
  patch_pool = function(id, props) return read(id, nil, false, function(p) return holds(props, p) end) end,
  stop_resize_pool = function(id)
    return read(id, "id,allocationState", false, function(p)
      return p.allocationState == "stopping" or p.allocationState == "steady"
    end)
  end,
  enable_autoscale = function(id, body)
    return read(id, "id,enableAutoScale,autoScaleFormula", false, function(p)
      return p.enableAutoScale == true and p.autoScaleFormula == body.autoScaleFormula
    end)
  end,
  disable_autoscale = function(id)
    return read(id, "id,enableAutoScale", false, function(p) return p.enableAutoScale == false end)
  end,
}

do
  local Client = getmetatable(batch)
  for name, read_back in pairs(READ_BACK) do
    local method = Client[name]
    batch[name] = function(self, a, b, c)
      local id = name == "create_pool" and a.id or a
      local res, why, err = method(self, a, b, c)
      local kind = (in_rollout[prefix_of(id)] and "rollout " or "") .. name
      local call = outcomes.call(kind, id, res, why, err)
      if outcomes.reported(call) == "unknown" then
        call.settled = read_back(a, b)
        err.settled = call.settled
        if #unknowns < 50 then
          unknowns[#unknowns + 1] = ("%s %s: outcome unknown (%s); read back: %s"):format(kind, id, tostring(why),
            call.settled == nil and "no answer" or call.settled and "applied" or "not applied")
        end
        say("UNKNOWN %s", unknowns[#unknowns])
      end
      finished[#finished + 1] = call
      return res, why, err
    end
  end
end

-- what the client asked for, by method and path shape (every attempt of a call counts once)
local asked = {}
do
  local request = getmetatable(batch).request
  batch.request = function(self, method, path, opts)
    local shape = method .. " " .. (path or "(next link)"):gsub("/pools/[^/]+", "/pools/{id}")
    asked[shape] = (asked[shape] or 0) + 1
    return request(self, method, path, opts)
  end
end

-- {===================================================================
-- Judging, every few seconds and at the end
-- ====================================================================

local journal_next, missed, journal_entries = 0, 0, 0
local pending = {}              -- client-request-id -> writes applied, whose call is not judged yet
local created = {}              -- pool id -> creates applied, for generations not over yet
local gens_over = {}            -- generations over since the last pass: { ids }
local ids = { created_once = 0, never_created = 0, duplicated = 0, unaccounted = 0, unattributed = 0 }
local id_problems = {}

local function judge_pass(final)
  local calls, gens = finished, gens_over
  finished, gens_over = {}, {}                   -- every call in 'calls' returned before this read
  local j = control("journal?from=" .. journal_next)
  journal_next, missed = j.next, missed + j.missed
  journal_entries = journal_entries + #j.value
  outcomes.applied(j.value, pending)
  for _, e in ipairs(j.value) do
    if not e.clientRequestId then ids.unattributed = ids.unattributed + 1 end
  end
  for _, c in ipairs(calls) do
    tally:judge(c, pending)
    local crid = outcomes.crid(c)
    if crid and pending[crid] then
      if c.kind:match("create_pool$") then created[c.id] = (created[c.id] or 0) + pending[crid] end
      pending[crid] = nil
    end
  end
  for _, g in ipairs(gens) do
    for _, id in ipairs(g) do
      local n = created[id] or 0
      if n == 1 then
        ids.created_once = ids.created_once + 1
      elseif n == 0 then
        ids.never_created = ids.never_created + 1
      else
        ids.duplicated = ids.duplicated + 1
        id_problems[#id_problems + 1] = ("%s created %d times"):format(id, n)
      end
      created[id] = nil
    end
  end
  if final then
    for id, n in pairs(created) do
      ids.unaccounted = ids.unaccounted + 1
      id_problems[#id_problems + 1] = ("%s created %d times by a generation that does not know it"):format(id, n)
    end
    for crid, n in pairs(pending) do
      ids.unattributed = ids.unattributed + n
      id_problems[#id_problems + 1] = ("%d writes applied under %s, which no recorded call sent"):format(n, crid)
    end
  end
end

-- {===================================================================
-- Sampling memory and the request rate
-- ====================================================================

local samples = {}              -- { t, lua_kb, rss_kb, requests }

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)")) or 0
end

local function sample()
  collectgarbage("collect")
  samples[#samples + 1] = { t = core.now() - T0, lua_kb = collectgarbage("count"), rss_kb = rss_kb(),
    requests = control("stats").requests }
end

-- {===================================================================
-- One generation of one slot
-- ====================================================================

local function pool_spec(id)
  return { id = id, vmSize = "Standard_D2s_v3", targetDedicatedNodes = 1,
    virtualMachineConfiguration = { imageReference = { virtualMachineImageId = V1 },
      nodeAgentSKUId = "batch.node.ubuntu 22.04" }, metadata = { { name = "soak", value = "1" } } }
end

local function each(list, fn)
  local fns = {}
  for i, v in ipairs(list) do fns[i] = function() return fn(v, i) end end
  return azbatch.parallel(fns)
end

-- Did a write happen, as far as the caller can know: a success, or an
-- unknown that reading back settled as applied.
local function happened(res, err)
  return res ~= nil or (err and err.settled == true)
end

local rollouts = {}             -- strategy -> { runs, done, rolled_back, resumed, aborted, stuck, not_started, wrong }
local rollout_problems = {}
local function rcount(strategy, what)
  local r = rollouts[strategy] or { runs = 0, done = 0, rolled_back = 0, resumed = 0, aborted = 0, stuck = 0,
    not_started = 0, wrong = 0 }
  rollouts[strategy] = r
  r[what] = r[what] + 1
end

-- Run a rollout to an end: done or rolled back, resumed when it stopped
-- (an outcome it could not settle, a failure after a commit), aborted when
-- resuming does not finish it. Returns the final state and the report.
local function run_rollout(strategy, pools, rid)
  local names = {}
  for _, id in ipairs(pools) do names[id] = id .. "n" end
  local r = assert(rollout.new(batch, { strategy = strategy, pools = pools, image = V2, id = rid, names = names,
    handover = false, deallocation = "requeue", timeouts = ROLLOUT_TIMEOUTS, arm = arm, account = ACCOUNT }))
  rcount(strategy, "runs")
  local rep, why, err = r:run()
  if not rep and not (err and err.report) then
    rcount(strategy, "not_started")               -- its plan could not be made (a read failed): nothing written
    say("rollout %s (%s) not started: %s", rid, strategy, tostring(why))
    return "not_started", nil, names
  end
  rep = rep or err.report
  for _ = 1, 5 do
    if rep.state == "done" or rep.state == "rolled_back" then break end
    rcount(strategy, "resumed")
    say("rollout %s (%s) %s: %s; resuming", rid, strategy, rep.state, tostring(why))
    azbatch.sleep(5)                              -- an outage passes
    local again
    again, why, err = rollout.resume(batch, rid, { timeouts = ROLLOUT_TIMEOUTS, arm = arm, account = ACCOUNT,
      handover = false })
    if not again and err and err.code == "RolloutNotFound" then
      -- no pool holds its records: it stopped while claiming its pools, and
      -- took its records back (it made nothing)
      rcount(strategy, "not_started")
      return "not_started", rep, names
    end
    rep = again or (err and err.report) or rep
  end
  if rep.state ~= "done" and rep.state ~= "rolled_back" then
    local ab
    ab, why = rollout.abort(batch, rid, { timeouts = ROLLOUT_TIMEOUTS, arm = arm, account = ACCOUNT,
      handover = false })
    if ab then
      rcount(strategy, "aborted")
      rep = ab
    else
      rcount(strategy, "stuck")
      say("rollout %s (%s) stuck in %s: %s", rid, strategy, rep.state, tostring(why))
    end
  end
  if rep.state == "done" then rcount(strategy, "done") elseif rep.state == "rolled_back" then
    rcount(strategy, "rolled_back") end
  return rep.state, rep, names
end

-- What the service holds after a rollout ended 'state': the pools that
-- should be up on the image they should run, the others gone or going.
-- Counts a rollout whose end the service contradicts.
local function check_rollout(strategy, rid, state, pools, names)
  local up, down = {}, {}
  for _, id in ipairs(pools) do
    if strategy == "in-place" then
      up[id] = state == "done" and V2 or V1
    elseif state == "done" then
      up[names[id]], down[#down + 1] = V2, id
    else
      up[id], down[#down + 1] = V1, names[id]
    end
  end
  local wrong = {}
  for id, image in pairs(up) do
    local p = read_pool(id, "id,state,virtualMachineConfiguration")
    local have = p and p.virtualMachineConfiguration.imageReference.virtualMachineImageId
    if p ~= nil and (not p or p.state ~= "active" or have:lower() ~= image:lower()) then
      wrong[#wrong + 1] = ("%s is %s"):format(id, p and (p.state .. " on " .. have:match("[^/]+$")) or "missing")
    end
  end
  for _, id in ipairs(down) do
    local p = read_pool(id, "id,state")
    if p and p.state ~= "deleting" then wrong[#wrong + 1] = ("%s is %s, not gone"):format(id, p.state) end
  end
  if #wrong > 0 then
    rcount(strategy, "wrong")
    rollout_problems[#rollout_problems + 1] = ("rollout %s (%s) ended %s, but %s"):format(rid, strategy, state,
      table.concat(wrong, ", "))
    say("ROLLOUT %s", rollout_problems[#rollout_problems])
  end
end

local deadline

local function wait(id)
  local ok, why = batch:wait_pool(id, { interval = 0.5, timeout = 120 })
  count(ok and "waits steady" or "waits failed")
  if not ok then say("wait %s: %s", id, tostring(why)) end
end

local durations = {}            -- slot kind -> generation durations (s)

local function generation(slot, gen)
  local started = core.now()
  local prefix = ("sk-%03d-g%d-"):format(slot.n, gen)
  local old = {}
  for k = 1, slot.size do old[k] = prefix .. string.char(96 + k) end
  local known = { table.unpack(old) }
  -- create, resize, wait, patch
  local live = {}
  each(old, function(id)
    local res, _, err = batch:create_pool(pool_spec(id))
    if not happened(res, err) then return count("pools not created (the failure was reported)") end
    live[#live + 1] = id
    wait(id)
    batch:resize_pool(id, { targetDedicatedNodes = 2 })
    wait(id)
    batch:patch_pool(id, { metadata = { { name = "soak", value = "1" }, { name = "gen", value = tostring(gen) } } })
  end)
  table.sort(live)
  local keep = live                                   -- the pools to delete at the end
  if slot.strategy and #live > 0 then
    in_rollout[prefix] = true
    local rid = ("s%03dg%d"):format(slot.n, gen)
    local st, _, names = run_rollout(slot.strategy, live, rid)
    in_rollout[prefix] = nil
    if st == "done" or st == "rolled_back" or st == "aborted" or st == "not_started" then
      check_rollout(slot.strategy, rid, st, live, names)
    end
    if slot.strategy == "blue-green" then
      for _, id in ipairs(live) do known[#known + 1] = names[id] end
    end
    if st == "done" and slot.strategy == "blue-green" then
      keep = {}
      for _, id in ipairs(live) do keep[#keep + 1] = names[id] end
    elseif st ~= "done" and st ~= "rolled_back" and st ~= "aborted" and st ~= "not_started" then
      keep = {}                                           -- stuck: whatever it left, as the service lists it
      for _, p in ipairs(azbatch.collect(batch:list_pools { filter = ("startswith(id,'%s')"):format(prefix),
        select = "id,state" }) or {}) do
        if p.state ~= "deleting" then keep[#keep + 1] = p.id end
      end
    end
  end
  if DWELL > 0 and #live > 0 then azbatch.sleep(DWELL) end   -- the pools at work
  -- delete, once more when the first delete failed
  each(keep, function(id)
    local res, _, err = batch:delete_pool(id)
    if not happened(res, err) and not (err and err.code == "PoolNotFound") then
      count("deletes sent again")
      batch:delete_pool(id)
    end
  end)
  -- nothing of this generation may be left but pools being deleted
  local left = azbatch.collect(batch:list_pools { filter = ("startswith(id,'%s')"):format(prefix),
    select = "id,state" })
  if not left then
    count("leak checks that could not list")
  else
    for _, p in ipairs(left) do
      if p.state ~= "deleting" then
        count("pools leaked")
        id_problems[#id_problems + 1] = ("%s left %s after its generation"):format(p.id, p.state)
        say("LEAK %s (%s)", p.id, p.state)
        batch:delete_pool(p.id)
      end
    end
  end
  gens_over[#gens_over + 1] = known
  count("generations")
  local kind = slot.strategy or "plain"
  durations[kind] = durations[kind] or {}
  table.insert(durations[kind], core.now() - started)
end

-- The slots: per 20 pools, 17 plain, 1 in-place rollout of one pool, 1
-- blue-green rollout of two pools.
local slots = {}
do
  local pools, n = 0, 0
  while pools < POOLS do
    n = n + 1
    local k = n % 19
    local slot = { n = n, size = 1 }
    if k == 9 then slot.strategy = "in-place"
    elseif k == 0 and pools + 2 <= POOLS then slot.strategy, slot.size = "blue-green", 2 end
    slots[n] = slot
    pools = pools + slot.size
  end
end

-- {===================================================================
-- The run
-- ====================================================================

control("faults", FAULTS)
local stats0 = control("stats")
T0 = core.now()
deadline = T0 + SECONDS
local running = true
local gens_by_slot = {}

local STAGGER = math.min(DWELL + 5, SECONDS / 4)
local tasks = {}
for i, slot in ipairs(slots) do
  tasks[#tasks + 1] = function()
    azbatch.sleep(STAGGER * (i - 1) / #slots)     -- spread over a generation: a steady load, not waves in step
    local gen = 0
    while core.now() < deadline do
      gen = gen + 1
      generation(slot, gen)
    end
    gens_by_slot[i] = gen
  end
end
local workers = #tasks
local driver = function()
  azbatch.parallel(tasks)
  running = false
end
local function every(seconds, fn)
  return function()
    local nxt = core.now()
    while running do
      if core.now() >= nxt then
        fn()
        nxt = nxt + seconds
      end
      azbatch.sleep(math.min(0.5, math.max(0, nxt - core.now())))
    end
  end
end
say("soak: %d pools in %d slots (%d rollout slots), %d s, faults %s, outages of %d s every %d s", POOLS, workers,
  (function() local n = 0; for _, s in ipairs(slots) do if s.strategy then n = n + 1 end end; return n end)(),
  SECONDS, azbatch.json.encode(FAULTS), OUTAGE.seconds, OUTAGE.every)
local outages = 0
local function outage()
  local nxt = T0 + OUTAGE.every / 2
  while running do
    if core.now() >= nxt and core.now() + OUTAGE.seconds < deadline then
      outages = outages + 1
      say("outage %d: every connection dropped for %d s", outages, OUTAGE.seconds)
      control("faults", OUTAGE_FAULTS)
      azbatch.sleep(OUTAGE.seconds)
      control("faults", FAULTS)
      say("outage %d over", outages)
      nxt = nxt + OUTAGE.every
    end
    azbatch.sleep(0.5)
  end
end
azbatch.parallel {
  driver,
  outage,
  every(SAMPLE_EVERY, function() if core.now() <= deadline then sample() end end),
  every(JUDGE_EVERY, function()
    judge_pass(false)
    local t = tally:totals()
    say("ops %d, unknown %d, problems %d; generations %d; lua %.0f KiB", t.ops, t.unknown, #tally.problems,
      others.generations or 0, collectgarbage("count"))
  end),
}
local elapsed = core.now() - T0
local cpu = os.clock()
control("faults", { p429 = 0, p503 = 0, drop = 0, dropAfterCommit = 0, latencyMs = 0 })
judge_pass(true)
local stats = control("stats")

-- every soak pool gone (deletes finish in simulated time)
local left_at_end
for _ = 1, 120 do
  left_at_end = assert(azbatch.collect(batch:list_pools { filter = "startswith(id,'sk-')", select = "id,state" }))
  if #left_at_end == 0 then break end
  azbatch.sleep(0.5)
end

-- {===================================================================
-- The checks and the summary
-- ====================================================================

-- A table's keys, sorted (by 'order' when given).
local function keys(t, order)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out, order)
  return out
end

local function median(list)
  table.sort(list)
  local n = #list
  if n == 0 then return 0 end
  if n % 2 == 1 then return list[(n + 1) // 2] end
  return (list[n // 2] + list[n // 2 + 1]) / 2
end

local function quarter(key, q)
  local n = #samples
  local from, to = math.floor(n * (q - 1) / 4) + 1, math.floor(n * q / 4)
  local vals = {}
  for i = from, to do vals[#vals + 1] = samples[i][key] end
  return median(vals), #vals
end

local lines = {}
local function out(fmt, ...) lines[#lines + 1] = fmt:format(...) end
local failed = {}
local function check(name, ok, detail)
  if not ok then failed[#failed + 1] = name end
  out("  %-22s %s  %s", name, ok and "PASS" or "FAIL", detail)
end

local t = tally:totals()
local requests = stats.requests - stats0.requests
local gmin, gmax = math.huge, 0
for i = 1, workers do
  gmin = math.min(gmin, gens_by_slot[i] or 0)
  gmax = math.max(gmax, gens_by_slot[i] or 0)
end

out("== soak summary")
out("time: budget %d s, ran %.0f s (a generation started before the end finishes)", SECONDS, elapsed)
out("pools: %d slots of %d pools, %d generations (waves: %d to %d per slot), %d pool ids created",
  workers, POOLS, others.generations or 0, gmin, gmax, ids.created_once + ids.duplicated)
out("faults injected: %s; %d outages of %d s (every connection dropped)", azbatch.json.encode(stats.faults),
  outages, OUTAGE.seconds)
out("")
out("writes by kind (judged against the journal; 'rollout ...' = made by azbatch.rollout):")
for _, l in ipairs(tally:lines()) do out("  %s", l) end
out("")
out("rollouts:")
for _, s in ipairs(keys(rollouts)) do
  local r = rollouts[s]
  out("  %-11s runs %d: done %d, rolled back %d, resumed %d, aborted %d, not started %d, stuck %d; "
    .. "end contradicted by the service %d", s, r.runs, r.done, r.rolled_back, r.resumed, r.aborted, r.not_started,
    r.stuck, r.wrong)
end
out("generation durations (s):")
for _, k in ipairs(keys(durations)) do
  local d = durations[k]
  out("  %-11s %d generations: median %.1f, max %.1f", k, #d, median(d), d[#d])   -- median sorts d
end
out("other counts:")
for _, k in ipairs(keys(others)) do out("  %-45s %d", k, others[k]) end
out("")
out("unknown outcomes: %d (settled by reading back: %d, read back wrong: %d)", t.unknown, t.settled,
  t.settled_wrong)
for _, u in ipairs(unknowns) do out("  %s", u) end
out("")
out("memory samples: %d, every %.0f s until the deadline (Lua heap after a full collection; VmRSS)", #samples,
  SAMPLE_EVERY)
local q = {}
for _, key in ipairs { "lua_kb", "rss_kb" } do
  q[key] = {}
  for i = 1, 4 do q[key][i] = quarter(key, i) end
  local vals = {}
  for i, s in ipairs(samples) do vals[i] = s[key] end
  local lo, hi = math.huge, 0
  for _, v in ipairs(vals) do lo, hi = math.min(lo, v), math.max(hi, v) end
  out("  %-6s KiB: min %.0f, max %.0f; quarter medians %.0f | %.0f | %.0f | %.0f", key == "lua_kb" and "lua" or "rss",
    lo, hi, q[key][1], q[key][2], q[key][3], q[key][4])
  local every5 = {}
  for i = 1, #vals, 5 do every5[#every5 + 1] = ("%.0f"):format(vals[i]) end
  out("         every 5th: %s", table.concat(every5, " "))
end
local function flat(key, slack)
  return q[key][4] <= math.max(q[key][2] * MEMORY_RULE.ratio, q[key][2] + slack)
end
-- the peak over windows of about 10 s
local peak, span = 0, math.max(1, math.floor(10 / SAMPLE_EVERY + 0.5))
for i = span + 1, #samples do
  local dt = samples[i].t - samples[i - span].t
  if dt > 0 then peak = math.max(peak, (samples[i].requests - samples[i - span].requests) / dt) end
end
local rate, per_op = requests / elapsed, requests / math.max(1, t.ops)
out("requests: %d in %.0f s = %.1f/s (budget %.0f/s; peak 10 s window %.1f/s, limit %.0f/s); %.1f per write "
  .. "(budget %d); journal entries %d", requests, elapsed, rate, RATE_BUDGET, peak, PEAK_BUDGET, per_op,
  PER_OP_BUDGET, journal_entries)
do
  local shapes = keys(asked, function(a, b) return asked[a] > asked[b] end)
  out("data-plane calls by shape (attempts not counted):")
  for _, k in ipairs(shapes) do out("  %-40s %d", k, asked[k]) end
end
out("client CPU: %.1f s (%.2f ms per request)", cpu, 1000 * cpu / math.max(1, requests))
out("")
out("checks:")
check("true outcomes", #tally.problems == 0 and missed == 0 and t.ops > 0
  and t.unknown == t.settled and t.settled_wrong == 0,
  ("%d writes: %d false successes, %d false failures, %d unknown (%d settled, %d wrong); journal entries missed %d")
  :format(t.ops, t.false_success, t.false_failure, t.unknown, t.settled, t.settled_wrong, missed))
check("no leak, no duplicate", ids.duplicated == 0 and ids.unaccounted == 0 and ids.unattributed == 0
  and (others["pools leaked"] or 0) == 0 and #left_at_end == 0 and ids.created_once > 0,
  ("%d ids created exactly once, %d never created, %d twice or more, %d unaccounted, %d unattributed writes; "
    .. "leaked %d during the run, %d soak pools left at the end"):format(ids.created_once, ids.never_created,
    ids.duplicated, ids.unaccounted, ids.unattributed, others["pools leaked"] or 0, #left_at_end))
check("memory flat", #samples >= 8 and flat("lua_kb", MEMORY_RULE.lua_slack_kb)
  and flat("rss_kb", MEMORY_RULE.rss_slack_kb),
  ("last quarter's median <= max(%.2f x, + slack) the second's: lua %.0f vs %.0f KiB (slack %d), rss %.0f vs %.0f "
    .. "KiB (slack %d)"):format(MEMORY_RULE.ratio, q.lua_kb[4], q.lua_kb[2], MEMORY_RULE.lua_slack_kb, q.rss_kb[4],
    q.rss_kb[2], MEMORY_RULE.rss_slack_kb))
check("request rate", rate <= RATE_BUDGET and peak <= PEAK_BUDGET and per_op <= PER_OP_BUDGET,
  ("%.1f/s <= %.0f/s, peak %.1f/s <= %.0f/s, %.1f requests per write <= %d"):format(rate, RATE_BUDGET, peak,
    PEAK_BUDGET, per_op, PER_OP_BUDGET))
do
  local runs, ended, wrong, bad_end = 0, 0, 0, 0
  for _, r in pairs(rollouts) do
    runs, ended = runs + r.runs, ended + r.done + r.rolled_back
    wrong, bad_end = wrong + r.wrong, bad_end + r.aborted + r.stuck
  end
  check("rollouts end truly", runs > 0 and wrong == 0 and bad_end == 0,
    ("%d runs: %d done or rolled back (resumed where they stopped), %d aborted or stuck, %d whose end the service "
      .. "contradicts"):format(runs, ended, bad_end, wrong))
end
for i = 1, math.min(#rollout_problems, 20) do out("  problem: %s", rollout_problems[i]) end
for i = 1, math.min(#tally.problems, 20) do out("  problem: %s", tally.problems[i]) end
for i = 1, math.min(#id_problems, 20) do out("  problem: %s", id_problems[i]) end
out("")
out(#failed == 0 and "soak: all checks passed" or ("soak: FAILED: " .. table.concat(failed, ", ")))

local text = table.concat(lines, "\n") .. "\n"
io.write("\n", text)
if SUMMARY then
  local f = assert(io.open(SUMMARY, "w"))
  f:write(text)
  f:close()
end
batch:close()
arm:close()
os.exit(#failed == 0 and 0 or 1)
