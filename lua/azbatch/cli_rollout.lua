--- Rollouts from the command line: rollout start|status|resume|abort|forget
-- over azbatch.rollout (docs/rollouts.md), and run SCRIPT.lua [args], which
-- gives a rollout script azbatch, a ready client and arg.
local azbatch = require "azbatch"
local body = require "azbatch.cli_body"

local M = {}

local function rollout_lib() return require "azbatch.rollout" end

local G = "rollout"
local TIMEOUTS = {
  { name = "step-timeout", key = "stepTimeout", kind = "number", metavar = "SECONDS", group = "timeouts",
    help = "the bound of each step (default 3600)" },
  { name = "wait-timeout", key = "waitTimeout", kind = "number", metavar = "SECONDS", group = "timeouts",
    help = "the bound of each wait for a pool (default 1800)" },
  { name = "poll", key = "poll", kind = "number", metavar = "SECONDS", group = "timeouts",
    help = "seconds between polls (default 2)" },
}
local SVG = { name = "svg", key = "svg", kind = "string", metavar = "FILE", group = G,
  help = "write the timeline of node counts by state and the steps (SVG) to FILE" }
local ID = { name = "id", key = "id", kind = "string", metavar = "ID", group = G, help = "the rollout's id (required)" }

local START = {
  { name = "strategy", key = "strategy", kind = "string", choices = { "canary", "blue-green", "rolling", "in-place" },
    group = G, help = "how the pools move to the image (required)" },
  { name = "pool", key = "pools", kind = "list", metavar = "ID[,ID...]", aliases = { "pools", "pool-id" }, group = G,
    help = "the pools to move (required)" },
  { name = "image", key = "image", kind = "string", metavar = "IMAGE", group = G,
    help = "the new image: a gallery version or image id, a managed image id or a URN (required)" },
  { name = "node-agent-sku-id", key = "nodeAgent", kind = "string", metavar = "SKU", group = G,
    help = "the new pools' node agent, or auto (default: the old pool's)" },
  { name = "canary-nodes", key = "canaryNodes", kind = "integer", metavar = "N", group = G,
    help = "canary: the canary pool's nodes (default 1)" },
  { name = "then", key = "canaryThen", kind = "string", choices = { "blue-green", "rolling", "in-place" }, group = G,
    help = "canary: what follows a healthy canary (default: stop)" },
  { name = "keep-canary", key = "keepCanary", kind = "flag", group = G, help = "canary: keep a lone canary pool" },
  { name = "batch", key = "batch", kind = "integer", metavar = "K", group = G,
    help = "rolling, in-place: pools changed at a time (default 1)" },
  { name = "extra-nodes", key = "extraNodes", kind = "integer", metavar = "N", group = G,
    help = "rolling: nodes above the old pools' sizes at any time (default 2)" },
  { name = "keep-old", key = "keepOld", kind = "flag", group = G,
    help = "blue-green: leave the old pools; rolling: leave them at 0 nodes" },
  { name = "node-deallocation-option", key = "deallocation", kind = "string", aliases = { "deallocation" },
    choices = { "requeue", "terminate", "taskcompletion", "retaineddata" }, group = G,
    help = "how shrinking pools treat running tasks (default taskcompletion)" },
  { name = "handover", key = "handover", kind = "string", choices = { "jobs", "none" }, group = G,
    help = "move the account's jobs to the new pools (default jobs)" },
  { name = "disable-tasks", key = "disableTasks", kind = "string", choices = { "requeue", "terminate", "wait" },
    group = G, help = "how jobs are disabled for the handover (default requeue)" },
  { name = "id", key = "id", kind = "string", metavar = "ID", group = G,
    help = "the rollout's id (default ro-XXXXXXXX)" },
  { name = "names", key = "names", kind = "list", metavar = "OLD=NEW", group = G,
    help = "the new pools' ids (default OLD-ID)" },
  { name = "no-preflight", key = "noPreflight", kind = "flag", group = G, help = "skip preflight (bodies are still "
    .. "validated)" },
  { name = "json-file", key = "jsonFile", kind = "string", metavar = "FILE", group = G,
    help = "pool body fields set over the new pools' (in place: virtualMachineConfiguration only)" },
  { name = "dry-run", key = "dryRun", kind = "flag", group = G,
    help = "print the plan (each call, with its body) and the preflight findings; change nothing" },
  SVG,
}
for _, f in ipairs(TIMEOUTS) do START[#START + 1] = f end

local function timeouts(o)
  if o.stepTimeout or o.waitTimeout or o.poll then
    return { step = o.stepTimeout, wait = o.waitTimeout, poll = o.poll }
  end
end

-- "a,b c" -> {"a", "b", "c"}
local function ids(list)
  local out = {}
  for _, v in ipairs(list or {}) do
    for id in v:gmatch("[^,%s]+") do out[#out + 1] = id end
  end
  return out
end

local STEP_COLUMNS = {
  { "N", function(e) return e.n end },
  { "Step", function(e) return e.name end },
  { "Pool", function(e) return e.pool end },
  { "Outcome", function(e) return e.outcome end },
  { "Seconds", function(e) return e["end"] and e.start and math.floor((e["end"] - e.start) * 10 + 0.5) / 10 end },
  { "Message", function(e) return e.message end },
}

-- A report as --output json prints it: everything but its text.
local function report_value(r)
  local out = {}
  for k, v in pairs(r) do if k ~= "text" then out[k] = v end end
  for _, k in ipairs { "steps", "undo", "samples", "findings", "pools" } do
    out[k] = azbatch.json.array(out[k] or {})
  end
  return out
end

-- The report's text keeps its line ends: each line is cleaned.
local function report_text(r)
  local lines = {}
  for line in tostring(r.text or ""):gmatch("[^\n]+") do lines[#lines + 1] = azbatch.sanitize(line, 1024) end
  return table.concat(lines, "\n") .. (#lines > 0 and "\n" or "")
end
-- The view of a report: its text for table (the JSON leaves the text out).
local function report_view(r)
  return { text = function() return report_text(r) end, rows = function(v) return v.steps end,
    columns = STEP_COLUMNS }
end

local function write_svg(ctx, path, svg)
  if not path then return true end
  local f, why = io.open(path, "wb")
  if not f then
    ctx:fail(("--svg %s: cannot write it (%s)"):format(path, (why:gsub("^.*: ", ""))))
    return false
  end
  f:write(svg)
  f:close()
  return true
end

-- Progress on stderr: one timestamped line per step as it ends (a log,
-- kept), and on a terminal the wait in progress as one line redrawn
-- beneath them (a bar and the node-state counts). label() names the
-- rollout (its id is known once it is made).
local function step_hooks(ctx, label)
  local log = ctx:progress()
  local live = log.terminal and ctx:progress() or nil
  log.terminal = false
  return {
    on_step = function(e)
      if live and live.drawn then live.w:write("\r\27[K"); live.drawn = false; live.last = nil end
      log:step(label(), ("step %s %s"):format(tostring(e.n), tostring(e.name or e.call or "")),
        tostring(e.outcome or "") .. (e.message and (": " .. e.message) or ""))
    end,
    on_progress = live and function(p)
      if p.deleting then live:deleting(p) else live:pool(p) end
    end or nil,
  }
end

-- The end of a run, resume or abort: the report, then the error line.
local function finish(ctx, o, report, why, err, svg)
  report = report or (type(err) == "table" and err.report)
  if report then
    local status = ctx:emit(report_value(report), report_view(report))
    if status ~= 0 then return status end
    if not write_svg(ctx, o.svg, svg and svg(report) or rollout_lib().svg(report)) then return 1 end
  end
  if why then return ctx:fail(why, err) end
  return 0
end

local ROLLOUT_START = {
  name = "rollout start", account = true, default_output = "table",
  usage = "azbatch rollout start --strategy canary|blue-green|rolling|in-place --pool ID[,ID...] --image IMAGE "
    .. "[--dry-run] [--canary-nodes N --then STRATEGY] [--batch K] [--extra-nodes N] [--svg FILE]",
  summary = "Move pools to a new image. Runs preflight first, keeps its progress in the pools' metadata (resume "
    .. "or abort it from there), rolls back what it made on a failure, and prints its report; --dry-run prints the "
    .. "plan and changes nothing. Steps are logged on stderr as they end.",
  flags = START,
  run = function(ctx, o)
    if not ctx:need(o, { START[1], START[2], START[3] }) then return 2 end
    if o.strategy ~= "canary" and (o.canaryNodes or o.canaryThen or o.keepCanary) then
      return ctx:usage_error("--canary-nodes, --then and --keep-canary go with --strategy canary")
    end
    local names
    for _, pair in ipairs(o.names or {}) do
      local old, new = pair:match("^([^=]+)=(.+)$")
      if not old then return ctx:usage_error(("--names expects OLD=NEW, got %q"):format(pair)) end
      names = names or {}
      names[old] = new
    end
    local spec
    if o.jsonFile then
      local why
      spec, why = body.load_json(o.jsonFile, "pool body fields")
      if not spec then return ctx:fail(why) end
    end
    local c, status = ctx:connect()
    if not c then return status end
    local aopts, astatus = ctx:arm_opts()
    if not aopts then return astatus end
    local lib = rollout_lib()
    local opts = { strategy = o.strategy, pools = ids(o.pools), image = o.image, node_agent = o.nodeAgent,
      spec = spec, batch = o.batch, extra_nodes = o.extraNodes, keep_old = o.keepOld or nil,
      deallocation = o.deallocation, disable_tasks = o.disableTasks, timeouts = timeouts(o), id = o.id,
      names = names, arm = aopts.arm, account = aopts.account }
    -- false is an answer here: set only what was asked
    if o.handover == "none" then opts.handover = false end
    if o.noPreflight then opts.preflight = false end
    if o.strategy == "canary" then
      opts.canary = { nodes = o.canaryNodes, ["then"] = o.canaryThen, keep = o.keepCanary or nil }
    end
    local rid = o.id
    opts.hooks = step_hooks(ctx, function() return rid end)
    local ok, r, why, err = pcall(lib.new, c, opts)
    if not ok then
      -- the library refuses options it cannot take: say what, not where
      return ctx:usage_error((tostring(r):gsub("^.-bad argument #%d+ to '[%w_]+' %((.*)%)$", "%1")))
    end
    if not r then return ctx:fail(why, err) end
    rid = r.id
    if o.dryRun then
      local lines = {}
      local steps, dwhy, derr = r:dry_run(function(line) lines[#lines + 1] = line end)
      if not steps then return ctx:fail(dwhy, derr) end
      if (ctx.o.output or "table") == "table" and not ctx.query then
        for _, line in ipairs(lines) do ctx.out:write(azbatch.sanitize(line, 1 << 16), "\n") end
        return 0
      end
      return ctx:emit(azbatch.json.array(steps), { columns = {
        { "N", function(s) return s.n end }, { "Step", function(s) return s.name end },
        { "Call", function(s) return s.call end }, { "Pool", function(s) return s.pool end } } })
    end
    local report, rwhy, rerr = r:run()
    return finish(ctx, o, report, rwhy, rerr, function() return r:timeline_svg() end)
  end,
}

local STATUS_VIEW = { columns = {
  { "Id", function(r) return r.id end },
  { "Strategy", function(r) return r.strategy end },
  { "State", function(r) return r.state end },
  { "Steps", function(r) return ("%s/%s"):format(tostring(r.done or 0), tostring(r.steps or "?")) end },
  { "Pools", function(r)
    local parts = {}
    for id, role in pairs(type(r.pools) == "table" and r.pools or {}) do parts[#parts + 1] = id .. ":" .. role end
    table.sort(parts)
    return table.concat(parts, " ")
  end },
  { "Updated", function(r)
    return type(r.updated) == "number" and os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(r.updated)) or nil
  end },
} }

local ROLLOUT_STATUS = {
  name = "rollout status", account = true, default_output = "table",
  usage = "azbatch rollout status [--id ID]",
  summary = "List the account's rollouts, with their state and steps done. They are found by their records on "
    .. "the pools; with --id, that rollout's steps.",
  flags = { { name = "id", key = "id", kind = "string", metavar = "ID", help = "one rollout, step by step" } },
  run = function(ctx, o)
    local c, status = ctx:connect()
    if not c then return status end
    local st, why, err = rollout_lib().status(c)
    if not st then return ctx:fail(why, err) end
    if o.id then
      for _, item in ipairs(st.rollouts) do
        if item.id == o.id then
          if not item.report then return ctx:emit(item, STATUS_VIEW) end
          return ctx:emit(report_value(item.report), report_view(item.report))
        end
      end
      return ctx:fail(("rollout %s: no pool holds it"):format(o.id))
    end
    for _, item in ipairs(st.rollouts) do item.report = nil end
    return ctx:emit(azbatch.json.array(st.rollouts), STATUS_VIEW)
  end,
}

local function by_id(name, summary, call)
  return {
    name = name, account = true, default_output = "table",
    usage = "azbatch " .. name .. " --id ID",
    summary = summary,
    flags = { ID, SVG, TIMEOUTS[1], TIMEOUTS[2], TIMEOUTS[3] },
    run = function(ctx, o)
      if not ctx:need(o, { ID }) then return 2 end
      local c, status = ctx:connect()
      if not c then return status end
      local aopts, astatus = ctx:arm_opts()
      if not aopts then return astatus end
      local report, why, err = call(c, o.id, { timeouts = timeouts(o), arm = aopts.arm, account = aopts.account,
        hooks = step_hooks(ctx, function() return o.id end) })
      return finish(ctx, o, report, why, err)
    end,
  }
end

local RUN = {
  name = "run", account = true, output = false, positional = "SCRIPT",
  usage = "azbatch run [--account-endpoint URL ...] [--verbose] SCRIPT.lua [ARG ...]",
  summary = "Run a Lua rollout script with a ready client. The script sees the globals azbatch, client "
    .. "(the account's, from the flags and the environment) and arg (arg[0] the script, arg[1..] its "
    .. "arguments, also its '...'). Exit status: 0 when it returns nothing or true, 1 when it returns false "
    .. "or fail (nil, message) or raises, N when it returns the integer N. Flags before SCRIPT are azbatch's; "
    .. "everything after it is the script's.",
  flags = {},
  run = function(ctx, _, positional)
    local path = positional[1]
    if not path then return ctx:usage_error("run needs a script: azbatch run SCRIPT.lua [ARG ...]") end
    local script_args = table.move(positional, 2, #positional, 1, {})
    local f = io.open(path, "rb")
    if not f then return ctx:fail(("%s: cannot open the script"):format(path)) end
    f:close()
    local c, status = ctx:connect()
    if not c then return status end
    local arg = { [0] = path }
    for i, a in ipairs(script_args) do arg[i] = a end
    local env = setmetatable({ azbatch = azbatch, client = c, arg = arg }, { __index = _G })
    local chunk, why = loadfile(path, "t", env)
    if not chunk then return ctx:fail(why) end
    local r = table.pack(xpcall(chunk, function(e)
      if type(e) == "table" then return e end
      return tostring(e)
    end, table.unpack(script_args)))
    if not r[1] then
      local e = r[2]
      if type(e) == "table" then e = e.message or e.msg or azbatch.json.encode(e) or tostring(e) end
      return ctx:fail(tostring(e))
    end
    local first, second = r[2], r[3]
    if r.n < 2 or first == true then return 0 end
    if first == nil and second ~= nil then return ctx:fail(tostring(second)) end
    if first == nil then return 0 end
    if first == false then return 1 end
    if math.type(first) == "integer" then return math.max(0, math.min(255, first)) end
    return 0
  end,
}

local ROLLOUT_FORGET = {
  name = "rollout forget", account = true,
  usage = "azbatch rollout forget --id ID",
  summary = "Remove a finished rollout's records from its pools.",
  flags = { ID },
  run = function(ctx, o)
    if not ctx:need(o, { ID }) then return 2 end
    local c, status = ctx:connect()
    if not c then return status end
    local ok, why, err = rollout_lib().forget(c, o.id)
    if not ok then return ctx:fail(why, err) end
    return ctx:emit({ id = o.id, forgotten = true }, { columns = { { "Id", function(r) return r.id end },
      { "Forgotten", function(r) return tostring(r.forgotten) end } } })
  end,
}

M.commands = {
  ROLLOUT_START,
  ROLLOUT_STATUS,
  by_id("rollout resume", "Carry a rollout on to its end. It goes on from where its records on the pools say it is "
    .. "(forward, or on with its rollback), and prints its report.",
    function(c, id, opts) return rollout_lib().resume(c, id, opts) end),
  by_id("rollout abort", "Return a rollout's pools to their state before it. Pools it made are deleted, jobs "
    .. "handed back, changed pools restored; refused once an old pool is deleted (resume instead).",
    function(c, id, opts) return rollout_lib().abort(c, id, opts) end),
  ROLLOUT_FORGET,
  RUN,
}

return M
