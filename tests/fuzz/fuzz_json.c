/*
** fuzz_json.c: libFuzzer target for the JSON decoder (ext/azb_json.c).
** Invariants: core.json_decode never raises; a failure is "json: ... at
** byte N" with err.offset = N within the input (or just past it); a
** success encodes, the text decodes again and encodes to the same text
** (decode -> encode is stable after one round).
**
** clang -g -O1 -fsanitize=fuzzer,address,undefined -Iext -I/usr/include/lua5.4 \
**   tests/fuzz/fuzz_json.c ext/[all].c -llua5.4 -lcurl -lcrypto -ldl -lm
*/
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lualib.h"
#include "lauxlib.h"

int luaopen_azbatch_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what, lua_State *L) {
  if (!ok) {
    fprintf(stderr, "invariant violated: %s (%s)\n", what,
            lua_isstring(L, -1) ? lua_tostring(L, -1) : "-");
    abort();
  }
}

/* core.<fn>(value at idx): pushes three results, returns the index of the
** first (the caller resets the stack). */
static int call(lua_State *L, const char *fn, int idx) {
  lua_getglobal(L, "core");
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  lua_pushvalue(L, idx);
  check(lua_pcall(L, 1, 3, 0) == LUA_OK, "the core raised", L);
  return lua_gettop(L) - 2;   /* index of the first result */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lua_State *L;
  static unsigned long runs;
  int top, r, text, once, again, twice;
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "azbatch.core", luaopen_azbatch_core, 0);
    lua_setglobal(L, "core");
  }
  top = lua_gettop(L);
  lua_pushlstring(L, (const char *)data, size);
  text = lua_gettop(L);
  r = call(L, "json_decode", text);
  if (lua_isnil(L, r)) {
    lua_Integer off;
    check(lua_type(L, r + 1) == LUA_TSTRING &&
          strncmp(lua_tostring(L, r + 1), "json: ", 6) == 0, "message", L);
    check(lua_type(L, r + 2) == LUA_TTABLE, "err table", L);
    lua_getfield(L, r + 2, "offset");
    off = lua_tointeger(L, -1);
    check(off >= 1 && (size_t)off <= size + 1, "offset within the input", L);
  }
  else {
    once = call(L, "json_encode", r);
    check(lua_type(L, once) == LUA_TSTRING, "a decoded value encodes", L);
    again = call(L, "json_decode", once);
    check(!lua_isnil(L, again), "the encoder's text decodes", L);
    twice = call(L, "json_encode", again);
    check(lua_type(L, twice) == LUA_TSTRING, "encodes again", L);
    check(lua_rawequal(L, once, twice), "decode -> encode is stable", L);
  }
  lua_settop(L, top);
  if (++runs % 256 == 0)
    lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
