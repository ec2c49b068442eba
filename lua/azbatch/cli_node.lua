--- The node verbs, as az batch node has them: list, show, delete (the
-- pool's removenodes).
local azbatch = require "azbatch"
local body = require "azbatch.cli_body"

local M = {}

local NODE_VIEW = { columns = {
  { "Id", function(n) return n.id end },
  { "State", function(n) return n.state end },
  { "SchedulingState", function(n) return n.schedulingState end },
  { "VmSize", function(n) return n.vmSize end },
  { "IpAddress", function(n) return n.ipAddress end },
  { "Dedicated", function(n) if n.isDedicated == nil then return nil end return tostring(n.isDedicated) end },
  { "Error", function(n)
    local e = type(n.errors) == "table" and n.errors[1]
    return type(e) == "table" and ((e.code or "") .. ": " .. (e.message or "")) or nil
  end },
} }

local NODE_ID = { name = "node-id", key = "nodeId", kind = "string", metavar = "ID", help = "the node id (required)" }

local commands = {}
M.commands = commands

commands[#commands + 1] = {
  name = "node list", account = true,
  usage = "azbatch node list --pool-id ID [--filter ODATA] [--select FIELDS]",
  summary = "List the nodes of a pool. Follows every page.",
  flags = { body.POOL_ID, body.FILTER, body.SELECT },
  run = function(ctx, o)
    if not ctx:need(o, body.POOL_ID) then return 2 end
    local c, status = ctx:connect()
    if not c then return status end
    local nodes, msg, e = azbatch.collect(c:list_nodes(o.poolId, { filter = o.filter, select = o.select }))
    if not nodes then return ctx:fail(msg, e) end
    return ctx:emit(azbatch.json.array(nodes), NODE_VIEW)
  end,
}

commands[#commands + 1] = {
  name = "node show", account = true,
  usage = "azbatch node show --pool-id ID --node-id ID [--select FIELDS]",
  summary = "Show a node of a pool.",
  flags = { body.POOL_ID, NODE_ID, body.SELECT },
  run = function(ctx, o)
    if not ctx:need(o, body.POOL_ID, NODE_ID) then return 2 end
    local c, status = ctx:connect()
    if not c then return status end
    local node, msg, e = c:get_node(o.poolId, o.nodeId, { select = o.select })
    if not node then return ctx:fail(msg, e) end
    return ctx:emit(node, NODE_VIEW)
  end,
}

commands[#commands + 1] = {
  name = "node delete", account = true,
  usage = "azbatch node delete --pool-id ID {--node-list ID [ID ...] | --json-file FILE} "
    .. "[--node-deallocation-option OPTION] [--resize-timeout DURATION] [--if-match ETAG]",
  summary = "Remove nodes from a pool. This is removenodes: the pool shrinks by those nodes, up to 100 at a time.",
  flags = { body.POOL_ID,
    { name = "node-list", key = "nodeList", kind = "list", metavar = "ID", help = "the nodes to remove" },
    body.DEALLOCATION, body.FLAG.resize_timeout, body.JSON_FILE, body.IF_MATCH },
  run = function(ctx, o)
    if not ctx:need(o, body.POOL_ID) then return 2 end
    local removal, why = body.build(o, {
      { key = "nodeList", path = "nodeList", convert = function(l) return azbatch.json.array(l) end },
      { key = "nodeDeallocationOption", path = "nodeDeallocationOption" },
      { key = "resizeTimeout", path = "resizeTimeout" },
    }, { what = "the node removal body" })
    if not removal then return ctx:fail(why) end
    if removal.nodeList == nil then return ctx:usage_error("give the nodes: --node-list ID [ID ...] or --json-file") end
    local ok, vwhy, e = azbatch.validate("pool.removenodes", removal)
    if not ok then return ctx:fail(vwhy, e) end
    local c, status = ctx:connect()
    if not c then return status end
    local res, msg, rerr = c:remove_nodes(o.poolId, removal, { if_match = o.ifMatch })
    if not res then return ctx:fail(msg, rerr) end
    return ctx:emit({ id = o.poolId, operation = "removeNodes", nodeList = removal.nodeList,
      requestId = res.request_id, recovered = res.recovered }, { columns = {
        { "Id", function(r) return r.id end },
        { "Operation", function(r) return r.operation end },
        { "Nodes", function(r) return #r.nodeList end },
        { "RequestId", function(r) return r.requestId end } } })
  end,
}

return M
