#!/usr/bin/env lua5.4
-- Which pools still run an old image version? Every pool of the account is
-- audited (the versions its nodes really run, not only what its body
-- names); for each gallery image definition in use, the newest version that
-- 'latest' would pick is read from the gallery; a pool with nodes on any
-- other version is listed with what to do. Exits 1 when one is found, so a
-- pipeline can gate on it.
--
-- Environment: as scripts/examples/seed_gallery_pool.lua (Entra ID, ARM).
local here = arg[0]:match("^(.*)/scripts/examples/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath
local azbatch = require "azbatch"

local function say(fmt, ...) io.write((fmt .. "\n"):format(...)) end
local batch <close> = assert(azbatch.client { account = os.getenv("AZURE_BATCH_ACCOUNT") })
local arm = assert(batch:arm_client())

-- "1.10.0" after "1.9.2": versions compared number by number
local function newer(a, b)
  local x, y = {}, {}
  for n in a:gmatch("%d+") do x[#x + 1] = tonumber(n) end
  for n in b:gmatch("%d+") do y[#y + 1] = tonumber(n) end
  for i = 1, math.max(#x, #y) do
    if (x[i] or 0) ~= (y[i] or 0) then return (x[i] or 0) > (y[i] or 0) end
  end
  return false
end

-- the version 'latest' means for a definition: the newest not excluded from it
local newest = {}
local function newest_of(definition)
  if newest[definition] == nil then
    local best = false
    for v in arm:gallery_versions(definition) do
      local pp = v.properties and v.properties.publishingProfile or {}
      if not pp.excludeFromLatest and (not best or newer(v.name, best)) then best = v.name end
    end
    newest[definition] = best
  end
  return newest[definition] or nil
end

local reports = assert(batch:pool_images())
local old = 0
say("%-22s %-8s %-26s %s", "pool", "custom", "image", "nodes by version")
for _, r in ipairs(reports) do
  local id = r.image and r.image.virtualMachineImageId
  local definition = id and (id:match("^(.-)/[Vv][Ee][Rr][Ss][Ii][Oo][Nn][Ss]/[^/]+$") or id)
  local by = {}
  for _, v in ipairs(r.versions) do by[#by + 1] = ("%s x%d"):format(v.version, v.nodes) end
  say("%-22s %-8s %-26s %s", r.id, tostring(r.custom), definition and definition:match("[^/]+/images/[^/]+$")
    or r.kind, #by > 0 and table.concat(by, ", ") or "(no nodes)")
  local want = definition and definition:find("/galleries/", 1, true) and newest_of(definition)
  if want then
    for _, v in ipairs(r.versions) do
      if v.version ~= want then
        old = old + 1
        say("  OLD: %d node(s) on %s, newest is %s: azbatch rollout start --strategy in-place --pool %s "
          .. "--image %s/versions/%s", v.nodes, v.version, want, r.id, definition, want)
      end
    end
  end
  for _, f in ipairs(r.findings) do say("  %s %s: %s", f.severity, f.code, f.message) end
end
say("%d pool(s) audited; %d pool version(s) behind the newest", #reports, old)
os.exit(old == 0 and 0 or 1)
