/*
** azb_jsonenc.c: the JSON encoder. It writes a body by the descriptor
** its caller passes (only the key order and nesting of a body the walker
** has just built are read), or any value generically: objects with
** sorted keys, AZB_ARRAY tables and sequences as arrays, integers as
** integers, strings checked as UTF-8. A caller's shaper has the say over
** tables with another metatable. Problems are recorded in the caller's
** validation context, at the path where they are.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azb.h"

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

void azb_json_encoder_open(lua_State *L) {
  luaL_newmetatable(L, AZB_JSONBUF);
  lua_pushcfunction(L, jbuf_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

/* }====================================================== */


/*
** {======================================================
** Encoder
** =======================================================
*/

typedef struct jenc {
  lua_State *L;
  azb_vctx *v;
  jbuf *b;
  azb_json_shaper shaper;
  int arraymt;                       /* stack index of AZB_ARRAY's metatable */
  int depth;
  const void *open[AZB_JSON_DEPTH];  /* tables being written: cycles */
} jenc;

static void jgrow(jenc *e, size_t n) {
  jbuf *b = e->b;
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

static void jadd(jenc *e, const char *s, size_t n) {
  if (e->b->cap - e->b->n < n)
    jgrow(e, n);
  memcpy(e->b->p + e->b->n, s, n);
  e->b->n += n;
}

static void jadds(jenc *e, const char *s) {
  jadd(e, s, strlen(s));
}

static void jaddc(jenc *e, char c) {
  if (e->b->cap == e->b->n)
    jgrow(e, 1);
  e->b->p[e->b->n++] = c;
}

static int enc_value(jenc *e, int idx);
static int enc_object(jenc *e, const azb_object *o, int idx);

/* Record the problem at the current path; the caller abandons the text. */
static int jfail(jenc *e, const char *what, const char *arg) {
  azb_verror(e->v, what, arg);
  return 0;
}

static int enter(jenc *e, int idx) {
  const void *p = lua_topointer(e->L, idx);
  if (e->depth >= AZB_JSON_DEPTH || !lua_checkstack(e->L, 8))
    return jfail(e, "nested too deeply (more than %s levels)", AZB_STR(AZB_JSON_DEPTH));
  for (int i = 0; i < e->depth; i++)
    if (e->open[i] == p)
      return jfail(e, "cannot encode a cyclic table%s", "");
  e->open[e->depth++] = p;
  return 1;
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
      char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      jadd(e, u, 6);
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

static int is_sequence(jenc *e, const keyinfo *k) {
  if (k->nstr == 0 && k->nother == 0 && k->maxk == k->nint)
    return 1;
  if (k->nother > 0 || k->nstr > 0)
    return jfail(e, "expected array, got table with key of type %s",
                 k->nother > 0 ? lua_typename(e->L, k->othertype) : "string");
  lua_pushfstring(e->L, "%I", (LUAI_UACINT)k->maxk);
  return jfail(e, "expected array, got table with key %s", lua_tostring(e->L, -1));
}

/* The sequence 1..n at idx, each element generically. */
static int enc_seq(jenc *e, int idx, lua_Integer n) {
  lua_State *L = e->L;
  jaddc(e, '[');
  for (lua_Integer i = 1; i <= n; i++) {
    int ok;
    if (i > 1)
      jaddc(e, ',');
    lua_rawgeti(L, idx, i);
    azb_path_index(e->v, i);
    ok = enc_value(e, lua_gettop(L));
    azb_path_pop(e->v);
    lua_pop(L, 1);
    if (!ok)
      return 0;
  }
  jaddc(e, ']');
  return 1;
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
    if (i < nkeys) {           /* string keys only: the caller counted */
      keys[i].s = lua_tolstring(L, -1, &keys[i].n);
      i++;
    }
  }
  qsort(keys, (size_t)i, sizeof(keyref), keycmp);
  jaddc(e, '{');
  for (lua_Integer k = 0; k < i && ok; k++) {
    if (k > 0)
      jaddc(e, ',');
    if (!azb_utf8_valid(keys[k].s, keys[k].n))
      ok = jfail(e, "a key is not valid UTF-8%s", "");
    else {
      enc_string(e, keys[k].s, keys[k].n);
      jaddc(e, ':');
      lua_pushlstring(L, keys[k].s, keys[k].n);
      lua_rawget(L, idx);
      azb_path_lkey(e->v, keys[k].s, keys[k].n);
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

/* A table by its keys: an array when marked or a sequence, else an
** object with string keys. */
static int enc_plain(jenc *e, int idx, int marked) {
  keyinfo k;
  int ok;
  if (!enter(e, idx))
    return 0;
  scan_keys(e, idx, &k);
  if (marked || (k.nint > 0 && k.nstr == 0 && k.nother == 0))
    ok = is_sequence(e, &k) && enc_seq(e, idx, k.nint);
  else if (k.nstr + k.nint + k.nother == 0) {
    jadd(e, "{}", 2);
    ok = 1;
  }
  else if (k.nint > 0 || k.nother > 0)
    ok = k.nstr > 0 && k.nother == 0
         ? jfail(e, "cannot encode a table with both array and object keys%s", "")
         : jfail(e, "expected string keys, got key of type %s",
                 k.nother > 0 ? lua_typename(e->L, k.othertype) : "number");
  else
    ok = enc_sorted(e, idx, k.nstr);
  e->depth--;
  return ok;
}

static int enc_table(jenc *e, int idx) {
  lua_State *L = e->L;
  int marked = 0;
  if (lua_getmetatable(L, idx)) {
    marked = lua_rawequal(L, -1, e->arraymt);
    lua_pop(L, 1);
    if (!marked && e->shaper != NULL) {
      const azb_object *o = NULL;
      int r = e->shaper(e->v, idx, &o), ok;
      if (r < 0)
        return 0;
      if (r > 0) {
        ok = o != NULL ? enc_object(e, o, lua_gettop(L))
                       : enc_plain(e, lua_gettop(L), 0);
        lua_pop(L, 1);
        return ok;
      }
    }
  }
  return enc_plain(e, idx, marked);
}

static int enc_value(jenc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      jadd(e, "null", 4);
      return 1;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx))
        jadd(e, "true", 4);
      else
        jadd(e, "false", 5);
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
      if (lua_touserdata(L, idx) == NULL) {   /* core.null */
        jadd(e, "null", 4);
        return 1;
      }
      /* FALLTHROUGH */
    default:
      return jfail(e, "cannot encode a %s", luaL_typename(L, idx));
  }
}

/* An array of objects of descriptor o (a walker's copy). */
static int enc_objects(jenc *e, const azb_object *o, int idx) {
  lua_State *L = e->L;
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  jaddc(e, '[');
  for (lua_Integer i = 1; i <= n; i++) {
    int ok;
    if (i > 1)
      jaddc(e, ',');
    azb_path_index(e->v, i);
    ok = lua_rawgeti(L, idx, i) == LUA_TTABLE ? enc_object(e, o, lua_gettop(L))
                                              : enc_value(e, lua_gettop(L));
    azb_path_pop(e->v);
    lua_pop(L, 1);
    if (!ok)
      return 0;
  }
  jaddc(e, ']');
  return 1;
}

/*
** A body the walker built, in the descriptor's key order. The walker
** checked every value, so only the shape is read here; values that are
** not objects are written generically.
*/
static int enc_object(jenc *e, const azb_object *o, int idx) {
  lua_State *L = e->L;
  int first = 1;
  luaL_checkstack(L, 4, "json");   /* descriptors nest a few levels only */
  jaddc(e, '{');
  for (size_t i = 0; i < o->nfields; i++) {
    const azb_field *f = &o->fields[i];
    int ok, t;
    lua_pushstring(L, f->name);
    t = lua_rawget(L, idx);
    if (t == LUA_TNIL || azb_isnull(L, -1)) {
      lua_pop(L, 1);
      continue;
    }
    if (!first)
      jaddc(e, ',');
    first = 0;
    jaddc(e, '"');
    jadds(e, f->name);
    jadd(e, "\":", 2);
    azb_path_key(e->v, f->name);
    if (t == LUA_TTABLE && (f->type == AZB_T_OBJECT || f->type == AZB_T_CUSTOM))
      ok = enc_object(e, f->object, lua_gettop(L));
    else if (t == LUA_TTABLE && f->type == AZB_T_ARRAY && f->elem == AZB_T_OBJECT)
      ok = enc_objects(e, f->object, lua_gettop(L));
    else
      ok = enc_value(e, lua_gettop(L));
    azb_path_pop(e->v);
    lua_pop(L, 1);
    if (!ok)
      return 0;
  }
  jaddc(e, '}');
  return 1;
}

int azb_json_encode(azb_vctx *v, int idx, const azb_object *o,
                    azb_json_shaper shaper) {
  lua_State *L = v->L;
  int base = lua_gettop(L), ok;
  jenc e;
  idx = lua_absindex(L, idx);
  e.L = L;
  e.v = v;
  e.shaper = shaper;
  e.depth = 0;
  luaL_checkstack(L, 8, "json");
  luaL_getmetatable(L, AZB_ARRAY);
  e.arraymt = lua_gettop(L);
  e.b = (jbuf *)lua_newuserdatauv(L, sizeof(jbuf), 0);
  memset(e.b, 0, sizeof *e.b);
  luaL_setmetatable(L, AZB_JSONBUF);
  if (o != NULL && lua_type(L, idx) == LUA_TTABLE)
    ok = enc_object(&e, o, idx);
  else
    ok = enc_value(&e, idx);
  if (ok)
    lua_pushlstring(L, e.b->p != NULL ? e.b->p : "", e.b->n);
  jbuf_free(L, e.b);   /* now, not at the next collection */
  if (ok) {
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
  }
  else
    lua_settop(L, base);
  return ok;
}

/* }====================================================== */
