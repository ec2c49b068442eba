-- The CLI on a real terminal: tmux gives it one (a private server on its
-- own socket, a detached session), and pipe-pane records the bytes it draws. The live
-- progress bar is redrawn in place on one line, and jsonc is coloured.
local helper = test_helper

local HAVE_TMUX = os.execute("command -v tmux >/dev/null 2>&1") == true

describe("azbatch CLI on a terminal (tmux)", function()
  local emu, server, raw
  local function tmux(args)
    return helper.run("tmux -S " .. helper.shq(server) .. " " .. args)
  end

  setup(function()
    if not HAVE_TMUX then return end
    -- slow enough that a 3-node allocation takes a few polls
    emu = helper.emulator("--time-scale 5")
    server = os.tmpname()              -- the private server's socket, removed at the end
    os.remove(server)
    raw = os.tmpname()
    assert.equal(0, (tmux("new-session -d -x 220 -y 50 -s t 'env -i PATH=/usr/bin:/bin HOME=/tmp bash --norc "
      .. "--noprofile'")))
    assert.equal(0, (tmux("pipe-pane -t t " .. helper.shq("cat >> " .. raw))))
  end)
  teardown(function()
    if server then
      tmux("kill-server")
      os.remove(server)
    end
    if emu then emu.stop() end
    if raw then os.remove(raw) end
  end)

  -- Type a command line into the terminal and wait for it to finish;
  -- returns its exit status and the screen.
  local marker = 0
  local function type_and_wait(cmd)
    marker = marker + 1
    local done = ("DONE%dx"):format(marker)
    assert.equal(0, (tmux("send-keys -t t " .. helper.shq(cmd .. "; echo " .. done .. "$?") .. " Enter")))
    for _ = 1, 300 do
      local _, screen = tmux("capture-pane -p -J -t t")
      local status = screen:match("\n" .. done .. "(%d+)")
      if status then return tonumber(status), screen end
      helper.sleep(0.1)
    end
    error("the command did not finish: " .. cmd)
  end

  local function azbatch(args)
    return ("env AZURE_BATCH_ENDPOINT=%s AZURE_BATCH_ACCOUNT=%s AZURE_BATCH_ACCESS_KEY=%s %s %s"):format(
      emu.url, helper.DEV_ACCOUNT, helper.DEV_KEY, helper.shq(helper.ROOT .. "/scripts/azbatch"), args)
  end

  local function raw_text()
    local f = assert(io.open(raw, "rb"))
    local s = f:read("a")
    f:close()
    return s
  end

  it("redraws one progress line with a bar and node-state counts while it waits", function()
    if not HAVE_TMUX then pending("tmux is not installed") return end
    local status, screen = type_and_wait(azbatch("pool create --id tty-pool --vm-size Standard_A1_v2 "
      .. "--target-dedicated-nodes 3 --image Canonical:0001-com-ubuntu-server-jammy:22_04-lts "
      .. "--node-agent-sku-id 'batch.node.ubuntu 22.04' --wait --interval 0.2 --query currentDedicatedNodes"))
    assert.equal(0, status, screen)
    -- the screen: one progress line, the last state, then the answer
    local bars = {}
    for line in screen:gmatch("[^\n]+") do
      if line:match("^tty%-pool %[") then bars[#bars + 1] = line end
    end
    assert.equal(1, #bars, screen)
    assert.matches("^tty%-pool %[########################%] 3/3 steady idle=3 %(%d+s%)$", bars[1])
    assert.matches("%(%d+s%)\n3\nDONE1x0", screen)
    assert.falsy(screen:find("%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ"), "no timestamped lines on a terminal")
    -- the bytes: the line was drawn several times, in place
    local text = raw_text()
    local _, redraws = text:gsub("\r\27%[Ktty%-pool %[", "")
    assert.is_true(redraws >= 2, "redraws: " .. redraws)
    assert.truthy(text:find("\r\27%[Ktty%-pool %[[#-]+%] [0-2]/3 resizing"), "an early state was drawn")
  end)

  it("logs a rollout's steps and draws its waits live beneath them", function()
    if not HAVE_TMUX then pending("tmux is not installed") return end
    local status = type_and_wait(azbatch("pool create --id tty-roll --vm-size Standard_A1_v2 "
      .. "--target-dedicated-nodes 2 --image Canonical:0001-com-ubuntu-server-jammy:22_04-lts "
      .. "--node-agent-sku-id 'batch.node.ubuntu 22.04' --wait --interval 0.2 -o none"))
    assert.equal(0, status)
    local before = #raw_text()
    local screen
    status, screen = type_and_wait(azbatch("rollout start --strategy in-place --pool tty-roll "
      .. "--image Canonical:ubuntu-24_04-lts:server --node-agent-sku-id 'batch.node.ubuntu 24.04' --no-preflight "
      .. "--poll 0.2 --id ro-tty -o none"))
    assert.equal(0, status, screen)
    -- the screen: every step's line, no bar left over
    assert.matches("%dZ ro%-tty step 1 [^\n]* ok\n", screen)
    assert.matches("%dZ ro%-tty step %d+ record the rollout as done ok\n", screen)
    for line in screen:sub((screen:find("DONE2x0", 1, true))):gmatch("[^\n]+") do
      assert.falsy(line:find("%[[#-]+%]"), "a bar left on screen: " .. line)
    end
    -- the bytes: a wait drawn in place (the pool growing back), then wiped for the step's line
    local text = raw_text():sub(before + 1)
    assert.truthy(text:find("\r\27%[Ktty%-roll %[[#-]+%] [0-2]/2 "), "a live wait line")
    assert.truthy(text:find("\r\27%[K[^\r\n]*%dZ ro%-tty step %d+ wait for tty%-roll"), "the line wiped for a step")
  end)

  it("colours jsonc on a terminal, and not with NO_COLOR", function()
    if not HAVE_TMUX then pending("tmux is not installed") return end
    local status = type_and_wait(azbatch("pool show --pool-id tty-pool -o jsonc --query '{id: id}'"))
    assert.equal(0, status)
    assert.truthy(raw_text():find('\27[94m"id"\27[0m: \27[32m"tty-pool"\27[0m', 1, true))
    local before = #raw_text()
    status = type_and_wait("NO_COLOR=1 " .. azbatch("pool show --pool-id tty-pool -o jsonc --query '{idx: id}'"))
    assert.equal(0, status)
    local after = raw_text():sub(before + 1)
    assert.truthy(after:find('"idx": "tty-pool"', 1, true), after)
  end)
end)
