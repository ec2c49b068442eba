-- Start and stop tests/unit/support/loopback_server.py from a spec.
-- local server = dofile("tests/unit/support/server.lua")
-- local s = server.start()          -- s.url = "http://127.0.0.1:PORT"
-- server.stop(s)
local M = {}

local SCRIPT = "tests/unit/support/loopback_server.py"

-- Helper programs run without LD_PRELOAD: under the ASan run the module is
-- preloaded, and some programs (python, sleep, bash) hang when it is.
local CLEAN = "LD_PRELOAD= "

--- os.execute for helper commands (mkdir, rm, chmod, openssl).
function M.sh(cmd)
  return os.execute(CLEAN .. cmd)
end

function M.start(args)
  local cmd = CLEAN .. "exec python3 " .. SCRIPT .. (args and (" " .. args) or "")
  local proc = assert(io.popen(cmd, "r"))
  local line = proc:read("l") or ""
  local scheme, port, pid = line:match("^listening on (https?)://127%.0%.0%.1:(%d+) pid=(%d+)")
  assert(port, "loopback server did not start: " .. line)
  return { proc = proc, port = tonumber(port), pid = pid,
           url = scheme .. "://127.0.0.1:" .. port }
end

function M.stop(s)
  if s and s.proc then
    os.execute("kill " .. s.pid .. " 2>/dev/null")
    s.proc:close()
    s.proc = nil
  end
end

-- Split the /echo body: request line, headers (array of {name, value}), body.
function M.parse_echo(text)
  local head, body = text:match("^(.-)\n\n(.*)$")
  local lines = {}
  for l in (head .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  local req = { line = table.remove(lines, 1), headers = {}, body = body, by_name = {} }
  for _, l in ipairs(lines) do
    local n, v = l:match("^([^:]+): ?(.*)$")
    req.headers[#req.headers + 1] = { n, v }
    req.by_name[n:lower()] = v
  end
  return req
end

return M
