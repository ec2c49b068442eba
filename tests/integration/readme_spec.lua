-- The README's policy script ("Rollouts"), taken from the README as it
-- stands and run with `azbatch run` against the emulator: its dry run, a
-- refused approval that rolls back, the rollout itself, and a second run
-- that finds nothing left to do.
local helper = test_helper
-- the script runs in its own directory: the CLI by its absolute path
local AZBATCH = (helper.ROOT:sub(1, 1) == "/" and helper.ROOT or assert(os.getenv("PWD")) .. "/" .. helper.ROOT)
  .. "/scripts/azbatch"

local IMAGE = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers"
  .. "/Microsoft.Compute/galleries/devgallery/images/ubuntu2204/versions/1.1.0"

local function readme_policy()
  local f = assert(io.open(helper.ROOT .. "/README.md"))
  local text = f:read("a")
  f:close()
  local section = assert(text:match("\n## Rollouts\n(.-)\n## "), "README has no Rollouts section")
  local code = assert(section:match("```lua\n(%-%- policy%.lua.-\n)```"), "the Rollouts section has no policy script")
  return code
end

describe("the README's rollout policy script", function()
  local emu, dir, script
  setup(function()
    emu = helper.emulator("--time-scale 500")
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. helper.shq(dir)))
    script = dir .. "/policy.lua"
    local f = assert(io.open(script, "w"))
    f:write(readme_policy())
    f:close()
  end)
  teardown(function()
    if emu then emu.stop() end
    if dir then os.execute("rm -rf " .. helper.shq(dir)) end
  end)

  local function policy(extra_env, ...)
    local args = {}
    for _, a in ipairs { ... } do args[#args + 1] = helper.shq(a) end
    return helper.run(("cd %s && %s%s %s run policy.lua %s"):format(helper.shq(dir), helper.entra_env(emu),
      extra_env or "", helper.shq(AZBATCH), table.concat(args, " ")))
  end

  local function pool_ids()
    local status, out, err = helper.run(helper.entra_env(emu) .. helper.shq(helper.ROOT .. "/scripts/azbatch")
      .. " pool list --query '[].id' -o tsv")
    assert.equal(0, status, err)
    return out
  end

  it("prints its plan on --dry-run and creates nothing", function()
    local status, out, err = policy(nil, IMAGE, "--dry-run")
    assert.equal(0, status, err .. out)
    assert.matches("canary of workers%-v1 to .-/versions/1%.1%.0 %(15 steps, dry run: nothing is sent%)", out)
    assert.matches("\n +2%. create_pool +POST /pools ", out)
    assert.matches("\n +13%. delete_pool +DELETE /pools/workers%-v1 ", out)
    assert.equal("workers-v1\n", pool_ids())
  end)

  it("rolls back when the approval is refused, leaving the pool and its jobs as they were", function()
    local status, out, err = policy("ROLLOUT_APPROVE=no ", IMAGE)
    assert.equal(1, status, err .. out)
    assert.matches("%(canary%): rolled_back", out)
    assert.matches("\n +5 +failed .-approval", out)
    assert.matches("error: approval: hand jobs over: not approved", err)
    assert.equal("workers-v1\n", pool_ids())
    local _, jobs = helper.run(helper.entra_env(emu) .. helper.shq(helper.ROOT .. "/scripts/azbatch")
      .. " run " .. helper.shq(helper.ROOT .. "/scripts/examples/jobs.lua"))
    assert.not_matches("workers%-v1%-ro", jobs)
  end)

  it("moves the pool and its jobs to 1.1.0, writes the timeline, and then finds nothing to do", function()
    local status, out, err = policy(nil, IMAGE)
    assert.equal(0, status, err .. out)
    local id = assert(out:match("rollout (ro%-%x+) %(canary%): done\n"), out)
    assert.matches("\n +15 +ok .-record the rollout as done", out)
    assert.matches("^%s*1 ok +preflight", err)     -- on_step, as each step ends
    local new = "workers-v1-" .. id:gsub("%-", "")
    assert.equal(new .. "\n", pool_ids())
    local f = assert(io.open(dir .. "/rollout-" .. id .. ".svg"))
    assert.matches("^<svg", f:read("a"))
    f:close()
    status, out, err = policy(nil, IMAGE)
    assert.equal(0, status, err .. out)
    assert.equal("every pool is on 1.1.0\n", out)
  end)

  it("refuses to start without an image version, with its usage", function()
    local status, out, err = policy(nil)
    assert.equal(1, status, out)
    assert.matches("usage: azbatch run policy%.lua IMAGE_VERSION_ID %[%-%-dry%-run%]", err)
  end)
end)
