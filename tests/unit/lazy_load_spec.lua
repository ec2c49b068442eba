-- What loads when: require "azbatch" loads the pool operations, and the
-- other modules that add client methods load on a method's first use
-- (client.LAZY_METHODS); a CLI verb loads its own module of verbs
-- (cli.VERB_MODULES). Each list is checked against what the modules define.
-- The load checks run in a fresh lua5.4: this process has loaded everything.
local helper = test_helper
local client = require "azbatch.client"
local cli = require "azbatch.cli"

-- Run Lua code in a fresh lua5.4 with this tree's modules; its stdout lines.
local function fresh(code)
  local path = helper.tempfile(code)
  local cmd = ("cd %s && %sLUA_PATH='lua/?.lua;lua/?/init.lua' LUA_CPATH='build/?.so' lua5.4 %s")
    :format(helper.shq(helper.ROOT), helper.sanitizer_env(), helper.shq(path))
  local status, out, err = helper.run(cmd)
  os.remove(path)
  assert.equal(0, status, err)
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  return lines
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

describe("lazy loading", function()
  it("LAZY_METHODS names every method the lazy modules add, and only those", function()
    -- arm first: images requires it
    local lines = fresh([[
      local client = require "azbatch.client"
      require "azbatch.pool"
      for _, mod in ipairs { "azbatch.arm", "azbatch.wait", "azbatch.preflight", "azbatch.images",
                             "azbatch.audit", "azbatch.jobs" } do
        local before = {}
        for _, class in ipairs { "Client", "Arm" } do
          before[class] = {}
          for k in pairs(client[class]) do before[class][k] = true end
        end
        require(mod)
        for _, class in ipairs { "Client", "Arm" } do
          for k, v in pairs(client[class]) do
            if not before[class][k] and type(v) == "function" then print(class, k, mod) end
          end
        end
      end
    ]])
    local defined = {}
    for _, l in ipairs(lines) do
      local class, name, mod = l:match("^(%S+)\t(%S+)\t(%S+)$")
      defined[class .. "." .. name] = mod
    end
    local listed = {}
    for class, map in pairs(client.LAZY_METHODS) do
      for name, mod in pairs(map) do listed[class .. "." .. name] = mod end
    end
    assert.same(defined, listed)
    assert.is_true(#lines >= 30)
  end)

  it("require 'azbatch' leaves them unloaded; a method's first use loads its module", function()
    local lines = fresh([[
      local azbatch = require "azbatch"
      local function loaded(m) return package.loaded[m] ~= nil end
      print("after require", loaded("azbatch.pool"), loaded("azbatch.wait"), loaded("azbatch.arm"),
        loaded("azbatch.preflight"), loaded("azbatch.images"), loaded("azbatch.audit"), loaded("azbatch.jobs"))
      local cred = assert(azbatch.credential.shared_key("devbatch", "a2V5"))
      local c = assert(azbatch.client { endpoint = "http://127.0.0.1:9", credential = cred })
      print("missing", c.no_such_method == nil, loaded("azbatch.wait"))
      print("wait_pool", type(c.wait_pool), loaded("azbatch.wait"), loaded("azbatch.jobs"))
      local token = assert(azbatch.credential.client_secret { tenant = "00000000-0000-0000-0000-0000000000aa",
        client_id = "00000000-0000-0000-0000-0000000000c1", client_secret = "s", authority = "http://127.0.0.1:9" })
      local arm = assert(azbatch.arm { endpoint = "http://127.0.0.1:9", credential = token })
      print("arm", type(arm.gallery_version), loaded("azbatch.arm"), type(arm.get_pool), type(arm.request))
      print("hand_over_jobs", type(c.hand_over_jobs), loaded("azbatch.jobs"))
      c:close() arm:close()
    ]])
    assert.same({
      "after require\ttrue\tfalse\tfalse\tfalse\tfalse\tfalse\tfalse",
      "missing\ttrue\tfalse",
      "wait_pool\tfunction\ttrue\tfalse",
      "arm\tfunction\ttrue\tfunction\tfunction",
      "hand_over_jobs\tfunction\ttrue",
    }, lines)
  end)

  it("VERB_MODULES names every verb of each CLI module, and only those", function()
    local all = {}
    for mod, names in pairs(cli.VERB_MODULES) do
      local defined = {}
      for _, cmd in ipairs(require(mod).commands) do defined[#defined + 1] = cmd.name end
      assert.same(set_of(defined), set_of(names), mod)
      for _, n in ipairs(names) do all[n] = true end
    end
    all.__complete = true
    local seen = {}
    for name in pairs(cli.commands) do seen[name] = true end
    assert.same(all, seen)
  end)

  it("a CLI verb loads only its own module of verbs; help loads them all", function()
    local lines = fresh([[
      local cli = require "azbatch.cli"
      local sink = { write = function(self) return self end }
      local function loaded()
        local t = {}
        for _, m in ipairs { "cli_pool", "cli_node", "cli_image", "cli_rollout", "wait", "arm", "images" } do
          t[#t + 1] = package.loaded["azbatch." .. m] and m or "-"
        end
        return table.concat(t, " ")
      end
      print(loaded())
      print(cli.main({ "pool", "show", "--help" }, sink, sink, {}) .. " " .. loaded())
      print(cli.main({ "pool", "images", "--help" }, sink, sink, {}) .. " " .. loaded())
      print(cli.main({ "--help" }, sink, sink, {}) .. " " .. loaded())
    ]])
    assert.same({
      "- - - - - - -",
      "0 cli_pool - - - - - -",
      "0 cli_pool - cli_image - - - -",
      "0 cli_pool cli_node cli_image cli_rollout - - -",
    }, lines)
  end)
end)
