--- A rollout's plan: the steps of each strategy, computed from the rollout's
-- record (what was persisted on the pools) and the old pools' bodies. Pure:
-- tables in, steps out, no network, so a resumed rollout recomputes exactly
-- the plan the first runner had, and the dry run prints what will be sent.
--
-- A step: {n, name, call, pool | pools, body, method, path, undo = {steps},
-- approve = bool, commit = bool}. 'undo' restores what the step changed; a
-- 'commit' step (deleting an old pool) cannot be undone, so a failure after
-- one stops the rollout instead of rolling it back.
local core = require "azbatch.core"
local json = require "azbatch.json"
local state = require "azbatch.rollout_state"

local M = {}

-- Pool properties a new pool takes from the one it replaces.
M.COPY = { "displayName", "vmSize", "resizeTimeout", "enableInterNodeCommunication", "networkConfiguration",
  "startTask", "applicationPackageReferences", "taskSlotsPerNode", "taskSchedulingPolicy", "userAccounts",
  "mountConfiguration", "upgradePolicy", "identity" }

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deep_copy(x) end
  return setmetatable(out, getmetatable(v))
end
M.deep_copy = deep_copy

local function path(id, suffix)
  return "/pools/" .. core.url_encode(id) .. (suffix or "")
end

--- The new virtualMachineConfiguration: the old one with the new image, the
-- node agent (when given) and the spec's vmc fields over it.
function M.new_vmc(old_vmc, rec)
  local vmc = deep_copy(type(old_vmc) == "table" and old_vmc or {})
  vmc.imageReference = deep_copy(rec.image)
  if rec.agent then vmc.nodeAgentSKUId = rec.agent end
  local over = rec.o and rec.o.spec and rec.o.spec.virtualMachineConfiguration
  for k, v in pairs(type(over) == "table" and over or {}) do vmc[k] = deep_copy(v) end
  return vmc
end

-- Targets of a pool record as {d, l}; autoscale as {f, i} or nil.
local function targets(orig)
  return { d = orig.td or 0, l = orig.tl or 0 }
end

--- The create body of a new pool replacing 'old' (its GET), at 'size'
-- ({d, l}) or with 'autoscale' ({f, i}).
function M.create_body(rec, old, new_id, part, size, autoscale)
  local body = { id = new_id }
  for _, k in ipairs(M.COPY) do
    if old[k] ~= nil then body[k] = deep_copy(old[k]) end
  end
  body.virtualMachineConfiguration = M.new_vmc(old.virtualMachineConfiguration, rec)
  for k, v in pairs(rec.o.spec or {}) do
    if k ~= "virtualMachineConfiguration" and k ~= "metadata" then body[k] = deep_copy(v) end
  end
  if autoscale then
    body.enableAutoScale = true
    body.autoScaleFormula = autoscale.f
    body.autoScaleEvaluationInterval = autoscale.i
    body.resizeTimeout = nil
  else
    body.targetDedicatedNodes = size.d
    body.targetLowPriorityNodes = size.l
  end
  -- the user's metadata, then the rollout's records (the progress is added
  -- when the step runs)
  local md = {}
  for _, kv in ipairs(type(old.metadata) == "table" and old.metadata or {}) do
    if type(kv) == "table" and not state.OURS[kv.name] then md[#md + 1] = { name = kv.name, value = kv.value } end
  end
  for _, kv in ipairs(rec.o.spec and rec.o.spec.metadata or {}) do md[#md + 1] = deep_copy(kv) end
  md[#md + 1] = { name = state.KEY, value = rec.text }
  md[#md + 1] = { name = state.POOL_KEY, value = json.encode(part) }
  body.metadata = json.array(md)
  return body
end

-- {===================================================================
-- Step constructors
-- ====================================================================

local S = {}
M.S = S

function S.wait(ids, nodes)
  return { call = "wait_pool", pools = ids, nodes = nodes or "ready",
    name = ("wait for %s (%s)"):format(table.concat(ids, ", "), nodes == "allocated" and "steady" or "nodes ready") }
end

function S.wait_empty(ids)
  return { call = "wait_empty", pools = ids, name = ("wait until %s has no nodes"):format(table.concat(ids, ", ")) }
end

function S.wait_deleted(id)
  return { call = "wait_deleted", pool = id, name = ("wait until %s is gone"):format(id) }
end

function S.delete(id, commit)
  return { call = "delete_pool", pool = id, method = "DELETE", path = path(id), commit = commit or nil,
    approve = commit or nil, name = ("delete %s"):format(id) }
end

function S.handover(from, to, how)
  local st = { call = "handover", from = from, to = to, how = how, name = ("hand jobs over from %s to %s")
    :format(from, to) }
  st.undo = { { call = "handover", from = to, to = from, how = how, name = ("hand jobs back from %s to %s")
    :format(to, from) } }
  return st
end

-- A resize to 'to' ({d, l}); 'from' is what to go back to on undo (nil: no
-- undo, for pools the rollout made and deletes on rollback).
function S.resize(id, to, from, dealloc)
  local body = { targetDedicatedNodes = to.d, targetLowPriorityNodes = to.l, nodeDeallocationOption = dealloc }
  local st = { call = "resize_pool", pool = id, body = body, method = "POST", path = path(id, "/resize"),
    name = ("resize %s to %d dedicated, %d low-priority"):format(id, to.d, to.l) }
  if from then
    st.undo = { S.resize(id, from, nil, nil), S.wait({ id }) }
  end
  return st
end

function S.disable_autoscale(id, as)
  return { call = "disable_autoscale", pool = id, method = "POST", path = path(id, "/disableautoscale"),
    name = ("disable autoscale on %s"):format(id), undo = { S.enable_autoscale(id, as) } }
end

function S.enable_autoscale(id, as, undo)
  return { call = "enable_autoscale", pool = id, method = "POST", path = path(id, "/enableautoscale"),
    body = { autoScaleFormula = as.f, autoScaleEvaluationInterval = as.i },
    name = ("enable autoscale on %s"):format(id), undo = undo and { { call = "disable_autoscale", pool = id,
      method = "POST", path = path(id, "/disableautoscale"), name = ("disable autoscale on %s"):format(id) } }
      or nil }
end

function S.patch_vmc(id, vmc, old_vmc)
  return { call = "patch_pool", pool = id, body = { virtualMachineConfiguration = vmc }, method = "PATCH",
    path = path(id), name = ("change %s's virtualMachineConfiguration"):format(id),
    undo = { S.wait_empty({ id }), { call = "patch_pool", pool = id, body = { virtualMachineConfiguration = old_vmc },
      method = "PATCH", path = path(id), name = ("restore %s's virtualMachineConfiguration"):format(id) } } }
end

function S.create(id, body, of, how)
  -- what the rollout made goes, jobs on it handed back first
  local undo = {}
  if how then undo[1] = S.handover(of, id, how).undo[1] end
  undo[#undo + 1] = S.delete(id)
  undo[#undo + 1] = S.wait_deleted(id)
  return { call = "create_pool", pool = id, body = body, method = "POST", path = "/pools", of = of,
    name = ("create %s"):format(id), undo = undo }
end

function S.health(id)
  return { call = "health", pool = id, name = ("health check of %s"):format(id) }
end

function S.approve(what)
  return { call = "approve", what = what, name = ("approval: %s"):format(what) }
end

function S.finish(ids)
  return { call = "finish", pools = ids, name = "record the rollout as done" }
end

-- {===================================================================
-- Strategies
-- ====================================================================

-- Split a node count n into dedicated and low-priority like 'full'.
local function share(n, full)
  local total = full.d + full.l
  if total == 0 then return { d = 0, l = 0 } end
  local d = math.min(full.d, math.floor(n * full.d / total + 0.5))
  return { d = d, l = math.min(full.l, n - d) }
end

local function add(steps, ...)
  for _, st in ipairs { ... } do steps[#steps + 1] = st end
end

-- The rollout's own handover: "jobs", "custom" (a function) or nil.
local function how(rec)
  local h = rec.o.handover
  if h == false or h == nil then return nil end
  return h
end

local function old_tail(steps, rec, ids)
  -- drain and delete the old pools (or keep them, as they are)
  if rec.o.keep_old then return end
  for _, id in ipairs(ids) do
    local orig = rec.orig[id]
    if orig.as then add(steps, S.disable_autoscale(id, orig.as)) end
    add(steps, S.resize(id, { d = 0, l = 0 }, targets(orig), rec.o.dealloc))
  end
  add(steps, S.wait(ids, "allocated"))
  for _, id in ipairs(ids) do add(steps, S.delete(id, true), S.wait_deleted(id)) end
end

local function body_of(rec, live, old_id, new_id, size, autoscale)
  local old = live[old_id]
  if not old then return nil end
  return M.create_body(rec, old, new_id, { role = "new", of = old_id }, size, autoscale)
end

local function canary_prelude(steps, rec, live)
  -- a separate canary pool, deleted once it is healthy (canary alone, or
  -- before an in-place upgrade)
  local first = rec.pools[1]
  local cid = rec.canary
  local old = live[first]
  local body = old and M.create_body(rec, old, cid, { role = "canary", of = first },
    { d = rec.o.canary.nodes, l = 0 }) or nil
  add(steps, S.create(cid, body, first, nil), S.wait({ cid }), S.health(cid), S.approve("canary " .. cid))
  if rec.o.canary.keep and not rec.o.canary["then"] then return end
  add(steps, S.delete(cid), S.wait_deleted(cid))
end

local function blue_green(steps, rec, live, canary)
  local h = how(rec)
  local news = {}
  for i, id in ipairs(rec.pools) do
    local orig, nid = rec.orig[id], rec.new[id]
    news[i] = nid
    if i == 1 and canary then
      add(steps, S.create(nid, body_of(rec, live, id, nid, { d = canary.nodes, l = 0 }), id, h), S.wait({ nid }),
        S.health(nid), S.approve("canary " .. nid))
      if orig.as then
        add(steps, S.enable_autoscale(nid, orig.as))
      else
        add(steps, S.resize(nid, targets(orig)))
      end
    else
      add(steps, S.create(nid, body_of(rec, live, id, nid, targets(orig), orig.as), id, h))
    end
  end
  add(steps, S.wait(news))
  for i, nid in ipairs(news) do
    if not (i == 1 and canary) then add(steps, S.health(nid)) end
  end
  if h then
    add(steps, S.approve("hand jobs over"))
    for i, id in ipairs(rec.pools) do add(steps, S.handover(id, news[i], h)) end
  end
  old_tail(steps, rec, rec.pools)
  local finish = { table.unpack(news) }
  if rec.o.keep_old then
    for _, id in ipairs(rec.pools) do finish[#finish + 1] = id end
  end
  add(steps, S.finish(finish))
end

-- Rolling: K old pools at a time, each replaced by a new pool that grows
-- while the old one shrinks, never more than the extra-node budget above
-- the old pools' sizes.
local function rolling(steps, rec, live, canary)
  local h = how(rec)
  local k = math.max(1, rec.o.batch or 1)
  local extra = math.max(1, rec.o.extra or 1)
  local finish = {}
  for g = 1, #rec.pools, k do
    local group = { table.unpack(rec.pools, g, math.min(#rec.pools, g + k - 1)) }
    local chunk = math.max(1, extra // #group)
    local seq, news = {}, {}
    for i, id in ipairs(group) do
      local orig = rec.orig[id]
      local full = targets(orig)
      local total = full.d + full.l
      local sizes, n = {}, math.min(total, chunk)
      if canary and g == 1 and i == 1 then n = math.min(n, canary.nodes) end
      n = math.max(n, math.min(1, total))
      while true do
        sizes[#sizes + 1] = n
        if n >= total then break end
        n = math.min(total, n + chunk)
      end
      seq[id] = sizes
      news[i] = rec.new[id]
      local first = share(sizes[1], full)
      add(steps, S.create(news[i], body_of(rec, live, id, news[i], first), id, h))
    end
    add(steps, S.wait(news))
    for _, nid in ipairs(news) do add(steps, S.health(nid)) end
    if h then
      add(steps, S.approve("hand jobs over"))
      for i, id in ipairs(group) do add(steps, S.handover(id, news[i], h)) end
    end
    for _, id in ipairs(group) do
      if rec.orig[id].as then add(steps, S.disable_autoscale(id, rec.orig[id].as)) end
    end
    -- rounds: shrink the old by what the new has, then grow the new
    local round = 1
    while true do
      local shrink, grow = {}, {}
      for i, id in ipairs(group) do
        local sizes, full = seq[id], targets(rec.orig[id])
        if sizes[round] then
          local total = full.d + full.l
          local prev = round == 1 and full or share(total - sizes[round - 1], full)
          local left = share(total - sizes[round], full)
          add(steps, S.resize(id, left, prev, rec.o.dealloc))
          shrink[#shrink + 1] = id
          if sizes[round + 1] then
            grow[#grow + 1] = { news[i], share(sizes[round + 1], full) }
          end
        end
      end
      if #shrink == 0 then break end
      add(steps, S.wait(shrink, "allocated"))
      if #grow == 0 then break end
      local ids = {}
      for _, gr in ipairs(grow) do
        add(steps, S.resize(gr[1], gr[2]))
        ids[#ids + 1] = gr[1]
      end
      add(steps, S.wait(ids))
      round = round + 1
    end
    for i, id in ipairs(group) do
      local as = rec.orig[id].as
      if as then add(steps, S.enable_autoscale(news[i], as)) end
    end
    if not rec.o.keep_old then
      for _, id in ipairs(group) do add(steps, S.delete(id, true), S.wait_deleted(id)) end
    end
    for _, n in ipairs(news) do finish[#finish + 1] = n end
    if rec.o.keep_old then for _, id in ipairs(group) do finish[#finish + 1] = id end end
  end
  add(steps, S.finish(finish))
end

-- In place: the same pool ids, K at a time: empty the pool, change its
-- virtualMachineConfiguration while it is empty, grow it back.
local function in_place(steps, rec)
  local k = math.max(1, rec.o.batch or 1)
  for g = 1, #rec.pools, k do
    local group = { table.unpack(rec.pools, g, math.min(#rec.pools, g + k - 1)) }
    for _, id in ipairs(group) do
      local orig = rec.orig[id]
      if orig.as then add(steps, S.disable_autoscale(id, orig.as)) end
      add(steps, S.resize(id, { d = 0, l = 0 }, targets(orig), rec.o.dealloc))
    end
    add(steps, S.wait_empty(group))
    for _, id in ipairs(group) do
      add(steps, S.patch_vmc(id, M.new_vmc(rec.orig[id].vmc, rec), rec.orig[id].vmc))
    end
    for _, id in ipairs(group) do
      local orig = rec.orig[id]
      if orig.as then
        local st = S.enable_autoscale(id, orig.as, true)
        -- undone: empty again (the undo of the patch needs it)
        st.undo = { st.undo[1], S.resize(id, { d = 0, l = 0 }, nil, rec.o.dealloc), S.wait_empty({ id }) }
        add(steps, st)
      else
        local st = S.resize(id, targets(orig))
        st.undo = { S.resize(id, { d = 0, l = 0 }, nil, rec.o.dealloc), S.wait_empty({ id }) }
        add(steps, st)
      end
    end
    add(steps, S.wait(group))
    for _, id in ipairs(group) do add(steps, S.health(id)) end
  end
  add(steps, S.finish({ table.unpack(rec.pools) }))
end

--- build(rec, live) -> steps. rec: the decoded rollout record with 'orig'
-- (old pool id -> {td, tl, as, vmc}) and 'text' (its JSON); live: old pool
-- id -> the pool as read (for the bodies of new pools; may be missing).
function M.build(rec, live)
  live = live or {}
  local steps = { { call = "preflight", name = "preflight of every pool the rollout creates or changes" } }
  local strategy, canary = rec.strategy, rec.o.canary
  local after = strategy == "canary" and canary and canary["then"] or nil
  if strategy == "canary" then
    if after == nil or after == "in-place" then canary_prelude(steps, rec, live) end
    strategy = after
    if after == "in-place" then canary = nil end
  else
    canary = nil
  end
  if strategy == "blue-green" then
    blue_green(steps, rec, live, canary)
  elseif strategy == "rolling" then
    rolling(steps, rec, live, canary)
  elseif strategy == "in-place" then
    in_place(steps, rec)
  else
    add(steps, S.finish({}))
    if rec.o.canary.keep then steps[#steps].pools = { rec.canary } end
  end
  for i, st in ipairs(steps) do
    st.n = i
    for j, u in ipairs(st.undo or {}) do u.n = -j end
  end
  return steps
end

-- {===================================================================
-- Reading a plan
-- ====================================================================

--- The bodies a rollout creates or changes, for preflight and validation:
-- new pools' bodies, and each patched pool as it will be.
function M.bodies(rec, steps, live)
  local out = {}
  for _, st in ipairs(steps) do
    if st.call == "create_pool" and st.body then
      out[#out + 1] = st.body
    elseif st.call == "patch_pool" and st.body and live[st.pool] then
      local b = { id = st.pool }
      for _, k in ipairs(M.COPY) do b[k] = live[st.pool][k] end
      local o = rec.orig[st.pool]
      b.targetDedicatedNodes, b.targetLowPriorityNodes = o.td, o.tl
      if o.as then
        b.enableAutoScale, b.autoScaleFormula, b.autoScaleEvaluationInterval = true, o.as.f, o.as.i
        b.targetDedicatedNodes, b.targetLowPriorityNodes, b.resizeTimeout = nil, nil, nil
      end
      b.virtualMachineConfiguration = st.body.virtualMachineConfiguration
      out[#out + 1] = b
    end
  end
  return out
end

--- The undo steps for a failure at step 'f' (its own too, since it may have
-- done part of its work), last first.
function M.undo_list(steps, f)
  local out = {}
  for i = math.min(f, #steps), 2, -1 do
    for _, u in ipairs(steps[i].undo or {}) do out[#out + 1] = u end
  end
  for j, u in ipairs(out) do u.n = -j end
  return out
end

--- The first commit step among the 'done' first steps, or nil.
function M.committed(steps, done)
  for i = 1, math.min(done, #steps) do
    if steps[i].commit then return steps[i] end
  end
end

return M
