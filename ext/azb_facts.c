/*
** azb_facts.c: reading the facts tables that preflight and the node agent
** chooser judge (plain Lua tables gathered from ARM and the data plane).
** Raw reads only: a facts table is data, never an object with metamethods.
*/
#include <string.h>

#include "azb.h"

const char *const azb_image_kinds[K_NKINDS + 1] = {
  "marketplace", "gallery_version", "gallery_latest", "managed_image",
  "shared_gallery", "community_gallery", "vhd", NULL
};

/* Push t[k] (raw) and return its type. */
int azb_facts_get(lua_State *L, int t, const char *k) {
  lua_pushstring(L, k);
  return lua_rawget(L, t);
}

/* t[k] when it is a string (anchored by t), else an empty span; t = 0
** stands for an absent table. */
azb_span azb_facts_str(lua_State *L, int t, const char *k) {
  azb_span s = { NULL, 0 };
  if (t == 0)
    return s;
  if (azb_facts_get(L, t, k) == LUA_TSTRING)
    s.p = lua_tolstring(L, -1, &s.n);
  lua_pop(L, 1);
  return s;
}

/* Push t[k] and return its index when it is a table; else push nothing
** and return 0. */
int azb_facts_sub(lua_State *L, int t, const char *k) {
  if (t == 0)
    return 0;
  if (azb_facts_get(L, t, k) == LUA_TTABLE)
    return lua_gettop(L);
  lua_pop(L, 1);
  return 0;
}

/*
** facts[k] (facts at index 1) must be a table, or (when optional) absent;
** a JSON null (light userdata) counts as absent. Anything else is misuse
** and raises. Pushes the table and returns its index, or returns 0.
*/
int azb_facts_table(lua_State *L, const char *k, int optional) {
  int t = azb_facts_get(L, 1, k);
  if (t == LUA_TTABLE)
    return lua_gettop(L);
  if (optional && (t == LUA_TNIL || t == LUA_TLIGHTUSERDATA)) {
    lua_pop(L, 1);
    return 0;
  }
  luaL_checkstack(L, 4, NULL);
  return luaL_argerror(L, 1, lua_pushfstring(L, "facts.%s: table expected, "
                       "got %s", k, luaL_typename(L, -1)));
}

/* facts.image.kind (img: the image table's index) as a K_* value; any
** other value is misuse and raises. */
int azb_facts_image_kind(lua_State *L, int img) {
  azb_span kind = azb_facts_str(L, img, "kind");
  for (int k = 0; kind.p != NULL && k < K_NKINDS; k++)
    if (strlen(azb_image_kinds[k]) == kind.n &&
        memcmp(azb_image_kinds[k], kind.p, kind.n) == 0)
      return k;
  return luaL_argerror(L, 1, "facts.image.kind: expected one of "
                       "'marketplace', 'gallery_version', 'gallery_latest', "
                       "'managed_image', 'shared_gallery', "
                       "'community_gallery', 'vhd'");
}
