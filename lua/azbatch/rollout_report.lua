--- A rollout's report and its timeline picture: node counts by state of
-- every pool over the rollout, one panel per pool, with the steps marked.
-- Hand-written SVG (no dependency), readable at a glance: stacked areas of
-- ready / starting / leaving / failed nodes, a time axis in seconds from
-- the start, a legend, and a numbered line at each step's end.
local M = {}

-- Node states grouped as a person reads them, bottom to top.
M.GROUPS = {
  { name = "ready", states = { "idle", "running" }, color = "#2e9d4f" },
  { name = "starting", states = { "creating", "starting", "waitingforstarttask", "rebooting", "reimaging",
    "upgradingos" }, color = "#f2b233" },
  { name = "leaving", states = { "leavingpool", "deallocating", "deallocated", "preempted", "offline" },
    color = "#7d8ca3" },
  { name = "failed", states = { "unusable", "starttaskfailed", "unknown" }, color = "#d0342c" },
}

-- REST counter names (BatchNodeCounts) to node states.
local COUNTER = { waitingForStartTask = "waitingforstarttask", startTaskFailed = "starttaskfailed",
  leavingPool = "leavingpool", upgradingOS = "upgradingos" }

--- Per-state counts from a BatchPoolNodeCounts row (dedicated plus low priority).
function M.counts_of(row)
  local out = {}
  for _, part in ipairs { "dedicated", "lowPriority" } do
    local c = type(row[part]) == "table" and row[part] or {}
    for k, v in pairs(c) do
      if k ~= "total" and math.tointeger(v) and v > 0 then
        local s = COUNTER[k] or k:lower()
        out[s] = (out[s] or 0) + math.tointeger(v)
      end
    end
  end
  return out
end

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local function num(x)
  local s = ("%.1f"):format(x)
  return (s:gsub("%.0$", ""))
end

-- A "nice" axis step for a range.
local function tick(range, want)
  local raw = range / want
  local mag = 10 ^ math.floor(math.log(raw, 10))
  for _, m in ipairs { 1, 2, 5, 10 } do
    if raw <= m * mag then return m * mag end
  end
  return 10 * mag
end

--- svg(report) -> string. report: {id, strategy, started, samples =
-- {{t, pool, counts}...}, steps = {{n, name, start, ["end"], outcome}...},
-- undo = {...}, pools = {ids in order}}.
function M.svg(report)
  local samples = report.samples or {}
  local pools, seen = {}, {}
  for _, id in ipairs(report.pools or {}) do
    if not seen[id] then pools[#pools + 1], seen[id] = id, true end
  end
  for _, s in ipairs(samples) do
    if not seen[s.pool] then pools[#pools + 1], seen[s.pool] = s.pool, true end
  end
  local t0 = report.started or (samples[1] and samples[1].t) or 0
  local t1 = t0 + 1
  for _, s in ipairs(samples) do t1 = math.max(t1, s.t) end
  local marks = {}
  for _, list in ipairs { report.steps or {}, report.undo or {} } do
    for _, st in ipairs(list) do
      if st["end"] then
        t1 = math.max(t1, st["end"])
        marks[#marks + 1] = st
      end
    end
  end
  local W, left, right, top = 960, 70, 20, 74
  local ph, gap = 150, 46
  local pw = W - left - right
  local H = top + #pools * (ph + gap) + 40
  local function x(t) return left + (t - t0) / (t1 - t0) * pw end
  local out = {}
  local function add(fmt, ...) out[#out + 1] = fmt:format(...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">', W, H, W, H)
  add('<rect width="100%%" height="100%%" fill="#ffffff"/>')
  local title = ("rollout %s: %s%s"):format(report.id or "?", report.strategy or "?",
    report.state and (" (" .. report.state .. ")") or "")
  add('<text x="%d" y="22" font-size="16" font-weight="bold">%s</text>', left, esc(title))
  -- legend
  local lx = left
  for _, g in ipairs(M.GROUPS) do
    add('<rect x="%d" y="32" width="12" height="12" fill="%s"/><text x="%d" y="42">%s</text>', lx, g.color,
      lx + 16, g.name)
    lx = lx + 90
  end
  add('<line x1="%d" y1="32" x2="%d" y2="44" stroke="#333" stroke-dasharray="3,2"/><text x="%d" y="42">'
    .. 'step ends (n)</text>', lx + 4, lx + 4, lx + 10)
  local xstep = tick(t1 - t0, 8)
  for i, id in ipairs(pools) do
    local y0 = top + (i - 1) * (ph + gap) + 24
    local mine = {}
    local peak = 1
    for _, s in ipairs(samples) do
      if s.pool == id then
        local tot = 0
        for _, v in pairs(s.counts) do tot = tot + v end
        peak = math.max(peak, tot)
        mine[#mine + 1] = s
      end
    end
    table.sort(mine, function(a, b) return a.t < b.t end)
    local ystep = math.max(1, math.floor(tick(peak, 4) + 0.5))
    local ymax = math.ceil(peak / ystep) * ystep
    local function y(v) return y0 + ph - v / ymax * ph end
    add('<text x="%d" y="%d" font-weight="bold">%s</text>', left, y0 - 8, esc(id))
    add('<rect x="%d" y="%d" width="%d" height="%d" fill="#f7f7f7" stroke="#999"/>', left, y0, pw, ph)
    for v = 0, ymax, ystep do
      add('<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#ddd"/><text x="%d" y="%s" text-anchor="end">%d</text>',
        left, num(y(v)), left + pw, num(y(v)), left - 6, num(y(v) + 4), v)
    end
    -- stacked areas: each group drawn as a step function over the samples
    if #mine > 0 then
      local base = {}
      for j = 1, #mine do base[j] = 0 end
      for _, g in ipairs(M.GROUPS) do
        local tops = {}
        for j, s in ipairs(mine) do
          local v = 0
          for _, st in ipairs(g.states) do v = v + (s.counts[st] or 0) end
          tops[j] = base[j] + v
        end
        local pts = {}
        for j, s in ipairs(mine) do
          local xe = j < #mine and x(mine[j + 1].t) or x(t1)
          pts[#pts + 1] = num(x(s.t)) .. "," .. num(y(tops[j]))
          pts[#pts + 1] = num(xe) .. "," .. num(y(tops[j]))
        end
        for j = #mine, 1, -1 do
          local xe = j < #mine and x(mine[j + 1].t) or x(t1)
          pts[#pts + 1] = num(xe) .. "," .. num(y(base[j]))
          pts[#pts + 1] = num(x(mine[j].t)) .. "," .. num(y(base[j]))
        end
        add('<polygon points="%s" fill="%s" fill-opacity="0.85" stroke="none"><title>%s</title></polygon>',
          table.concat(pts, " "), g.color, g.name)
        base = tops
      end
    else
      add('<text x="%d" y="%d" fill="#666">no node counts recorded</text>', left + 10, y0 + ph // 2)
    end
    -- steps that end within a few pixels of each other share one label ("3-6", "9,11")
    local clusters = {}
    for _, st in ipairs(marks) do
      local mx = num(x(st["end"]))
      local color = st.outcome == "failed" and "#d0342c" or (st.n or 0) < 0 and "#8a4fbf" or "#333"
      add('<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-dasharray="3,2" stroke-width="0.8">'
        .. '<title>%s</title></line>', mx, y0, mx, y0 + ph, color, esc(("%s: %s (%s)"):format(st.n, st.name or "",
          st.outcome or "")))
      local last = clusters[#clusters]
      if last and x(st["end"]) - last.x < 12 then
        last.steps[#last.steps + 1] = st
      else
        clusters[#clusters + 1] = { x = x(st["end"]), steps = { st } }
      end
    end
    if i == 1 then
      for _, c in ipairs(clusters) do
        local ns, names, failed, run = {}, {}, false, true
        for _, st in ipairs(c.steps) do
          names[#names + 1] = (st.n or 0) < 0 and ("u" .. -st.n) or tostring(st.n)
          if math.type(st.n) == "integer" and st.n > 0 then ns[#ns + 1] = st.n else run = false end
          failed = failed or st.outcome == "failed"
        end
        table.sort(ns)
        for k = 2, #ns do run = run and ns[k] == ns[k - 1] + 1 end
        local text = (run and #ns > 2) and (ns[1] .. "-" .. ns[#ns]) or table.concat(names, ",")
        add('<text x="%s" y="%d" font-size="9" text-anchor="middle" fill="%s">%s</text>', num(c.x), y0 - 3,
          failed and "#d0342c" or "#333", esc(text))
      end
    end
    -- time axis
    local ay = y0 + ph
    for t = 0, t1 - t0, xstep do
      add('<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#999"/><text x="%s" y="%d" text-anchor="middle">%ss</text>',
        num(x(t0 + t)), ay, num(x(t0 + t)), ay + 4, num(x(t0 + t)), ay + 16, num(t))
    end
  end
  add('<text x="%d" y="%d" fill="#555">time since the rollout started (s); nodes per state</text>', left, H - 12)
  add("</svg>")
  return table.concat(out, "\n") .. "\n"
end

--- One line per step, for a terminal.
function M.text(report)
  local lines = { ("rollout %s (%s): %s%s"):format(report.id, report.strategy, report.state,
    report.rolled_back and report.state ~= "rolled_back" and ", rolled back" or "") }
  local t0 = report.started or 0
  local function row(st)
    lines[#lines + 1] = ("%4s  %-9s %7.1fs %7.1fs  %s%s"):format(st.n, st.outcome or "-", (st.start or t0) - t0,
      (st["end"] or st.start or t0) - t0, st.name or st.call or "",
      st.message and ("  (" .. st.message .. ")") or "")
  end
  for _, st in ipairs(report.steps or {}) do row(st) end
  if report.undo and #report.undo > 0 then
    lines[#lines + 1] = "  rollback:"
    for _, st in ipairs(report.undo) do row(st) end
  end
  return table.concat(lines, "\n") .. "\n"
end

--- One step of a plan as the dry run prints it; 't' the timeouts.
function M.plan_line(st, t)
  local what = st.method and (st.method .. " " .. st.path) or ""
  local target = st.pool or (st.pools and table.concat(st.pools, ", ")) or (st.from and (st.from .. " -> " .. st.to))
    or st.what or ""
  local extra = ""
  if st.call == "wait_pool" or st.call == "wait_empty" or st.call == "wait_deleted" then
    extra = (" (up to %gs)"):format(math.min(t.wait, t.step))
  end
  return ("%3d. %-17s %-38s %s%s"):format(st.n, st.call, what, target, extra)
end

return M
