-- The flag kinds az's verbs need: lists, three-state booleans, numbers,
-- short names, aliases, flags the API no longer has, and a verb that
-- hands everything after its first word to a script.
local args = require "azbatch.args"

local FLAGS = {
  { name = "metadata", key = "metadata", kind = "list" },
  { name = "vtpm", key = "vtpm", kind = "bool" },
  { name = "interval", key = "interval", kind = "number" },
  { name = "output", short = "o", key = "output", kind = "string", choices = { "json", "table" } },
  { name = "disk-encryption-targets", key = "targets", kind = "list", aliases = { "targets" } },
  { name = "old", key = "old", kind = "string", removed = "gone since 2025-06-01", hidden = true },
  { name = "secret", key = "secret", kind = "list", secret = true },
  { name = "yes", short = "y", key = "yes", kind = "flag" },
}

describe("flag kinds", function()
  it("takes a list's words up to the next flag, and appends repeats", function()
    local o = assert(args.parse({ "--metadata", "a=b", "c=d", "--yes", "--metadata", "e=f" }, FLAGS))
    assert.same({ metadata = { "a=b", "c=d", "e=f" }, yes = true }, o)
    o = assert(args.parse({ "--metadata=-x", "--metadata", "y" }, FLAGS))
    assert.same({ "-x", "y" }, o.metadata)
  end)

  it("takes one attached list value, and reads the next word as an argument", function()
    local o, why, pos = args.parse({ "--metadata=a", "b" }, FLAGS)
    assert.is_nil(why)
    assert.same({ "a" }, o.metadata)
    assert.same({ "b" }, pos)
  end)

  it("needs a list's first value", function()
    local o, why = args.parse({ "--metadata", "--yes" }, FLAGS)
    assert.is_nil(o)
    assert.equal("--metadata expects a value, got the flag --yes", why)
  end)

  it("takes true or false for a three-state flag, any case, and nothing else", function()
    assert.same({ vtpm = true }, args.parse({ "--vtpm", "TRUE" }, FLAGS))
    assert.same({ vtpm = false }, args.parse({ "--vtpm=false" }, FLAGS))
    local o, why = args.parse({ "--vtpm", "yes" }, FLAGS)
    assert.is_nil(o)
    assert.equal('--vtpm expects true or false, got "yes"', why)
    o, why = args.parse({ "--vtpm" }, FLAGS)
    assert.is_nil(o)
    assert.equal("--vtpm expects a value", why)
  end)

  for _, row in ipairs { { "0.5", 0.5 }, { "30", 30 }, { "2.", 2 } } do
    it("takes the number " .. row[1], function()
      assert.same({ interval = row[2] }, args.parse({ "--interval", row[1] }, FLAGS))
    end)
  end
  for _, bad in ipairs { "1e3", "0x10", ".5", "inf", "nan", "1,5" } do
    it("refuses the number " .. bad, function()
      local o, why = args.parse({ "--interval=" .. bad }, FLAGS)
      assert.is_nil(o)
      assert.equal(("--interval expects a number, got %q"):format(bad), why)
    end)
  end

  it("takes a short name, with its value after it", function()
    assert.same({ output = "table", yes = true }, args.parse({ "-o", "table", "-y" }, FLAGS))
    local o, why = args.parse({ "-o" }, FLAGS)
    assert.is_nil(o)
    assert.equal("--output expects a value", why)
  end)

  it("matches choices in any case and gives back the canonical one", function()
    assert.same({ output = "table" }, args.parse({ "--output", "TABLE" }, FLAGS))
  end)

  it("takes an alias for the same key", function()
    assert.same({ targets = { "OsDisk" } }, args.parse({ "--targets", "OsDisk" }, FLAGS))
  end)

  it("refuses a removed flag with its reason, and never suggests it", function()
    local o, why = args.parse({ "--old", "x" }, FLAGS)
    assert.is_nil(o)
    assert.equal("--old: gone since 2025-06-01", why)
    o, why = args.parse({ "--olx" }, FLAGS)
    assert.is_nil(o)
    assert.equal("unrecognized argument --olx", why)
  end)

  it("never shows a secret list value in a message", function()
    local _, why = args.parse({ "--secret", "-k3y" }, FLAGS)
    assert.falsy(why:find("k3y", 1, true))
  end)

  it("stops at the first positional word when asked, keeping the rest untouched", function()
    local o, why, pos = args.parse({ "-y", "script.lua", "--not-ours", "-o", "x" }, FLAGS,
      { stop_at_positional = true })
    assert.is_nil(why)
    assert.same({ yes = true }, o)
    assert.same({ "script.lua", "--not-ours", "-o", "x" }, pos)
  end)

  it("renders groups, list and boolean forms, aliases and removed flags in help", function()
    local text = args.help("azbatch x", "Does x.", {
      { name = "a", key = "a", kind = "list", metavar = "K=V", group = "pool" },
      { name = "b", key = "b", kind = "bool", group = "pool", aliases = { "bb" }, help = "bee" },
      { name = "c", short = "c", key = "c", kind = "string", choices = { "x", "y" } },
      { name = "gone", key = "gone", removed = "no" },
    })
    assert.matches("\npool:\n  %-%-a K=V %[K=V %.%.%.%]\n", text)
    assert.matches("\n  %-%-b {true,false} +bee %(also %-%-bb%)\n", text)
    assert.matches("\noptions:\n  %-c, %-%-c {x,y}\n", text)
    assert.matches("Not in Batch API 2025%-06%-01 %(refused with the reason%): %-%-gone%.", text)
    assert.falsy(text:find("  --gone", 1, true))
  end)
end)
