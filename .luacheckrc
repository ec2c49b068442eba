std = "lua54"
max_line_length = 120
files["tests"] = { std = "+busted", read_globals = { "test_helper" } }
files["scripts/azbatch"] = { std = "lua54" }
exclude_files = { "build", "build-asan", "build-fuzz" }
-- LuaLS annotations: stubs whose arguments are documentation
files["lua/azbatch/meta.lua"] = { unused_args = false, max_line_length = false }
