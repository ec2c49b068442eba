/*
** lua_named.c: a bare Lua 5.4 interpreter linked with liblua5.4.a, whose
** symbol table the distribution's stripped lua5.4 lacks, so callgrind can
** name Lua's own functions (GC, tables, strings) in tests/bench/profile.sh.
** usage: lua_named SCRIPT [ARGS...]   (sets 'arg' as lua5.4 does)
*/
#include <stdio.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  int rc;
  if (L == NULL || argc < 2) {
    fprintf(stderr, "usage: lua_named SCRIPT [ARGS...]\n");
    return 2;
  }
  luaL_openlibs(L);
  lua_createtable(L, argc, 1);
  for (int i = 0; i < argc - 1; i++) {
    lua_pushstring(L, argv[i + 1]);
    lua_rawseti(L, -2, i);
  }
  lua_setglobal(L, "arg");
  rc = luaL_dofile(L, argv[1]);
  if (rc != LUA_OK)
    fprintf(stderr, "lua_named: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return rc == LUA_OK ? 0 : 1;
}
