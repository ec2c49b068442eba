/*
** azb_json.c: JSON text in and out, in C (see the README for what
** lua-cjson 2.1.0 cannot do that made this necessary): the decoder in
** azb_jsondec.c, the encoder in azb_jsonenc.c. This file registers
** core.json_decode, core.array, core.null and AZB_ARRAY's metatable,
** which both read (core.json_encode is the walker's: a body is validated
** where it is encoded). Uses azb_aux.c and azb_text.c only; it never calls the
** walker, which calls it (and may pass a shaper back for tables it knows).
*/
#include "azb.h"


/*
** {======================================================
** Lua functions
** =======================================================
*/

/* Is the value at idx JSON null (core.null, a NULL light userdata)? */
int azb_isnull(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

/* core.array([t]) -> t marked to encode as a JSON array (even when empty) */
static int json_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, AZB_ARRAY);
    if (!lua_rawequal(L, -1, -2))
      return luaL_argerror(L, 1, "table already has a metatable");
    lua_pop(L, 2);
  }
  lua_settop(L, 1);
  luaL_setmetatable(L, AZB_ARRAY);
  return 1;
}

static const luaL_Reg json_funcs[] = {
  {"json_decode", azb_json_decode},
  {"array", json_array},
  {NULL, NULL}
};

void azb_json_open(lua_State *L) {
  luaL_newmetatable(L, AZB_ARRAY);
  lua_pop(L, 1);
  azb_json_encoder_open(L);
  luaL_setfuncs(L, json_funcs, 0);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
}

/* }====================================================== */
