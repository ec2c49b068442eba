/*
** azb_json.c: JSON out, in C. Debian's lua-cjson writes "/" as "\/",
** cannot tell an empty array from an empty object and decodes every
** number as a float; REST bodies need better, so the core writes them:
** descriptor-driven when the value's metatable (or a kind) names a body,
** generic otherwise. Also core.array, core.null and core.json_normalize.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azb_schema.h"

#define NORMALIZE_DEPTH  1000   /* lua-cjson's default decode depth */
#define MAX_SAFE_INT     9007199254740992.0   /* 2^53 */


/*
** {======================================================
** Output buffer. A luaL_Buffer must sit at the stack top whenever it
** grows, which a recursive walk over tables cannot promise; this box is
** a userdata at a fixed slot instead, grown with Lua's allocator and
** freed by __gc if an error (out of memory) unwinds past it.
** =======================================================
*/

#define AZB_JSONBUF  "azbatch.JsonBuffer"

typedef struct jbuf {
  char *p;
  size_t n, cap;
} jbuf;

static void jbuf_free(lua_State *L, jbuf *b) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  if (b->p != NULL)
    alloc(ud, b->p, b->cap, 0);
  b->p = NULL;
  b->n = b->cap = 0;
}

static int jbuf_gc(lua_State *L) {
  jbuf_free(L, (jbuf *)luaL_checkudata(L, 1, AZB_JSONBUF));
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Encoder: a walk over the value with everything on L's stack
** =======================================================
*/

/* fixed slots above 'base' */
#define S_VISITING  1   /* tables being encoded: cycle detection */
#define S_ARRAYMT   2   /* AZB_ARRAY metatable */
#define S_IMAGEMT   3   /* AZB_IMAGEREF metatable */
#define S_BUF       4   /* the jbuf box */

typedef struct jenc {
  lua_State *L;
  jbuf *b;
  azb_vctx *v;
  int base;
  int depth;
} jenc;

static void jadd(jenc *e, const char *s, size_t n) {
  jbuf *b = e->b;
  if (n == 0)
    return;
  if (b->cap - b->n < n) {
    void *ud, *np;
    lua_Alloc alloc = lua_getallocf(e->L, &ud);
    size_t cap = b->cap < 256 ? 256 : b->cap;
    while (cap - b->n < n) {
      if (cap > ((size_t)-1) / 2)
        luaL_error(e->L, "not enough memory");
      cap *= 2;
    }
    np = alloc(ud, b->p, b->cap, cap);
    if (np == NULL)
      luaL_error(e->L, "not enough memory");
    b->p = (char *)np;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void jadds(jenc *e, const char *s) {
  jadd(e, s, strlen(s));
}

static void jaddc(jenc *e, char c) {
  jadd(e, &c, 1);
}

static int enc_value(jenc *e, int idx);
static int enc_object(jenc *e, const azb_object *o, int idx);

/* Record the problem at the current path; the caller abandons the buffer. */
static int jfail(jenc *e, const char *what, const char *arg) {
  azb_verror(e->v, what, arg);
  return 0;
}

static int jtype(jenc *e, const char *want, int idx) {
  azb_verror(e->v, "expected %s, got %s", want, azb_sch_typename(e->L, idx));
  return 0;
}

static int enter(jenc *e, int idx) {
  lua_State *L = e->L;
  int seen;
  if (e->depth >= AZB_JSON_DEPTH || !lua_checkstack(L, 8))
    return jfail(e, "nested too deeply (more than %s levels)", "64");
  lua_pushvalue(L, idx);
  seen = lua_rawget(L, e->base + S_VISITING) != LUA_TNIL;
  lua_pop(L, 1);
  if (seen)
    return jfail(e, "cannot encode a cyclic table%s", "");
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, e->base + S_VISITING);
  e->depth++;
  return 1;
}

static void leave(jenc *e, int idx) {
  lua_pushvalue(e->L, idx);
  lua_pushnil(e->L);
  lua_rawset(e->L, e->base + S_VISITING);
  e->depth--;
}

static int enc_string(jenc *e, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, run = 0;
  jaddc(e, '"');
  while (i < len) {
    unsigned c = p[i];
    const char *esc = NULL;
    size_t n = 1;
    if (c >= 0x80) {
      n = azb_utf8_seq(p + i, len - i);
      if (n == 0)
        return jfail(e, "not valid UTF-8%s", "");
    }
    else if (c == '"') esc = "\\\"";
    else if (c == '\\') esc = "\\\\";
    else if (c == '\n') esc = "\\n";
    else if (c == '\r') esc = "\\r";
    else if (c == '\t') esc = "\\t";
    else if (c == '\b') esc = "\\b";
    else if (c == '\f') esc = "\\f";
    else if (c < 0x20) esc = "";
    if (esc == NULL) {   /* passes through: extend the run */
      i += n;
      run += n;
      continue;
    }
    jadd(e, s + i - run, run);
    run = 0;
    if (*esc)
      jadds(e, esc);
    else {
      char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
      jadds(e, u);
    }
    i++;
  }
  jadd(e, s + i - run, run);
  jaddc(e, '"');
  return 1;
}

/* Integers as integers; integral floats within 2^53 too (a REST body has
** no 2.0); other floats in the shortest form that reads back the same. */
static int enc_number(jenc *e, int idx) {
  char buf[64];
  int n = 0;
  if (lua_isinteger(e->L, idx))
    n = snprintf(buf, sizeof buf, LUA_INTEGER_FMT,
                 (LUAI_UACINT)lua_tointeger(e->L, idx));
  else {
    lua_Number d = lua_tonumber(e->L, idx);
    if (isnan(d))
      return jfail(e, "cannot encode %s", "NaN");
    if (isinf(d))
      return jfail(e, "cannot encode %s", d > 0 ? "inf" : "-inf");
    if (d == floor(d) && fabs(d) <= MAX_SAFE_INT)
      n = snprintf(buf, sizeof buf, "%lld", (long long)d);
    else {
      static const char *const fmts[] = {"%.15g", "%.16g", "%.17g"};
      for (int k = 0; k < 3; k++) {
        n = snprintf(buf, sizeof buf, fmts[k], (double)d);
        if (strtod(buf, NULL) == (double)d)
          break;
      }
      for (int k = 0; k < n; k++)   /* a locale may have written ',' */
        if (buf[k] == ',')
          buf[k] = '.';
    }
  }
  jadd(e, buf, (size_t)n);
  return 1;
}

/* Keys of the table at idx: counts of string keys, sequence keys, others. */
typedef struct keyinfo {
  lua_Integer nstr, nint, maxk, nother;
  int othertype;
} keyinfo;

static void scan_keys(jenc *e, int idx, keyinfo *k) {
  lua_State *L = e->L;
  memset(k, 0, sizeof *k);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING)
      k->nstr++;
    else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      k->nint++;
      if (lua_tointeger(L, -1) > k->maxk)
        k->maxk = lua_tointeger(L, -1);
    }
    else if (k->nother++ == 0)
      k->othertype = lua_type(L, -1);
  }
}

/* The sequence 1..n at idx; each element by f (descriptor) or generically. */
static int enc_seq(jenc *e, int idx, lua_Integer n, const azb_field *f);

static int is_sequence(jenc *e, const keyinfo *k) {
  if (k->nstr == 0 && k->nother == 0 && k->maxk == k->nint)
    return 1;
  if (k->nother > 0 || k->nstr > 0)
    return jfail(e, "expected array, got table with key of type %s",
                 k->nother > 0 ? lua_typename(e->L, k->othertype) : "string");
  lua_pushfstring(e->L, "%I", (LUAI_UACINT)k->maxk);
  return jfail(e, "expected array, got table with key %s", lua_tostring(e->L, -1));
}

typedef struct keyref { const char *s; size_t n; } keyref;

static int keycmp(const void *a, const void *b) {
  const keyref *x = a, *y = b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->s, y->s, n);
  return c != 0 ? c : (x->n > y->n) - (x->n < y->n);
}

/* An object with string keys, sorted for deterministic output. */
static int enc_sorted(jenc *e, int idx, lua_Integer nkeys) {
  lua_State *L = e->L;
  keyref *keys;
  lua_Integer i = 0;
  int ok = 1;
  if ((size_t)nkeys > ((size_t)-1) / sizeof(keyref))
    return jfail(e, "too many keys%s", "");
  keys = (keyref *)lua_newuserdatauv(L, (size_t)nkeys * sizeof(keyref), 0);
  lua_pushnil(L);
  while (lua_next(L, idx)) {   /* strings stay anchored by the table */
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)   /* the stack is reset on failure */
      return jfail(e, "unexpected key of type %s", luaL_typename(L, -1));
    if (i < nkeys) {
      keys[i].s = lua_tolstring(L, -1, &keys[i].n);
      i++;
    }
  }
  qsort(keys, (size_t)i, sizeof(keyref), keycmp);
  jaddc(e, '{');
  for (lua_Integer k = 0; k < i && ok; k++) {
    if (k > 0)
      jaddc(e, ',');
    if (!enc_string(e, keys[k].s, keys[k].n))
      ok = 0;
    else {
      jaddc(e, ':');
      lua_pushlstring(L, keys[k].s, keys[k].n);
      lua_rawget(L, idx);
      azb_path_key(e->v, keys[k].s);
      ok = enc_value(e, lua_gettop(L));
      azb_path_pop(e->v);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);   /* keys */
  if (ok)
    jaddc(e, '}');
  return ok;
}

/* A free-form object (MAP fields and plain tables with string keys). */
static int enc_generic_object(jenc *e, int idx, const keyinfo *k) {
  if (k->nint > 0 || k->nother > 0)
    return jfail(e, "expected string keys, got key of type %s",
                 k->nother > 0 ? lua_typename(e->L, k->othertype) : "number");
  return enc_sorted(e, idx, k->nstr);
}

static int metatable_is(lua_State *L, int idx, int slot) {
  int r;
  if (!lua_getmetatable(L, idx))
    return 0;
  r = lua_rawequal(L, -1, slot);
  lua_pop(L, 1);
  return r;
}

static int enc_table(jenc *e, int idx) {
  keyinfo k;
  const azb_kind *kind = azb_schema_of(e->L, idx);
  int ok;
  if (kind != NULL)
    return enc_object(e, kind->object, idx);
  if (metatable_is(e->L, idx, e->base + S_IMAGEMT))
    return enc_object(e, &azb_BatchVmImageReference, idx);
  if (!enter(e, idx))
    return 0;
  scan_keys(e, idx, &k);
  if (metatable_is(e->L, idx, e->base + S_ARRAYMT) ||
      (k.nint > 0 && k.nstr == 0 && k.nother == 0))
    ok = is_sequence(e, &k) && enc_seq(e, idx, k.nint, NULL);
  else if (k.nstr + k.nint + k.nother == 0) {
    jadds(e, "{}");
    ok = 1;
  }
  else if (k.nstr > 0 && k.nint > 0 && k.nother == 0)
    ok = jfail(e, "cannot encode a table with both array and object keys%s", "");
  else
    ok = enc_generic_object(e, idx, &k);
  if (ok)
    leave(e, idx);
  return ok;
}

static int enc_value(jenc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      jadds(e, "null");
      return 1;
    case LUA_TBOOLEAN:
      jadds(e, lua_toboolean(L, idx) ? "true" : "false");
      return 1;
    case LUA_TNUMBER:
      return enc_number(e, idx);
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      return enc_string(e, s, len);
    }
    case LUA_TTABLE:
      return enc_table(e, idx);
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) {   /* cjson.null */
        jadds(e, "null");
        return 1;
      }
      /* FALLTHROUGH */
    default:
      return jfail(e, "cannot encode a %s", luaL_typename(L, idx));
  }
}

/* A field by its descriptor ('elem': an element of an ARRAY or MAP). */
static int enc_field(jenc *e, const azb_field *f, int elem, int idx) {
  lua_State *L = e->L;
  azb_type t = elem ? f->elem : f->type;
  int lt = lua_type(L, idx);
  switch (t) {
    case AZB_T_STRING: case AZB_T_ENUM: case AZB_T_DURATION: {
      size_t len;
      const char *s;
      if (lt != LUA_TSTRING)
        return jtype(e, "string", idx);
      s = lua_tolstring(L, idx, &len);
      return enc_string(e, s, len);
    }
    case AZB_T_INT:
      if (lt != LUA_TNUMBER || (!lua_isinteger(L, idx) &&
          (lua_tonumber(L, idx) != floor(lua_tonumber(L, idx)) ||
           fabs(lua_tonumber(L, idx)) > MAX_SAFE_INT)))
        return jtype(e, "integer", idx);
      return enc_number(e, idx);
    case AZB_T_BOOL:
      if (lt != LUA_TBOOLEAN)
        return jtype(e, "boolean", idx);
      jadds(e, lua_toboolean(L, idx) ? "true" : "false");
      return 1;
    case AZB_T_OBJECT: case AZB_T_CUSTOM:
      if (lt != LUA_TTABLE)
        return jtype(e, "table", idx);
      return enc_object(e, f->object, idx);
    case AZB_T_ARRAY: {
      keyinfo k;
      int ok;
      if (lt != LUA_TTABLE)
        return jtype(e, "array", idx);
      if (!enter(e, idx))
        return 0;
      scan_keys(e, idx, &k);
      ok = is_sequence(e, &k) && enc_seq(e, idx, k.nint, f);
      if (ok)
        leave(e, idx);
      return ok;
    }
    case AZB_T_MAP: {
      keyinfo k;
      int ok;
      if (lt != LUA_TTABLE)
        return jtype(e, "table", idx);
      if (!enter(e, idx))
        return 0;
      scan_keys(e, idx, &k);
      ok = enc_generic_object(e, idx, &k);
      if (ok)
        leave(e, idx);
      return ok;
    }
  }
  return 0;
}

static int enc_seq(jenc *e, int idx, lua_Integer n, const azb_field *f) {
  lua_State *L = e->L;
  jaddc(e, '[');
  for (lua_Integer i = 1; i <= n; i++) {
    int ok;
    if (i > 1)
      jaddc(e, ',');
    lua_rawgeti(L, idx, i);
    azb_path_index(e->v, i);
    ok = f != NULL ? enc_field(e, f, 1, lua_gettop(L)) : enc_value(e, lua_gettop(L));
    azb_path_pop(e->v);
    lua_pop(L, 1);
    if (!ok)
      return 0;
  }
  jaddc(e, ']');
  return 1;
}

static int enc_object(jenc *e, const azb_object *o, int idx) {
  lua_State *L = e->L;
  int first = 1;
  if (!enter(e, idx))
    return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {   /* nothing may be dropped silently */
    size_t len;
    const char *key;
    size_t i;
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)   /* the stack is reset on failure */
      return jfail(e, "unexpected key of type %s", luaL_typename(L, -1));
    key = lua_tolstring(L, -1, &len);
    for (i = 0; i < o->nfields; i++)
      if (strlen(o->fields[i].name) == len && memcmp(o->fields[i].name, key, len) == 0)
        break;
    if (i == o->nfields)
      return jfail(e, "unknown field '%s'", azb_sch_pushshort(L, key, len));
  }
  jaddc(e, '{');
  for (size_t i = 0; i < o->nfields; i++) {
    const azb_field *f = &o->fields[i];
    int ok;
    lua_pushstring(L, f->name);
    if (lua_rawget(L, idx) == LUA_TNIL || azb_sch_isnull(L, -1)) {
      lua_pop(L, 1);
      continue;
    }
    if (!first)
      jaddc(e, ',');
    first = 0;
    jaddc(e, '"');
    jadds(e, f->name);
    jadds(e, "\":");
    azb_path_key(e->v, f->name);
    ok = enc_field(e, f, 0, lua_gettop(L));
    azb_path_pop(e->v);
    lua_pop(L, 1);
    if (!ok)
      return 0;
  }
  jaddc(e, '}');
  leave(e, idx);
  return 1;
}

int azb_json_encode_value(lua_State *L, int idx, const azb_kind *kind) {
  azb_vctx v;
  jenc e;
  int ok;
  idx = lua_absindex(L, idx);
  if (kind == NULL && lua_type(L, idx) == LUA_TTABLE)
    kind = azb_schema_of(L, idx);
  azb_vctx_init(&v, L, kind != NULL ? kind->root : "value");
  e.L = L;
  e.v = &v;
  e.base = lua_gettop(L);
  e.depth = 0;
  lua_newtable(L);                                   /* S_VISITING */
  luaL_getmetatable(L, AZB_ARRAY);                   /* S_ARRAYMT */
  luaL_getmetatable(L, AZB_IMAGEREF);                /* S_IMAGEMT */
  e.b = (jbuf *)lua_newuserdatauv(L, sizeof(jbuf), 0);   /* S_BUF */
  memset(e.b, 0, sizeof *e.b);
  luaL_setmetatable(L, AZB_JSONBUF);
  if (kind != NULL)
    ok = lua_type(L, idx) == LUA_TTABLE ? enc_object(&e, kind->object, idx)
                                        : jtype(&e, "table", idx);
  else
    ok = enc_value(&e, idx);
  if (ok) {
    lua_pushlstring(L, e.b->p != NULL ? e.b->p : "", e.b->n);
    jbuf_free(L, e.b);   /* now, not at the next collection */
    return 1;
  }
  jbuf_free(L, e.b);
  lua_settop(L, e.base);   /* errors and warnings stay */
  return azb_vctx_fail(&v);
}

/* }====================================================== */


/*
** {======================================================
** Lua functions
** =======================================================
*/

/* core.json_encode(v [, kind]) -> string | fail */
static int json_encode(lua_State *L) {
  const azb_kind *kind = NULL;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    const char *name = luaL_checkstring(L, 2);
    kind = azb_schema_kind(name);
    if (kind == NULL)
      return luaL_argerror(L, 2, lua_pushfstring(L, "unknown kind '%s'", name));
  }
  lua_settop(L, 1);
  return azb_json_encode_value(L, 1, kind);
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

/* Integral floats within 2^53 become integers; each table once. */
static int normalize(lua_State *L, int idx, int seen, int depth) {
  if (depth > NORMALIZE_DEPTH)
    return 0;
  luaL_checkstack(L, 6, "json_normalize");
  lua_pushvalue(L, idx);
  if (lua_rawget(L, seen) != LUA_TNIL) {
    lua_pop(L, 1);
    return 1;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      lua_Number d = lua_tonumber(L, -1);
      if (d == floor(d) && fabs(d) <= MAX_SAFE_INT) {
        lua_pushvalue(L, -2);
        lua_pushinteger(L, (lua_Integer)d);
        lua_rawset(L, idx);   /* assigning an existing key is fine in lua_next */
      }
    }
    else if (lua_type(L, -1) == LUA_TTABLE &&
             !normalize(L, lua_gettop(L), seen, depth + 1)) {
      lua_pop(L, 2);
      return 0;
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* core.json_normalize(t) -> t (in place) | fail */
static int json_normalize(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_newtable(L);
  if (!normalize(L, 1, 2, 1))
    return azb_fail(L, "validation", "value", "value: nested too deeply "
                    "(more than %d levels)", NORMALIZE_DEPTH);
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg json_funcs[] = {
  {"json_encode", json_encode},
  {"json_normalize", json_normalize},
  {"array", json_array},
  {NULL, NULL}
};

void azb_json_open(lua_State *L) {
  luaL_newmetatable(L, AZB_ARRAY);
  lua_pop(L, 1);
  luaL_newmetatable(L, AZB_JSONBUF);
  lua_pushcfunction(L, jbuf_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_setfuncs(L, json_funcs, 0);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
}

/* }====================================================== */
