-- make demo's script, as a user sees it (faster: the emulator's clock runs
-- 20 times real time): every part runs, the rollout ends done with the jobs
-- on the new pool, the audit shows the versions before and after, and the
-- emulator it started is gone at the end.
local helper = test_helper

describe("make demo", function()
  it("runs the canary then blue-green story end to end and stops its emulator", function()
    local svg = helper.ROOT .. "/build/demo-rollout.svg"
    os.remove(svg)
    -- without the sanitizer preload (under make asan): the script's shell
    -- tools (mktemp, sed) leak at exit by design; the CLI is checked under
    -- ASan by the cli specs
    local status, out, err = helper.run("env -u LD_PRELOAD DEMO_TIME_SCALE=20 sh "
      .. helper.shq(helper.ROOT .. "/scripts/demo.sh"))
    assert.equal(0, status, err .. out)
    assert.matches("== 1%. A mistake caught before anything is sent.-nodeAgentSKUId", out .. err)
    assert.matches("gallery replicas%s+5", out)
    -- before: the pool on 1.0.0 with the jobs
    assert.matches("== 4%. Before.-\nworkers%-v1 +gallery_version +true +devgallery/ubuntu2204/1%.0%.0 "
      .. "+1%.0%.0 %(2%)", out)
    assert.matches("\nnightly%-render +active +workers%-v1\n", out)
    -- the rollout: every step ok, done
    assert.matches("rollout ro%-%x+ %(canary%): done\n", out)
    assert.not_matches("%sfailed%s", out)
    -- after: the new pool on 1.1.0, the jobs moved, the old pool gone
    local after = out:match("== 6%. After.*$")
    assert.matches("\nworkers%-v1%-ro%x+ +gallery_version +true +devgallery/ubuntu2204/1%.1%.0 +1%.1%.0 %(2%)", after)
    assert.matches("\nnightly%-render +active +workers%-v1%-ro%x+\n", after)
    assert.not_matches("\nworkers%-v1 ", after)
    assert.matches("done +14/14", after)
    assert.matches("== Where to go next", out)
    local f = assert(io.open(svg))
    assert.matches("^<svg", f:read("a"))
    f:close()
    -- the demo's emulator is gone: nothing answers on its port (a process
    -- list would also show other runs' demos)
    local url = out:match("emulator at (http://127%.0%.0%.1:%d+):")
    assert.is_string(url, out)
    local http <close> = require("azbatch.core").http {}
    local answered, msg = http:request { method = "GET", url = url .. "/_emulator/health" }
    assert.is_nil(answered)
    assert.matches("connect", msg)
  end)
end)
