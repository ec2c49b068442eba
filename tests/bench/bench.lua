-- Benchmark driver (make bench). Modes, each printing one line of numbers:
--   seq URL N          N sequential signed GETs over keep-alive: cpu_seconds wall_seconds connections
--   conc URL N C       N GETs at concurrency C via azbatch.parallel: wall_seconds connections
--   conc-entra URL N C the same with Entra ID tokens (fetched inside the parallel run)
--   memory URL N       create, read and delete N pools: peak RSS in kB
local azbatch = require "azbatch"
local mode, url, n, c = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
local ACCOUNT = "devbatch"
local KEY = "YXpiYXRjaC1lbXVsYXRvci13ZWxsLWtub3duLWRldmVsb3BtZW50LWtleS1ub3QtYS1zZWNyZXQtMDEyMzQ1Ng=="

local function status_kb(field)
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^" .. field .. ":%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end
local LOADED_KB = status_kb("VmHWM")     -- lua5.4 with azbatch, libcurl and OpenSSL mapped

-- conc-entra: the same as conc, with Microsoft Entra ID (client secret)
-- tokens fetched from the emulator inside azbatch.parallel
local credential = mode == "conc-entra" and assert(azbatch.credential.client_secret {
  tenant = "00000000-0000-0000-0000-0000000000aa", client_id = "00000000-0000-0000-0000-0000000000c1",
  client_secret = "dev-client-secret", authority = url }) or assert(azbatch.credential.shared_key(ACCOUNT, KEY))
-- BENCH_MAXC: the transport's max_connections (default: the transport's own)
local batch = assert(azbatch.client { endpoint = url, credential = credential, retry = false,
  max_connections = tonumber(os.getenv("BENCH_MAXC")) })

if mode == "seq" then
  assert(batch:get_pool("bench"))                         -- warm: connection and token paths
  local conns = batch.http:stats().connections
  local cpu, wall = os.clock(), azbatch.now()
  for _ = 1, n do assert(batch:get_pool("bench")) end
  print(("%.6f %.6f %d"):format(os.clock() - cpu, azbatch.now() - wall, batch.http:stats().connections - conns))
elseif mode == "conc" or mode == "conc-entra" then
  local per = n // c
  local fns = {}
  for i = 1, c do fns[i] = function() for _ = 1, per do assert(batch:get_pool("bench")) end end end
  local conns = batch.http:stats().connections
  local wall = azbatch.now()
  azbatch.parallel(fns)
  print(("%.6f %d"):format(azbatch.now() - wall, batch.http:stats().connections - conns))
elseif mode == "memory" then
  local spec = { vmSize = "Standard_A1_v2", targetDedicatedNodes = 0,
    virtualMachineConfiguration = { imageReference = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts:latest",
      nodeAgentSKUId = "batch.node.ubuntu 22.04" } }
  local fns = {}
  for i = 1, n do
    fns[i] = function()
      local s = {}
      for k, v in pairs(spec) do s[k] = v end
      s.id = ("mem-%03d"):format(i)
      assert(batch:create_pool(s))
      assert(batch:get_pool(s.id))
    end
  end
  azbatch.parallel(fns)
  assert(#assert(azbatch.collect(batch:list_pools { filter = "startswith(id,'mem-')" })) == n)
  local anon = status_kb("RssAnon")         -- private memory: heap, Lua, curl handles
  for i = 1, n do assert(batch:delete_pool(("mem-%03d"):format(i))) end
  print(status_kb("VmHWM"), anon, LOADED_KB)
elseif mode == "preflight" then
  -- one preflight of a gallery pool: every ARM and data-plane read it makes
  local entra = assert(azbatch.credential.client_secret {
    tenant = "00000000-0000-0000-0000-0000000000aa", client_id = "00000000-0000-0000-0000-0000000000c1",
    client_secret = "dev-client-secret", authority = url })
  local pc = assert(azbatch.client { endpoint = url, credential = entra, account = ACCOUNT })
  pc.arm_cache = assert(azbatch.arm { endpoint = url, credential = entra })
  local spec = { id = "bench-pf", vmSize = "Standard_D2s_v3", targetDedicatedNodes = 3000, resizeTimeout = "PT45M",
    virtualMachineConfiguration = { imageReference = { virtualMachineImageId = "/subscriptions/"
      .. "00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers/Microsoft.Compute/galleries/"
      .. "devgallery/images/ubuntu2204" }, nodeAgentSKUId = "batch.node.ubuntu 22.04" } }
  assert(azbatch.credential.token(entra, "https://batch.core.windows.net//.default"))   -- tokens are not the bench
  assert(azbatch.credential.token(entra, "https://management.azure.com/.default"))
  local wall = azbatch.now()
  local r = assert(pc:preflight(spec))
  print(("%.6f %d"):format(azbatch.now() - wall, #r.findings))
elseif mode == "audit-setup" then
  -- n pools of c nodes each, steady
  local fns = {}
  for i = 1, n do
    fns[i] = function()
      local id = ("audit-%03d"):format(i)
      assert(batch:create_pool { id = id, vmSize = "Standard_A1_v2", targetDedicatedNodes = c,
        virtualMachineConfiguration = { imageReference = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts:latest",
          nodeAgentSKUId = "batch.node.ubuntu 22.04" } })
      assert(batch:wait_pool(id, { interval = 0.5, timeout = 600 }))
    end
  end
  azbatch.parallel(fns)
  print(n * c)
elseif mode == "audit" then
  -- every pool and its nodes: the fleet audit
  local cpu, wall = os.clock(), azbatch.now()
  local reports = assert(batch:pool_images { filter = "startswith(id,'audit-')" })
  local nodes = 0
  for _, r in ipairs(reports) do for _, v in ipairs(r.versions) do nodes = nodes + v.nodes end end
  print(("%.6f %.6f %d %d %d"):format(azbatch.now() - wall, os.clock() - cpu, #reports, nodes, status_kb("VmHWM")))
else
  error("usage: bench.lua seq|conc|conc-entra|memory|preflight|audit-setup|audit URL N [C]")
end
batch:close()
