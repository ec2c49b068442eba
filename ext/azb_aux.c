/*
** azb_aux.c: helpers shared by every area: fail values, classes,
** field paths, the collection of validation problems and the one
** unknown-key check. Depends on azb_text.c only.
*/
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "azb.h"


/*
** {======================================================
** Small helpers
** =======================================================
*/

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
** segments; the printed path then ends in "..." so it is never wrong.
*/
void azb_path_lkey(azb_vctx *v, const char *key, size_t len) {
  if (v->depth < AZB_PATH_MAX) {
    v->path[v->depth].key = key;
    v->path[v->depth].len = len;
    v->path[v->depth].index = 0;
  }
  v->depth++;
}

void azb_path_key(azb_vctx *v, const char *key) {
  azb_path_lkey(v, key, strlen(key));
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

/* A key printed as .key: a Lua name of reasonable length. */
static int is_name(const char *s, size_t n) {
  if (n == 0 || n > AZB_QUOTE_MAX || azb_isdigit((unsigned char)s[0]))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!azb_isalnum((unsigned char)s[i]) && s[i] != '_')
      return 0;
  return 1;
}

void azb_path_pushto(azb_vctx *v, int depth) {
  lua_State *L = v->L;
  luaL_Buffer b;
  int n = depth < AZB_PATH_MAX ? depth : AZB_PATH_MAX;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, v->root);
  for (int i = 0; i < n; i++) {
    const azb_pathseg *s = &v->path[i];
    if (s->key == NULL)
      lua_pushfstring(L, "[%I]", (LUAI_UACINT)s->index);
    else if (is_name(s->key, s->len)) {
      luaL_addchar(&b, '.');
      luaL_addlstring(&b, s->key, s->len);
      continue;
    }
    else {
      azb_text_pushquoted(L, s->key, s->len, '"');
      lua_pushfstring(L, "[%s]", lua_tostring(L, -1));
      lua_remove(L, -2);
    }
    luaL_addvalue(&b);
  }
  if (depth > AZB_PATH_MAX)
    luaL_addstring(&b, "...");
  luaL_pushresult(&b);
}

/* }====================================================== */


/*
** {======================================================
** Problems and warnings
** =======================================================
*/

/* Append {field=<path>, message=<msg on top>} to the array at 'list'
** as entry 'at'; pops the message. */
static void append(azb_vctx *v, int list, int at) {
  lua_State *L = v->L;
  int msg = lua_gettop(L);
  lua_createtable(L, 0, 3);
  azb_path_pushto(v, v->depth);
  lua_setfield(L, -2, "field");
  lua_pushvalue(L, msg);
  lua_setfield(L, -2, "message");
  lua_rawseti(L, list, at);
  lua_pop(L, 1);
}

/*
** Each rank keeps its first AZB_MAX_ERRORS problems, so a missing field
** found after 20 others still makes the list; the rest are counted.
*/
static void record(azb_vctx *v, int rank) {
  v->nerrors++;
  if (v->kept[rank] >= AZB_MAX_ERRORS) {
    lua_pop(v->L, 1);
    return;
  }
  v->kept[rank]++;
  v->rank[v->kept[0] + v->kept[1] - 1] = (unsigned char)rank;
  append(v, v->errors, v->kept[0] + v->kept[1]);
}

void azb_verror(azb_vctx *v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(v->L, fmt, ap);
  va_end(ap);
  record(v, AZB_INVALID);
}

void azb_verror_at(azb_vctx *v, const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(v->L, fmt, ap);
  va_end(ap);
  azb_path_key(v, key);
  record(v, AZB_INVALID);
  azb_path_pop(v);
}

void azb_vmissing(azb_vctx *v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(v->L, fmt, ap);
  va_end(ap);
  record(v, AZB_MISSING);
}

void azb_vmissing_at(azb_vctx *v, const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(v->L, fmt, ap);
  va_end(ap);
  azb_path_key(v, key);
  record(v, AZB_MISSING);
  azb_path_pop(v);
}

void azb_vwarn(azb_vctx *v, const char *recommended, const char *fmt, ...) {
  lua_State *L = v->L;
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  if (++v->nwarnings > AZB_MAX_ERRORS) {   /* counted, not kept */
    lua_pop(L, 1);
    return;
  }
  append(v, v->warnings, v->nwarnings);
  if (recommended != NULL) {
    lua_rawgeti(L, v->warnings, v->nwarnings);
    lua_pushstring(L, recommended);
    lua_setfield(L, -2, "recommended");
    lua_pop(L, 1);
  }
}

/*
** nil, "<field>: <message> (and N more)",
** {kind="validation", field=<field>, errors={...}, count=N}
*/
int azb_vctx_fail(azb_vctx *v) {
  lua_State *L = v->L;
  int nkept = v->kept[0] + v->kept[1], n = 0;
  if (v->nerrors == 0)
    return 0;
  lua_createtable(L, nkept < AZB_MAX_ERRORS ? nkept : AZB_MAX_ERRORS, 0);
  for (int rank = AZB_MISSING; rank <= AZB_INVALID; rank++)
    for (int i = 0; i < nkept && n < AZB_MAX_ERRORS; i++)
      if (v->rank[i] == rank) {
        lua_rawgeti(L, v->errors, i + 1);
        lua_rawseti(L, -2, ++n);
      }
  lua_replace(L, v->errors);
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


/*
** {======================================================
** Unknown keys
** =======================================================
*/

typedef struct unknown {
  const char *s;       /* string key (anchored by the table), or NULL */
  size_t n;
  lua_Integer i;       /* integer key when s == NULL and isint */
  int isint;
  int type;            /* Lua type of the key */
} unknown;

static int unknown_cmp(const void *pa, const void *pb) {
  const unknown *a = pa, *b = pb;
  if ((a->s != NULL) != (b->s != NULL))
    return a->s != NULL ? -1 : 1;           /* names first */
  if (a->s != NULL) {
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->s, b->s, n);
    return c != 0 ? c : (a->n > b->n) - (a->n < b->n);
  }
  if (a->isint != b->isint)
    return a->isint ? -1 : 1;
  if (a->isint)
    return (a->i > b->i) - (a->i < b->i);
  return a->type - b->type;   /* the rest print alike per type */
}

static int known_index(azb_names known, const char *k, size_t n) {
  const char *name;
  for (size_t i = 0; (name = azb_names_at(known, i)) != NULL; i++)
    if (strlen(name) == n && memcmp(name, k, n) == 0)
      return (int)i;
  return -1;
}

/* Is field 'name' absent from the table at idx (nil or JSON null)? */
static int absent(lua_State *L, int idx, const char *name) {
  int t;
  lua_pushstring(L, name);
  t = lua_rawget(L, idx);
  t = t == LUA_TNIL || azb_isnull(L, -1);
  lua_pop(L, 1);
  return t;
}

static void report_unknown(azb_vctx *v, int idx, const unknown *u,
                           azb_names known, uint64_t *meant) {
  lua_State *L = v->L;
  const char *hint;
  if (u->s == NULL) {
    if (u->isint)
      azb_path_index(v, u->i);
    lua_pushfstring(L, "unexpected %s key (field names are strings)",
                    lua_typename(L, u->type));
    record(v, AZB_INVALID);
    if (u->isint)
      azb_path_pop(v);
    return;
  }
  hint = azb_suggest_in(u->s, u->n, known);
  azb_path_lkey(v, u->s, u->n);
  if (hint == NULL) {
    lua_pushliteral(L, "unknown field");
    record(v, AZB_INVALID);
  }
  else {
    int rank = AZB_INVALID, i;
    if (absent(L, idx, hint)) {   /* a misspelt field is a missing one */
      rank = AZB_MISSING;
      i = known_index(known, hint, strlen(hint));
      if (i >= 0 && i < 64)
        *meant |= (uint64_t)1 << i;
    }
    lua_pushfstring(L, "unknown field (did you mean '%s'?)", hint);
    record(v, rank);
  }
  azb_path_pop(v);
}

int azb_vcheck_keys(azb_vctx *v, int idx, azb_names known, uint64_t *meant) {
  lua_State *L = v->L;
  size_t count = 0, i = 0;
  unknown *u;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {   /* the common case: count, allocate nothing */
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING ||
        known_index(known, lua_tostring(L, -1), lua_rawlen(L, -1)) < 0)
      count++;
  }
  if (count == 0)
    return 0;
  /* sorted, so that the report does not depend on the hash order */
  u = (unknown *)lua_newuserdatauv(L, count * sizeof(unknown), 0);
  lua_pushnil(L);
  while (lua_next(L, idx)) {   /* the table is not changed: i stays <= count */
    unknown *k = &u[i];
    lua_pop(L, 1);
    memset(k, 0, sizeof *k);
    k->type = lua_type(L, -1);
    if (k->type == LUA_TSTRING) {
      k->s = lua_tolstring(L, -1, &k->n);
      if (known_index(known, k->s, k->n) >= 0)
        continue;
    }
    else if (lua_isinteger(L, -1)) {
      k->isint = 1;
      k->i = lua_tointeger(L, -1);
    }
    if (++i == count) {
      lua_pop(L, 1);
      break;
    }
  }
  qsort(u, i, sizeof(unknown), unknown_cmp);
  for (size_t j = 0; j < i; j++)
    report_unknown(v, idx, &u[j], known, meant);
  lua_pop(L, 1);   /* u */
  return (int)i;
}

/* }====================================================== */
