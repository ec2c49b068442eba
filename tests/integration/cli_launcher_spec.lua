-- The native launcher (build/bin/azbatch, scripts/azbatch.c) against the
-- Lua one (scripts/azbatch): the same CLI, so the same output, errors and
-- exit status; and what only the native one does (its module directory,
-- make install, its own failure to start).
local helper = test_helper

-- The sanitizer pass points at its own build (tests/asan.sh).
local NATIVE = os.getenv("AZBATCH_CLI_BIN") or (helper.ROOT .. "/build/bin/azbatch")
local SCRIPT = helper.ROOT .. "/scripts/azbatch"
local MARKETPLACE = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts"

-- The shell command line of a launcher with no account settings of the shell's.
local function command_line(exe, ...)
  local parts = { "env -u AZURE_BATCH_ACCOUNT -u AZURE_BATCH_ACCESS_KEY -u AZURE_BATCH_ENDPOINT",
    helper.sanitizer_env() .. helper.shq(exe) }
  for _, a in ipairs { ... } do parts[#parts + 1] = helper.shq(a) end
  return table.concat(parts, " ")
end

-- Run a launcher; status, stdout, stderr.
local function launch(exe, ...)
  return helper.run(command_line(exe, ...))
end

-- Both launchers give the same status, stdout and stderr (each request its own id).
local function same(...)
  local function ids(s) return (s:gsub("request%-id [%x%-]+", "request-id ID")) end
  local s1, o1, e1 = launch(SCRIPT, ...)
  local s2, o2, e2 = launch(NATIVE, ...)
  assert.equal(s1, s2)
  assert.equal(o1, o2)
  assert.equal(ids(e1), ids(e2))
  return s2, o2, e2
end

describe("the native CLI launcher", function()
  local emu, acct
  setup(function()
    emu = helper.emulator("--time-scale 500")
    acct = { "--account-name", helper.DEV_ACCOUNT, "--account-key", helper.DEV_KEY, "--account-endpoint", emu.url }
  end)
  teardown(function() if emu then emu.stop() end end)

  local function with_acct(...)
    local a = { ... }
    for _, x in ipairs(acct) do a[#a + 1] = x end
    return table.unpack(a)
  end

  -- pool create ID (0 nodes) through the native launcher
  local function create(id)
    return launch(NATIVE, with_acct("pool", "create", "--id", id, "--vm-size", "Standard_A1_v2",
      "--target-dedicated-nodes", "0", "--image", MARKETPLACE, "--node-agent-sku-id", "batch.node.ubuntu 22.04"))
  end

  it("is built by make, an executable that does not dlopen the core", function()
    local status, out = helper.run("ldd " .. helper.shq(NATIVE))
    assert.equal(0, status)
    assert.matches("libcurl", out)
    assert.matches("liblua5%.4", out)
    assert.is_nil(out:find("core.so", 1, true))
  end)

  it("prints the version, the top help and usage errors as scripts/azbatch does", function()
    local status, out = same("version")
    assert.equal(0, status)
    assert.matches("^azbatch %S+ %(api%-version %S+%)\n$", out)
    status, out = same("--help")
    assert.equal(0, status)
    assert.matches("pool create", out)
    assert.matches("rollout start", out)
    local err
    status, out, err = same()
    assert.equal(2, status)
    assert.equal("", out)
    assert.matches("^usage: azbatch <command>", err)
    status, out, err = same("pool", "frobnicate")
    assert.equal(2, status)
    assert.equal("", out)
    assert.matches("unknown command 'pool frobnicate'", err)
    status, out, err = same("pool", "show", "--pool-id")
    assert.equal(2, status)
    assert.equal("", out)
    assert.matches("^error: ", err)
  end)

  it("creates, shows and deletes a pool, and reports a service error, as scripts/azbatch does", function()
    local status, out, err = create("native-1")
    assert.equal(0, status, err)
    assert.matches('"id": "native%-1"', out)
    status, out = same(with_acct("pool", "show", "--pool-id", "native-1", "--query", "id"))
    assert.equal(0, status)
    assert.equal('"native-1"\n', out)
    status, out, err = same(with_acct("pool", "show", "--pool-id", "not-there"))
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("PoolNotFound", err)
    assert.is_nil(err:find(helper.DEV_KEY, 1, true))
    status, out, err = launch(NATIVE, with_acct("pool", "delete", "--pool-id", "native-1"))
    assert.equal(0, status, err)
    assert.matches("native%-1", out)
  end)

  it("completes words as scripts/azbatch does", function()
    local status, out = same("__complete", "pool", "s")
    assert.equal(0, status)
    assert.matches("show\n", out)
    assert.matches("set\n", out)
  end)

  it("runs a script with its arguments and takes its exit status", function()
    local path = helper.tempfile([[
      assert(client and azbatch.client, "the globals")
      io.write(arg[0]:match("[^/]*$"), " ", table.concat(arg, ","), " ", select("#", ...), "\n")
      return tonumber(arg[2])
    ]])
    local a = { "run" }
    for _, x in ipairs(acct) do a[#a + 1] = x end
    table.move({ path, "a", "7" }, 1, 3, #a + 1, a)
    local status, out, err = same(table.unpack(a))
    os.remove(path)
    assert.equal(7, status, err)
    assert.matches(" a,7 2\n$", out)
  end)

  it("on SIGINT ends with status 130 and says the outcome is unknown", function()
    local status, _, err = create("native-int")
    assert.equal(0, status, err)
    status, _, err = launch(NATIVE, with_acct("pool", "wait", "--pool-id", "native-int", "--timeout", "60"))
    assert.equal(0, status, err)
    -- frozen, a resize never ends: the wait polls until interrupted
    helper.control(emu, "clock", { timeScale = 1e-9 })
    for i, exe in ipairs { NATIVE, SCRIPT } do
      status, _, err = launch(exe, with_acct("pool", "resize", "--pool-id", "native-int",
        "--target-dedicated-nodes", tostring(i)))
      assert.equal(0, status, err)
      local errfile = os.tmpname()
      local wait = command_line(exe, with_acct("pool", "wait", "--pool-id", "native-int", "--timeout", "60"))
      -- interrupted once it polls: its first progress line is out (up to 30 s, for valgrind)
      local p = io.popen(("%s >/dev/null 2>%s & pid=$!; i=0; until grep -q resizing %s || [ $i -ge 600 ]; do "
        .. "sleep 0.05; i=$((i + 1)); done; kill -INT $pid; wait $pid; echo $?")
        :format(wait, helper.shq(errfile), helper.shq(errfile)))
      local code = tonumber(p:read("l"))
      p:close()
      local f = assert(io.open(errfile))
      err = f:read("a")
      f:close()
      os.remove(errfile)
      assert.equal(130, code, err)
      assert.matches("error: interrupted: what the service did with a request in flight is unknown\n$", err)
      assert.is_nil(err:find("internal error", 1, true))
      helper.control(emu, "clock", { advance = 3600 })     -- the resize ends
    end
    helper.control(emu, "clock", { timeScale = 500 })
    assert.equal(0, (launch(NATIVE, with_acct("pool", "delete", "--pool-id", "native-int"))))
  end)

  it("make install installs it, finding the modules installed beside it", function()
    local prefix = os.tmpname()
    os.remove(prefix)
    local status, out = helper.run(("env -u LD_PRELOAD make --no-print-directory -C %s install PREFIX=%s 2>&1")
      :format(helper.shq(helper.ROOT), helper.shq(prefix)))
    assert.equal(0, status, out)
    local exe = prefix .. "/bin/azbatch"
    local err
    status, out, err = helper.run(("env -u LUA_PATH -u LUA_PATH_5_4 %s%s version")
      :format(helper.sanitizer_env(), helper.shq(exe)))
    assert.equal(0, status, err)
    assert.matches("^azbatch ", out)
    -- the installed modules, not the checkout's: remove them and it cannot start
    os.execute("rm -rf " .. helper.shq(prefix .. "/share"))
    status, out, err = helper.run(("env -u LUA_PATH -u LUA_PATH_5_4 %s%s version")
      :format(helper.sanitizer_env(), helper.shq(exe)))
    os.execute("rm -rf " .. helper.shq(prefix))
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^azbatch: module 'azbatch.cli' not found", err)
  end)
end)
