/*
** fuzz_validate.c: libFuzzer target for the descriptor walker and the
** JSON encoder. Each input is decoded with core.json_decode; a table is
** then validated as every kind, each success encoded, and the raw table
** encoded as each kind and generically. Every call runs under pcall: a
** Lua error is a finding only if it is not a clean fail value, which the
** asserts below catch; memory errors are ASan's. (fuzz_json.c fuzzes the
** decoder itself.)
**
** clang -g -O1 -fsanitize=fuzzer,address,undefined -Iext -I/usr/include/lua5.4 \
**   tests/fuzz/fuzz_validate.c ext/[all].c -llua5.4 -lcurl -lcrypto -ldl -lm
*/
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lua.h"
#include "lualib.h"
#include "lauxlib.h"

int luaopen_azbatch_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const kinds[] = {
  "pool", "virtualMachineConfiguration", "pool.update", "pool.replace",
  "pool.resize", "pool.enableautoscale", "pool.evaluateautoscale",
  "pool.removenodes", NULL
};

static lua_State *setup(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "azbatch.core", luaopen_azbatch_core, 0);
  lua_setglobal(L, "core");
  return L;
}

/* core.validate(kind, v), core.json_encode(v [, kind]), ...: must return
** a value or a fail triple with a string message, never raise. Leaves the
** first result. */
static void call(lua_State *L, const char *fn, const char *kind, int idx) {
  int first = kind != NULL && fn[0] == 'v';   /* validate takes the kind first */
  lua_getglobal(L, "core");
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  if (first)
    lua_pushstring(L, kind);
  lua_pushvalue(L, idx);
  if (kind != NULL && !first)
    lua_pushstring(L, kind);
  if (lua_pcall(L, kind != NULL ? 2 : 1, 2, 0) != LUA_OK) {
    fprintf(stderr, "core.%s raised: %s\n", fn, lua_tostring(L, -1));
    abort();   /* data must never make the core raise */
  }
  if (lua_isnil(L, -2) && lua_type(L, -1) != LUA_TSTRING)
    abort();   /* a fail value always carries its message */
  lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lua_State *L;
  static unsigned long runs;
  int top, t;
  if (L == NULL)
    L = setup();
  top = lua_gettop(L);
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "json_decode");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    abort();   /* data must never make the decoder raise */
  if (lua_istable(L, -1)) {
    t = lua_gettop(L);
    for (int k = 0; kinds[k] != NULL; k++) {
      call(L, "validate", kinds[k], t);
      if (lua_istable(L, -1)) {
        int r = lua_gettop(L);
        call(L, "json_encode", NULL, r);
        if (lua_type(L, -1) != LUA_TSTRING)
          abort();   /* a validated body always encodes */
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
      call(L, "json_encode", kinds[k], t);
      lua_pop(L, 1);
    }
    call(L, "json_encode", NULL, t);
    if (lua_type(L, -1) != LUA_TSTRING)
      abort();   /* whatever was decoded encodes */
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  if (++runs % 256 == 0)
    lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
