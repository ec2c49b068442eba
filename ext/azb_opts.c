/*
** azb_opts.c: options tables, the one checker. An unknown key is misuse
** (a typo that would otherwise be ignored), so it raises, in Lua's own
** wording, with the closest known name. C areas call azb_check_options
** with a static name list; the Lua layer calls core.check_options with a
** set table, so both get the same rule and the same message.
*/
#include <math.h>
#include <string.h>

#include "azb.h"

#define MAX_NAMES 64

/* Raise "bad argument #arg to 'fname' (msg)" pointing at the caller. */
static int raise_arg(lua_State *L, int level, int arg, const char *fname,
                     const char *msg) {
  luaL_where(L, level);
  lua_pushfstring(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

static void unknown(lua_State *L, int level, int arg, const char *fname,
                    const char *const *known) {
  const char *msg;
  if (lua_type(L, -2) != LUA_TSTRING)
    msg = lua_pushfstring(L, "option names are strings, got a %s key",
                          luaL_typename(L, -2));
  else {
    size_t n;
    const char *k = lua_tolstring(L, -2, &n);
    const char *best = azb_suggest(k, n, known);
    msg = best ? lua_pushfstring(L, "unknown option '%s' (did you mean '%s'?)",
                                 k, best)
               : lua_pushfstring(L, "unknown option '%s'", k);
  }
  raise_arg(L, level, arg, fname, msg);
}

void azb_check_options(lua_State *L, int t, int arg, const char *fname,
                       const char *const *known) {
  t = lua_absindex(L, t);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    int ok = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int i = 0; known[i] != NULL && !ok; i++)
        ok = strcmp(lua_tostring(L, -2), known[i]) == 0;
    if (!ok)
      unknown(L, 1, arg, fname, known);
    lua_pop(L, 1);
  }
}

double azb_opt_seconds(lua_State *L, int t, const char *k, double d,
                       double min) {
  double v;
  if (lua_getfield(L, t, k) == LUA_TNIL) {
    lua_pop(L, 1);
    return d;
  }
  if (lua_type(L, -1) != LUA_TNUMBER)
    luaL_error(L, "option '%s': number of seconds expected, got %s", k,
               luaL_typename(L, -1));
  v = lua_tonumber(L, -1);
  /* NaN fails both comparisons; a year is longer than any call */
  if (!(v >= min && v <= AZB_SECONDS_MAX))
    luaL_error(L, "option '%s': must be a finite number of seconds in "
               "[%f, %d]", k, min, (int)AZB_SECONDS_MAX);
  lua_pop(L, 1);
  return v;
}

/*
** core.check_options(opts, arg, fname, allowed) -> opts (or a new empty
** table for nil). 'allowed' is a set {name = true}. Raises, at the level
** of whoever called the function that called this, on a non-table opts
** or an unknown key.
*/
static int opts_check(lua_State *L) {
  const char *known[MAX_NAMES + 1];
  int arg = (int)luaL_checkinteger(L, 2), n = 0;
  const char *fname = luaL_checkstring(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  if (lua_isnil(L, 1)) {
    lua_newtable(L);
    return 1;
  }
  if (lua_type(L, 1) != LUA_TTABLE)
    return raise_arg(L, 2, arg, fname, lua_pushfstring(L,
                     "table expected, got %s", luaL_typename(L, 1)));
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    int ok = lua_type(L, -2) == LUA_TSTRING;
    if (ok) {
      lua_pushvalue(L, -2);
      ok = lua_rawget(L, 4) != LUA_TNIL;
      lua_pop(L, 1);
    }
    if (!ok) {
      /* the names, for the suggestion; anchored by the set */
      lua_pushnil(L);
      while (n < MAX_NAMES && lua_next(L, 4) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING)
          known[n++] = lua_tostring(L, -1);
      }
      if (n == MAX_NAMES)
        lua_pop(L, 1);
      known[n] = NULL;
      unknown(L, 2, arg, fname, known);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  return 1;
}

/* core.suggest(name, {candidate, ...}) -> the closest candidate, or nil
** (the one edit distance, for callers with names of their own: CLI flags) */
#define MAX_CANDIDATES 256
static int opts_suggest(lua_State *L) {
  const char *known[MAX_CANDIDATES + 1], *best;
  size_t n;
  const char *k = luaL_checklstring(L, 1, &n);
  int m;
  luaL_checktype(L, 2, LUA_TTABLE);
  m = (int)luaL_len(L, 2);
  luaL_argcheck(L, m <= MAX_CANDIDATES, 2, "too many candidates");
  for (int i = 1; i <= m; i++) {
    lua_rawgeti(L, 2, i);
    known[i - 1] = luaL_checkstring(L, -1);   /* anchored by the table */
    lua_pop(L, 1);
  }
  known[m] = NULL;
  best = azb_suggest(k, n, known);
  if (best == NULL)
    lua_pushnil(L);
  else
    lua_pushstring(L, best);
  return 1;
}

void azb_opts_open(lua_State *L) {
  lua_pushcfunction(L, opts_check);
  lua_setfield(L, -2, "check_options");
  lua_pushcfunction(L, opts_suggest);
  lua_setfield(L, -2, "suggest");
}
