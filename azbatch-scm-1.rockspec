rockspec_format = "3.0"
package = "azbatch"
version = "scm-1"
source = { url = "git+https://example.invalid/azbatch.git" }
description = {
  summary = "Azure Batch pools from custom images, scripted in Lua, with a native C core",
  detailed = [[
Validated image references, VM configurations and pool specs; Shared Key and
Microsoft Entra ID auth; every pool operation over libcurl; a large-pool planner
and a local Batch emulator.]],
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5" }
-- Libraries, not headers: Debian keeps curl/curl.h in the multiarch
-- include directory, where LuaRocks does not look; the Makefile takes the
-- compiler flags from pkg-config.
external_dependencies = {
  CURL = { library = "curl" },
  OPENSSL = { library = "crypto" },
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_variables = {
    INST_PREFIX = "$(PREFIX)",
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    INST_BINDIR = "$(BINDIR)",
  },
}
test = { type = "busted" }
