-- Completion: the candidates the CLI's own tables give, and the bash
-- script that asks for them, sourced in a real bash.
local cli = require "azbatch.cli"
local helper = test_helper

local function has(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

describe("azbatch __complete", function()
  it("completes the first word with the command groups and verbs, never the hidden one", function()
    local c = cli.complete { "" }
    for _, w in ipairs { "pool", "node", "image", "preflight", "supported-images", "plan", "run" } do
      assert.is_true(has(c, w), w)
    end
    assert.is_false(has(c, "__complete"))
  end)

  it("completes the verbs of a group, and of a group inside a group", function()
    local c = cli.complete { "pool", "" }
    for _, w in ipairs { "create", "show", "list", "delete", "resize", "wait", "set", "reset", "autoscale",
      "node-counts", "supported-images", "images", "exists" } do
      assert.is_true(has(c, w), w)
    end
    assert.same({ "disable", "enable", "evaluate" }, cli.complete { "pool", "autoscale", "" })
    assert.same({ "delete", "list", "show" }, cli.complete { "node", "" })
    assert.same({ "abort", "forget", "resume", "start", "status" }, cli.complete { "rollout", "" })
    assert.same({ "canary", "blue-green", "rolling", "in-place" },
      cli.complete { "rollout", "start", "--strategy", "" })
  end)

  it("completes a verb's flags, its account flags and the global ones, from the same tables as --help", function()
    local c = cli.complete { "pool", "resize", "--" }
    for _, f in ipairs { "--pool-id", "--target-dedicated-nodes", "--abort", "--wait", "--account-endpoint",
      "--output", "--query", "--verbose", "--debug", "--help" } do
      assert.is_true(has(c, f), f)
    end
    for _, f in ipairs(cli.all_flags(cli.commands["pool create"])) do
      if not f.hidden then assert.is_true(has(cli.complete { "pool", "create", "" }, "--" .. f.name), f.name) end
    end
    assert.is_false(has(cli.complete { "pool", "create", "" }, "--certificate-references"))
  end)

  it("completes a flag's value: choices, true/false, files", function()
    assert.same({ "json", "jsonc", "table", "tsv", "none" }, cli.complete { "pool", "list", "--output", "" })
    assert.same({ "json", "jsonc", "table", "tsv", "none" }, cli.complete { "pool", "list", "-o", "" })
    assert.same({ "false", "true" }, cli.complete { "pool", "create", "--enable-vtpm", "" })
    assert.same({ "ready", "allocated" }, cli.complete { "pool", "wait", "--nodes", "" })
    assert.same({ "__files__" }, cli.complete { "pool", "create", "--json-file", "" })
    assert.same({}, cli.complete { "pool", "show", "--pool-id", "" })
    assert.same({ "__files__" }, cli.complete { "run", "" })
    assert.same({}, cli.complete { "run", "script.lua", "" })
    assert.same({}, cli.complete { "run", "--account-endpoint", "http://h", "script.lua", "--x", "" })
    assert.same({ "__files__" }, cli.complete { "run", "--account-endpoint", "http://h", "" })
  end)

  it("answers through the launcher, one candidate a line", function()
    local status, out = helper.run("env " .. helper.sanitizer_env() .. helper.shq(helper.ROOT .. "/scripts/azbatch")
      .. " __complete pool autoscale ''")
    assert.equal(0, status)
    assert.equal("disable\nenable\nevaluate\n", out)
  end)
end)

describe("scripts/azbatch-completion.bash", function()
  -- COMPREPLY after completing the words (the last is the one being typed).
  local function complete(...)
    local words = { helper.shq(helper.ROOT .. "/scripts/azbatch") }
    for _, w in ipairs { ... } do words[#words + 1] = helper.shq(w) end
    local script = (". %s; COMP_WORDS=(%s); COMP_CWORD=%d; _azbatch; printf '%%s\\n' \"${COMPREPLY[@]}\"")
      :format(helper.shq(helper.ROOT .. "/scripts/azbatch-completion.bash"), table.concat(words, " "), select("#", ...))
    local status, out, err = helper.run("env " .. helper.sanitizer_env() .. "bash -c " .. helper.shq(script))
    assert.equal(0, status, err)
    local got = {}
    for line in out:gmatch("[^\n]+") do got[#got + 1] = line end
    return got
  end

  it("completes verbs by prefix", function()
    assert.same({ "create" }, complete("pool", "cr"))
    assert.same({ "reset", "resize" }, complete("pool", "res"))
  end)

  it("completes flags by prefix", function()
    assert.same({ "--target-dedicated-nodes", "--target-low-priority-nodes" }, complete("pool", "resize", "--target"))
  end)

  it("completes choices of the flag before", function()
    assert.same({ "table", "tsv" }, complete("pool", "list", "--output", "t"))
  end)

  it("completes file names after --json-file", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. helper.shq(dir) .. " && touch " .. helper.shq(dir .. "/pool-body.json")))
    local got = complete("pool", "create", "--json-file", dir .. "/pool-")
    os.execute("rm -r " .. helper.shq(dir))
    assert.same({ dir .. "/pool-body.json" }, got)
  end)

  it("registers itself for the azbatch command", function()
    local status, out = helper.run("bash -c " .. helper.shq(". " .. helper.ROOT .. "/scripts/azbatch-completion.bash; "
      .. "complete -p azbatch"))
    assert.equal(0, status)
    assert.matches("%-F _azbatch azbatch", out)
  end)
end)
