--- A rollout's state on the service: three metadata items on every pool it
-- touches, so that the process running it can die at any point and another
-- can carry it on (or back) from the pools alone.
--
--   azbatch.rollout.plan  the rollout: id, strategy, image, node agent, the
--                         old pools, their targets and new ids, the options
--                         (the same value on every pool of the rollout)
--   azbatch.rollout.pool  this pool's part: "old" with its targets, autoscale
--                         settings and virtualMachineConfiguration before the
--                         rollout, or "new"/"canary" with the pool it replaces
--   azbatch.rollout.step  progress: {id, st = running|rolling_back|failed|done,
--                         n = steps done, b = undo steps done, o = the runner
--                         that owns it, t = when written, log = {{n, start,
--                         end, outcome}...}} (undo steps have negative n)
--
-- Any other item is the user's and is kept (an item named "azbatch.rollout"
-- too: the dev world's pools carry one). Values are compact JSON. Writes read the pool and patch its metadata
-- with If-Match, so two runners cannot interleave: a runner whose write
-- meets another owner stops.
local core = require "azbatch.core"
local json = require "azbatch.json"
local client = require "azbatch.client"

local M = {}

M.KEY = "azbatch.rollout.plan"
M.POOL_KEY = "azbatch.rollout.pool"
M.STEP_KEY = "azbatch.rollout.step"
M.VERSION = 1
-- azbatch's own cap per value (the service documents none; stay small)
M.MAX_VALUE = 4096

local OURS = { [M.KEY] = true, [M.POOL_KEY] = true, [M.STEP_KEY] = true }
M.OURS = OURS

-- States a rollout's progress can be in.
M.ACTIVE = { running = true, rolling_back = true, failed = true }

--- JSON text of a value, or fail when it is over the cap.
function M.encode(v, what)
  local text, why, err = json.encode(v)
  if not text then return nil, why, err end
  if #text > M.MAX_VALUE then
    return nil, ("rollout: the %s record is %d bytes, over the %d a metadata value may hold here (keep spec "
      .. "overrides small)"):format(what, #text, M.MAX_VALUE), { kind = "validation", field = "rollout." .. what }
  end
  return text
end

--- A pool's metadata array as name -> value.
function M.items(pool)
  local out = {}
  for _, kv in ipairs(type(pool) == "table" and type(pool.metadata) == "table" and pool.metadata or {}) do
    if type(kv) == "table" and type(kv.name) == "string" then out[kv.name] = kv.value end
  end
  return out
end

local function decode(text)
  if type(text) ~= "string" then return nil end
  local v = json.decode(text)
  return type(v) == "table" and v or nil
end

--- The three records of a pool (each nil when absent or unreadable).
function M.read(pool)
  local items = M.items(pool)
  return decode(items[M.KEY]), decode(items[M.POOL_KEY]), decode(items[M.STEP_KEY])
end

--- The pool's metadata with ours set from 'records' (name -> text; false
-- removes; absent keeps what is there), the user's own items first, in
-- their order.
function M.merge(pool, records)
  local out, kept = {}, {}
  for _, kv in ipairs(type(pool) == "table" and type(pool.metadata) == "table" and pool.metadata or {}) do
    if type(kv) == "table" then
      if not OURS[kv.name] then
        out[#out + 1] = { name = kv.name, value = kv.value }
      elseif records[kv.name] == nil then
        kept[kv.name] = kv.value                -- ours, not rewritten now
      end
    end
  end
  for _, name in ipairs { M.KEY, M.POOL_KEY, M.STEP_KEY } do
    local v = records[name]
    if v == nil then v = kept[name] end
    if v then out[#out + 1] = { name = name, value = v } end
  end
  return json.array(out)
end

--- A fresh runner token (who owns a rollout's progress).
function M.token()
  return core.uuid():gsub("-", ""):sub(1, 12)
end

local SELECT = "id,state,metadata"

--- Write our records on a pool: read it, check that the progress there
-- (if any) is this runner's, patch with If-Match. 'records' maps names to
-- texts (false removes). opts: id (the rollout's), take (a resuming runner
-- takes the rollout over), deleting_ok, known (M.remember's table: a pool
-- this runner wrote last is not read again, as its ETag says whether
-- anything changed since). Returns true, or fail: code "RolloutBusy" when
-- another runner owns it, "RolloutInProgress" when another rollout is
-- active on the pool, "PoolNotFound" when it is gone.
function M.write(c, pool_id, records, owner, opts)
  opts = opts or {}
  local known = opts.known
  local last_why, last_err
  for _ = 1, 5 do
    local pool, resp, err
    local mine = known and known[pool_id]
    if mine then
      -- one try on what this runner wrote; a 412 means someone else wrote since
      known[pool_id] = nil
      pool, resp = mine.pool, { etag = mine.etag }
    else
      pool, resp, err = c:get_pool(pool_id, { select = SELECT })
      if not pool then return nil, resp, err end
    end
    if pool.state == "deleting" and not opts.deleting_ok then
      return nil, ("pool %s: is being deleted"):format(pool_id), { kind = "api", code = "PoolBeingDeleted" }
    end
    local _, _, step = M.read(pool)
    if step and opts.id and step.id ~= opts.id and M.ACTIVE[step.st] then
      return nil, ("pool %s: is in rollout %s (%s); resume or abort it first"):format(pool_id, tostring(step.id),
        tostring(step.st)), { kind = "api", code = "RolloutInProgress", rollout = step.id }
    end
    if owner and step and step.id == opts.id and step.o and step.o ~= owner and not opts.take then
      return nil, ("pool %s: rollout %s is run by another runner (%s) now; this one stops"):format(pool_id,
        tostring(step.id), tostring(step.o)), { kind = "api", code = "RolloutBusy", owner = step.o }
    end
    local ok, why
    local metadata = M.merge(pool, records)
    ok, why, err = c:patch_pool(pool_id, { metadata = metadata }, { if_match = resp.etag })
    if ok then
      M.remember(known, pool_id, ok.etag, pool.state, metadata)
      return true
    end
    last_why, last_err = why, err
    if not (err and err.code == "ConditionNotMet") then return nil, why, err end
    -- the pool changed between the read and the write: read again
  end
  return nil, last_why, last_err
end

--- Note what a pool holds (its state and metadata) after this runner read
-- it or wrote it, with the 'etag' of that answer (a recovered write has
-- none: the next write reads the pool).
function M.remember(known, pool_id, etag, pool_state, metadata)
  if known then
    known[pool_id] = type(etag) == "string" and { etag = etag, pool = { state = pool_state, metadata = metadata } }
      or nil
  end
end

--- Every pool of the account that carries a rollout record, grouped by
-- rollout id: {id -> {record=, pools = {pool_id -> {role=, step=, pool=}}}}.
function M.scan(c)
  local pools, why, err = client.collect(c:list_pools { select = SELECT })
  if not pools then return nil, why, err end
  local out = {}
  for _, p in ipairs(pools) do
    local rec, part, step = M.read(p)
    local id = (rec and rec.id) or (step and step.id)
    if type(id) == "string" then
      local r = out[id] or { id = id, pools = {} }
      out[id] = r
      if rec and not r.record then r.record = rec end
      r.pools[p.id] = { part = part, step = step, state = p.state }
      -- the furthest progress any live pool holds is the rollout's
      if step and type(step.n) == "number" and (not r.step or M.later(step, r.step)) then r.step = step end
    end
  end
  return out
end

-- Order of progress records: rolling back comes after running; then by
-- steps done (more is later), then by time.
local RANK = { running = 1, failed = 1, rolling_back = 2, done = 3, rolled_back = 3 }
function M.later(a, b)
  local ra, rb = RANK[a.st] or 0, RANK[b.st] or 0
  if ra ~= rb then return ra > rb end
  local na, nb = (a.st == "rolling_back" and a.b or a.n) or 0, (b.st == "rolling_back" and b.b or b.n) or 0
  if na ~= nb then return na > nb end
  return (a.t or 0) > (b.t or 0)
end

--- Remove the rollout's records from a pool (write's owner and opts); a
-- pool that is gone or going away has none left to remove.
function M.remove(c, pool_id, owner, opts)
  local ok, why, err = M.write(c, pool_id, { [M.KEY] = false, [M.POOL_KEY] = false, [M.STEP_KEY] = false }, owner,
    opts)
  if not ok and not (err and (err.code == "PoolNotFound" or err.code == "PoolBeingDeleted")) then
    return nil, why, err
  end
  return true
end

--- The record's JSON (without what is per pool), or fail when too big.
function M.record_text(rec)
  local keep = {}
  for k, v in pairs(rec) do
    if k ~= "text" and k ~= "orig" then keep[k] = v end
  end
  -- each old pool's virtualMachineConfiguration is on that pool only
  keep.orig = {}
  for id, o in pairs(rec.orig or {}) do keep.orig[id] = { td = o.td, tl = o.tl, as = o.as } end
  return M.encode(keep, "rollout")
end

--- The compact step log of a progress record: {n, start, end, outcome} in
-- seconds from t0, the steps' entries then the undo steps'.
function M.log_entries(t0, log, undo_log)
  local out = {}
  t0 = t0 or 0
  for _, list in ipairs { log, undo_log } do
    for _, e in ipairs(list) do
      out[#out + 1] = { e.n, math.floor((e.start - t0) * 10 + 0.5) / 10, math.floor(((e["end"] or e.start) - t0)
        * 10 + 0.5) / 10, e.outcome }
    end
  end
  return out
end

--- The entries of a compact log back in absolute time, named after the
-- steps: the steps' entries, and the undo steps' (negative n).
function M.read_log(compact, t0, steps)
  local log, undo = {}, {}
  for _, e in ipairs(compact or {}) do
    local entry = { n = e[1], start = (t0 or 0) + e[2], ["end"] = (t0 or 0) + e[3], outcome = e[4] }
    local s = entry.n > 0 and steps[entry.n]
    entry.name = s and s.name or nil
    if entry.n > 0 then log[#log + 1] = entry else undo[#undo + 1] = entry end
  end
  return log, undo
end

return M
