/*
** embed_test.c: a host application that embeds azbatch the way a C tool
** would: its own lua_State, the core registered with luaL_requiref (no
** dlopen of the module), the Lua layer found through package.path, a
** script run, and lua_close. Under ASan this is the leak-checked host.
**
** usage: embed_test SCRIPT [LUA_DIR]
** The script prints TAP lines; the host adds its own and exits non-zero
** on any failure.
*/
#include <stdio.h>
#include <stdlib.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

int luaopen_azbatch_core(lua_State *L);

static int failures = 0;
static int count = 0;

static void check(int ok, const char *what) {
  count++;
  if (!ok) failures++;
  printf("%sok %d - host: %s\n", ok ? "" : "not ", count, what);
}

int main(int argc, char **argv) {
  const char *script = argc > 1 ? argv[1] : "tests/c/embed_script.lua";
  const char *luadir = argc > 2 ? argv[2] : "lua";
  lua_State *L = luaL_newstate();
  int status;
  if (L == NULL) {
    fprintf(stderr, "embed_test: cannot create a Lua state\n");
    return 1;
  }
  luaL_openlibs(L);

  /* The core, linked into the host and registered by name. */
  luaL_requiref(L, "azbatch.core", luaopen_azbatch_core, 0);
  check(lua_istable(L, -1), "luaL_requiref azbatch.core returns the module table");
  lua_pop(L, 1);

  /* The Lua layer from the source tree (a host would use its own path). */
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", luadir, luadir);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);

  status = luaL_loadfile(L, script);
  check(status == LUA_OK, "script loads");
  if (status == LUA_OK) {
    /* The script returns the number of its own failures. */
    status = lua_pcall(L, 0, 1, 0);
    if (status != LUA_OK)
      fprintf(stderr, "embed_test: %s\n", lua_tostring(L, -1));
    check(status == LUA_OK, "script runs without raising");
    if (status == LUA_OK) {
      lua_Integer bad = lua_tointeger(L, -1);
      check(lua_isinteger(L, -1) && bad == 0, "script reports no failures");
    }
  }
  else {
    fprintf(stderr, "embed_test: %s\n", lua_tostring(L, -1));
  }
  lua_close(L);
  check(1, "lua_close returns");
  printf("1..%d\n", count);
  return failures == 0 ? 0 : 1;
}
