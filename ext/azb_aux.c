/*
** azb_aux.c: helpers shared by every area: fail values, classes,
** field paths and the collection of validation problems.
*/
#include <stdarg.h>
#include <string.h>

#include "azb.h"


/*
** {======================================================
** Small helpers
** =======================================================
*/

void azb_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_setfuncs(L, l, nup);
}

void azb_newclass(lua_State *L, const char *tname, const luaL_Reg *meta,
                  const luaL_Reg *methods) {
  luaL_newmetatable(L, tname);
  if (meta != NULL)
    luaL_setfuncs(L, meta, 0);
  if (methods != NULL) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
}

/* fail, message, {kind=, field=} */
int azb_fail(lua_State *L, const char *kind, const char *field,
             const char *fmt, ...) {
  va_list ap;
  luaL_pushfail(L);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (field != NULL) {
    lua_pushstring(L, field);
    lua_setfield(L, -2, "field");
  }
  return 3;
}

/* }====================================================== */


/*
** {======================================================
** Field paths
** =======================================================
*/

void azb_vctx_init(azb_vctx *v, lua_State *L, const char *root) {
  memset(v, 0, sizeof *v);
  v->L = L;
  v->root = root;
  lua_newtable(L);
  v->errors = lua_gettop(L);
  lua_newtable(L);
  v->warnings = lua_gettop(L);
}

/*
** Past AZB_PATH_MAX the walker keeps counting depth but stops recording
** segments; the printed path then ends in ".." so it is never wrong.
*/
void azb_path_key(azb_vctx *v, const char *key) {
  if (v->depth < AZB_PATH_MAX) {
    v->path[v->depth].key = key;
    v->path[v->depth].index = 0;
  }
  v->depth++;
}

void azb_path_index(azb_vctx *v, lua_Integer i) {
  if (v->depth < AZB_PATH_MAX) {
    v->path[v->depth].key = NULL;
    v->path[v->depth].index = i;
  }
  v->depth++;
}

void azb_path_pop(azb_vctx *v) {
  if (v->depth > 0)
    v->depth--;
}

void azb_path_push(azb_vctx *v) {
  lua_State *L = v->L;
  luaL_Buffer b;
  int n = v->depth < AZB_PATH_MAX ? v->depth : AZB_PATH_MAX;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, v->root);
  for (int i = 0; i < n; i++) {
    const azb_pathseg *s = &v->path[i];
    if (s->key != NULL) {
      luaL_addchar(&b, '.');
      luaL_addstring(&b, s->key);
    }
    else {
      lua_pushfstring(L, "[%I]", (LUAI_UACINT)s->index);
      luaL_addvalue(&b);
    }
  }
  if (v->depth > AZB_PATH_MAX)
    luaL_addstring(&b, "...");
  luaL_pushresult(&b);
}

/* Append {field=<path>, message=<msg on top>} to the array at 'list'. */
static void record(azb_vctx *v, int list, int *count) {
  lua_State *L = v->L;
  int msg = lua_gettop(L);
  (*count)++;
  if (*count > AZB_MAX_ERRORS) {   /* counted, not kept */
    lua_pop(L, 1);
    return;
  }
  lua_createtable(L, 0, 3);
  azb_path_push(v);
  lua_setfield(L, -2, "field");
  lua_pushvalue(L, msg);
  lua_setfield(L, -2, "message");
  lua_rawseti(L, list, *count);
  lua_pop(L, 1);  /* msg */
}

void azb_verror(azb_vctx *v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(v->L, fmt, ap);
  va_end(ap);
  record(v, v->errors, &v->nerrors);
}

void azb_verror_at(azb_vctx *v, const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(v->L, fmt, ap);
  va_end(ap);
  azb_path_key(v, key);
  record(v, v->errors, &v->nerrors);
  azb_path_pop(v);
}

void azb_vwarn(azb_vctx *v, const char *recommended, const char *fmt, ...) {
  lua_State *L = v->L;
  va_list ap;
  if (v->warnings == 0)
    return;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  record(v, v->warnings, &v->nwarnings);
  if (recommended != NULL && v->nwarnings <= AZB_MAX_ERRORS) {
    lua_rawgeti(L, v->warnings, v->nwarnings);
    lua_pushstring(L, recommended);
    lua_setfield(L, -2, "recommended");
    lua_pop(L, 1);
  }
}

/*
** nil, "<field>: <message> (and N more)",
** {kind="validation", field=<field>, errors={...}}
*/
int azb_vctx_fail(azb_vctx *v) {
  lua_State *L = v->L;
  if (v->nerrors == 0)
    return 0;
  luaL_pushfail(L);
  lua_rawgeti(L, v->errors, 1);
  lua_getfield(L, -1, "field");
  lua_getfield(L, -2, "message");
  if (v->nerrors > 1)
    lua_pushfstring(L, "%s: %s (and %d more)", lua_tostring(L, -2),
                    lua_tostring(L, -1), v->nerrors - 1);
  else
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
  /* stack: fail, first, field, message, text */
  lua_replace(L, -4);           /* fail, text, field, message */
  lua_pop(L, 1);                /* fail, text, field */
  lua_createtable(L, 0, 4);
  lua_pushliteral(L, "validation");
  lua_setfield(L, -2, "kind");
  lua_insert(L, -2);            /* fail, text, err, field */
  lua_setfield(L, -2, "field");
  lua_pushvalue(L, v->errors);
  lua_setfield(L, -2, "errors");
  lua_pushinteger(L, v->nerrors);
  lua_setfield(L, -2, "count");
  return 3;
}

/* }====================================================== */
