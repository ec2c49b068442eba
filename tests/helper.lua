-- Loaded by busted before the specs (see .busted).
-- Shared helpers: temporary files, running the CLI, and the emulator.
local M = {}
_G.test_helper = M

M.ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/tests/helper%.lua$")) or "."

-- CLI children run the modules precompiled into build/lua (scripts/azbatch):
-- bring each up to date with lua/ first, as luac would write it, so that a
-- spec run after an edit without 'make' tests the code it reads.
local function refresh_compiled()
  local list = io.popen("ls " .. M.shq(M.ROOT) .. "/lua/azbatch/*.lua 2>/dev/null")
  for path in list:lines() do
    local name = path:match("([^/]+)%.lua$")
    local src = assert(io.open(path, "rb"))
    local chunk = assert(load(src:read("a"), "@lua/azbatch/" .. name .. ".lua"))
    src:close()
    local want = string.dump(chunk)
    local out = M.ROOT .. "/build/lua/azbatch/" .. name .. ".lua"
    local f = io.open(out, "rb")
    local have = f and f:read("a")
    if f then f:close() end
    if have ~= want then
      os.execute("mkdir -p " .. M.shq(M.ROOT .. "/build/lua/azbatch"))
      local tmp = out .. ".tmp"
      local w = assert(io.open(tmp, "wb"))
      w:write(want)
      w:close()
      assert(os.rename(tmp, out))
    end
  end
  list:close()
end

--- Run a shell command; returns exit status, stdout, stderr.
function M.run(cmd)
  local errfile = os.tmpname()
  local p = io.popen(cmd .. " 2>" .. errfile)
  local out = p:read("a")
  local _, _, status = p:close()
  local f = io.open(errfile)
  local err = f and f:read("a") or ""
  if f then f:close() end
  os.remove(errfile)
  return status, out, err
end

--- Quote a string for /bin/sh.
function M.shq(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- What a CLI child's command line sets first under tests/asan.sh: its
-- LeakSanitizer checks leaks without TLS roots, whose scan crashes on this
-- glibc in a child that loads core.so with the sanitizers preloaded
-- ("Tracer caught signal 11"). Empty outside the sanitizer pass.
function M.sanitizer_env()
  local lsan = os.getenv("LSAN_OPTIONS")
  return lsan and ("LSAN_OPTIONS=" .. M.shq(lsan .. ":use_tls=0") .. " ") or ""
end

--- Run the CLI as a user would: scripts/azbatch ARGS...
function M.cli(...)
  local parts = { M.shq(M.ROOT .. "/scripts/azbatch") }
  for _, a in ipairs { ... } do parts[#parts + 1] = M.shq(a) end
  return M.run(table.concat(parts, " "))
end

--- A file-like sink for the CLI's output: write(...), and text() of it all.
function M.sink()
  local parts = {}
  return setmetatable({}, { __index = {
    write = function(self, ...)
      for i = 1, select("#", ...) do parts[#parts + 1] = select(i, ...) end
      return self
    end,
    text = function() return table.concat(parts) end,
  } })
end

--- The CLI in this process: azbatch.cli.main(argv) with env (default {});
-- returns exit status, stdout, stderr.
function M.cli_main(argv, env)
  local out, err = M.sink(), M.sink()
  local status = require("azbatch.cli").main(argv, out, err, env or {})
  return status, out:text(), err:text()
end

--- Write text to a fresh temporary file and return its path.
function M.tempfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

--- Read a fixture file.
function M.fixture(name)
  local f = assert(io.open(M.ROOT .. "/tests/fixtures/" .. name, "rb"))
  local s = f:read("a")
  f:close()
  return s
end


-- The emulator's well-known development account (docs/emulator.md).
M.DEV_ACCOUNT = "devbatch"
M.DEV_KEY = "YXpiYXRjaC1lbXVsYXRvci13ZWxsLWtub3duLWRldmVsb3BtZW50LWtleS1ub3QtYS1zZWNyZXQtMDEyMzQ1Ng=="
M.DEV_TENANT = "00000000-0000-0000-0000-0000000000aa"
M.DEV_CLIENT = "00000000-0000-0000-0000-0000000000c1"
M.DEV_SECRET = "dev-client-secret"

local function sleep(s) os.execute("sleep " .. s) end
M.sleep = sleep

--- Start the emulator on a free loopback port with extra flags.
-- Sanitizer preloads are dropped: Python is not the code under test.
---@return table emu { url=, pid=, stop=function }
function M.emulator(flags)
  local out = os.tmpname()
  local cmd = ("env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS python3 %s --port 0 %s >%s 2>%s.err & echo $!")
    :format(M.shq(M.ROOT .. "/scripts/azbatch-emulator"), flags or "", out, out)
  local p = io.popen(cmd)
  local pid = assert(tonumber(p:read("l")), "emulator did not start")
  p:close()
  local url
  for _ = 1, 200 do
    local f = io.open(out)
    local line = f and f:read("l")
    if f then f:close() end
    url = line and line:match("^listening on (http://%S+)")
    if url then break end
    sleep(0.05)
  end
  if not url then
    local f = io.open(out .. ".err")
    local why = f and f:read("a") or ""
    if f then f:close() end
    os.execute("kill " .. pid .. " 2>/dev/null")
    error("emulator did not start: " .. why)
  end
  local emu = { url = url, pid = pid, log = out .. ".err" }
  function emu.stop()
    os.execute(("kill %d 2>/dev/null; for i in 1 2 3 4 5 6 7 8 9 10; do "
      .. "kill -0 %d 2>/dev/null || break; sleep 0.1; done"):format(pid, pid))
    os.remove(out)
    os.remove(out .. ".err")
  end
  return emu
end

--- A world file for the emulator: the dev world (scripts/emulator-world.json)
-- changed by fn(world). Returns its path (a temporary file).
function M.world(fn)
  local json = require "azbatch.json"
  local f = assert(io.open(M.ROOT .. "/scripts/emulator-world.json"))
  local world = assert(json.decode(f:read("a")))
  f:close()
  fn(world)
  return M.tempfile(assert(json.encode(world)))
end

--- The environment a script or the CLI needs to reach the emulator with
-- Entra ID (the dev tenant's service principal) and ARM, as a prefix for a
-- shell command line.
function M.entra_env(emu)
  return ("env -u AZURE_BATCH_ACCESS_KEY -u AZURE_FEDERATED_TOKEN_FILE -u LD_PRELOAD AZURE_BATCH_ENDPOINT=%s "
    .. "AZURE_BATCH_ACCOUNT=devbatch AZURE_TENANT_ID=%s AZURE_CLIENT_ID=%s AZURE_CLIENT_SECRET=%s "
    .. "AZURE_AUTHORITY_HOST=%s AZURE_RESOURCE_MANAGER_ENDPOINT=%s "
    .. "AZBATCH_IMDS_ENDPOINT=http://127.0.0.1:9/metadata/identity/oauth2/token "):format(emu.url, M.DEV_TENANT,
      M.DEV_CLIENT, M.DEV_SECRET, emu.url, emu.url)
end

--- POST a JSON table to the emulator's control API (/_emulator/...);
-- returns the decoded answer. Raises unless it answers 200.
function M.control(emu, path, t)
  local core = require "azbatch.core"
  local json = require "azbatch.json"
  local http <close> = core.http {}
  local body = t ~= nil and assert(json.encode(t)) or nil
  local status, _, text = http:request { method = body and "POST" or "GET", url = emu.url .. "/_emulator/" .. path,
    headers = body and { ["Content-Type"] = "application/json" } or nil, body = body }
  assert(status == 200, "control API " .. path .. ": " .. tostring(status) .. " " .. tostring(text))
  return text ~= "" and json.decode(text) or nil
end

refresh_compiled()

return M
