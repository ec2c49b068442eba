/*
** azb_json.c: JSON text in and out, in C (see the README for what
** lua-cjson 2.1.0 cannot do that made this necessary). The encoder writes
** a body by the descriptor its caller passes, or any value generically;
** the decoder is strict RFC 8259 and keeps arrays apart from objects
** (AZB_ARRAY) and integers apart from floats. Registers core.json_decode,
** core.array and core.null (core.json_encode is the walker's: a body is
** validated where it is encoded).
** Uses azb_aux.c and azb_text.c only; it never calls the walker, which
** calls it (and may pass a shaper back for tables it knows).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azb.h"

#define MAX_SAFE_INT     9007199254740992.0   /* 2^53 */
#define STR_(x)          #x
#define STR(x)           STR_(x)
#define DECODE_DEPTH_MAX 1000                 /* the most opts.depth may ask */

static int isnull(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}


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
    return jfail(e, "nested too deeply (more than %s levels)", STR(AZB_JSON_DEPTH));
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
    if (t == LUA_TNIL || isnull(L, -1)) {
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


/*
** {======================================================
** Decoder: RFC 8259, onto the Lua stack. Errors unwind by return value;
** the caller resets the stack. Strings, tables and numbers are Lua's
** own objects, so an out-of-memory error leaks nothing.
** =======================================================
*/

typedef struct jdec {
  lua_State *L;
  const unsigned char *s, *p, *end;
  int depth, maxdepth;
  int arraymt;                 /* stack index of AZB_ARRAY's metatable */
  const char *why;             /* first problem, NULL while none */
  const unsigned char *at;     /* where */
  int showchar;                /* why is "unexpected character": quote it */
} jdec;

static int derr(jdec *d, const unsigned char *at, const char *why) {
  d->why = why;
  d->at = at;
  d->showchar = 0;
  return 0;
}

/* "unexpected character 'x'", or "unexpected end of input" at the end */
static int dunexpected(jdec *d, const unsigned char *at) {
  if (at >= d->end)
    return derr(d, d->end, "unexpected end of input");
  derr(d, at, "unexpected character");
  d->showchar = 1;
  return 0;
}

static void skip_ws(jdec *d) {
  const unsigned char *p = d->p;
  while (p < d->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  d->p = p;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Four hex digits at p (p + 4 <= end checked by the caller), or -1. */
static long hex4(const unsigned char *p) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(p[i]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

static size_t put_utf8(char *out, unsigned long cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* The escapes of s[0..n), already scanned; decoded text is never longer. */
static int unescape(jdec *d, const unsigned char *s, size_t n) {
  luaL_Buffer b;
  char *out = luaL_buffinitsize(d->L, &b, n);
  const unsigned char *p = s, *end = s + n;
  size_t o = 0;
  while (p < end) {
    unsigned long cp;
    if (*p != '\\') {
      out[o++] = (char)*p++;
      continue;
    }
    switch (p[1]) {   /* the scan checked the byte after each '\' */
      case 'b': out[o++] = '\b'; p += 2; continue;
      case 'f': out[o++] = '\f'; p += 2; continue;
      case 'n': out[o++] = '\n'; p += 2; continue;
      case 'r': out[o++] = '\r'; p += 2; continue;
      case 't': out[o++] = '\t'; p += 2; continue;
      case 'u': break;
      default: out[o++] = (char)p[1]; p += 2; continue;   /* " \ / */
    }
    {
      long h = end - p >= 6 ? hex4(p + 2) : -1;
      if (h < 0)
        return derr(d, p, "invalid \\u escape");
      cp = (unsigned long)h;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {   /* a pair, or nothing */
      long lo = end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
      if (lo < 0xDC00 || lo > 0xDFFF)
        return derr(d, p, "lone surrogate in \\u escape");
      cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
      p += 6;
    }
    else if (cp >= 0xDC00 && cp <= 0xDFFF)
      return derr(d, p, "lone surrogate in \\u escape");
    o += put_utf8(out + o, cp);
    p += 6;
  }
  luaL_pushresultsize(&b, o);
  return 1;
}

/* The string at d->p (its '"'); pushes it. */
static int dec_string(jdec *d) {
  const unsigned char *start = ++d->p, *p = start, *end = d->end;
  int escapes = 0;
  for (;;) {
    unsigned c;
    if (p >= end)
      return derr(d, end, "unterminated string");
    c = *p;
    if (c == '"')
      break;
    if (c == '\\') {
      escapes = 1;
      if (end - p < 2)
        return derr(d, end, "unterminated string");
      if (p[1] == '\0' || strchr("\"\\/bfnrtu", p[1]) == NULL)
        return derr(d, p, "invalid escape");
      p += 2;
    }
    else if (c < 0x20)
      return derr(d, p, "control character in string");
    else if (c < 0x80)
      p++;
    else {
      size_t n = azb_utf8_seq(p, (size_t)(end - p));
      if (n == 0)
        return derr(d, p, "invalid UTF-8");
      p += n;
    }
  }
  d->p = p + 1;
  if (!escapes) {
    lua_pushlstring(d->L, (const char *)start, (size_t)(p - start));
    return 1;
  }
  return unescape(d, start, (size_t)(p - start));
}

/* A float from the number text s[0..n); pushes it. */
static int push_float(jdec *d, const unsigned char *s, size_t n) {
  lua_State *L = d->L;
  char buf[128];
  size_t ok;
  lua_Number x;
  if (n < sizeof buf) {   /* lua_stringtonumber copes with the locale */
    memcpy(buf, s, n);
    buf[n] = '\0';
    ok = lua_stringtonumber(L, buf);
  }
  else {
    lua_pushlstring(L, (const char *)s, n);
    ok = lua_stringtonumber(L, lua_tostring(L, -1));
    if (ok)
      lua_remove(L, -2);
    else
      lua_pop(L, 1);
  }
  if (!ok)   /* cannot happen for text the grammar accepted */
    return derr(d, s, "invalid number");
  x = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (isinf(x))
    return derr(d, s, "number out of range");
  lua_pushnumber(L, x);   /* a float, even if Lua read an integer */
  return 1;
}

static const unsigned char *digits(const unsigned char *p, const unsigned char *end) {
  while (p < end && *p >= '0' && *p <= '9')
    p++;
  return p;
}

/*
** Integral values come back as integers: any integer literal within
** int64, and fractions or exponents that are exactly an integer up to
** 2^53 (beyond that the encoder writes floats as "1e+17", which must
** read back as the float it was). Everything else is a float.
*/
static int dec_number(jdec *d) {
  const unsigned char *s = d->p, *p = s, *end = d->end;
  const unsigned char *ib, *ie, *fb = NULL, *fe = NULL;
  int neg = 0, expneg = 0;
  long exp = 0;
  if (*p == '-') {
    neg = 1;
    p++;
  }
  ib = p;
  if (p < end && *p == '0')
    p++;
  else if (p < end && *p >= '1' && *p <= '9')
    p = digits(p, end);
  else
    return dunexpected(d, p);
  ie = p;
  if (p < end && *p == '.') {
    fb = ++p;
    p = digits(p, end);
    if (p == fb)
      return dunexpected(d, p);
    fe = p;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    const unsigned char *eb;
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      expneg = *p++ == '-';
    eb = p;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
      if (exp < 100000)   /* far past any double: clamp */
        exp = exp * 10 + (*p - '0');
    if (p == eb)
      return dunexpected(d, p);
    if (expneg)
      exp = -exp;
  }
  d->p = p;
  if (fb == NULL && p == ie) {   /* an integer literal */
    unsigned long long u = 0, lim = neg ? 9223372036854775808ULL : 9223372036854775807ULL;
    const unsigned char *q;
    for (q = ib; q < ie; q++) {
      unsigned dg = (unsigned)(*q - '0');
      if (u > (lim - dg) / 10)
        break;
      u = u * 10 + dg;
    }
    if (q == ie) {
      if (!neg)
        lua_pushinteger(d->L, (lua_Integer)u);
      else if (u == lim)
        lua_pushinteger(d->L, LUA_MININTEGER);
      else
        lua_pushinteger(d->L, -(lua_Integer)u);
      return 1;
    }
    return push_float(d, s, (size_t)(p - s));
  }
  {
    /* value = digits(int part . fraction) x 10^(exp - fraction length) */
    const unsigned char *q, *first = NULL, *last = NULL;
    long e10 = exp - (fb != NULL ? (long)(fe - fb) : 0);
    unsigned long long m = 0;
    int nsig = 0;
    for (q = ib; q < (fe != NULL ? fe : ie); q++) {
      if (q == ie)
        continue;   /* the '.' */
      if (*q != '0') {
        if (first == NULL)
          first = q;
        last = q;
      }
    }
    if (first == NULL) {   /* zero, however written */
      lua_pushinteger(d->L, 0);
      return 1;
    }
    /* drop trailing zeros into the exponent */
    for (q = (fe != NULL ? fe : ie) - 1; q > last; q--)
      if (q != ie)
        e10++;
    for (q = first; q <= last && nsig <= 16; q++) {
      if (q == ie)
        continue;
      m = m * 10 + (unsigned)(*q - '0');
      nsig++;
    }
    if (nsig <= 16 && e10 >= 0 && e10 <= 15) {
      while (e10-- > 0 && m <= 9007199254740992ULL)
        m *= 10;
      if (m <= 9007199254740992ULL) {
        lua_pushinteger(d->L, neg ? -(lua_Integer)m : (lua_Integer)m);
        return 1;
      }
    }
    return push_float(d, s, (size_t)(p - s));
  }
}

static int dec_value(jdec *d);

static int open_container(jdec *d) {
  if (d->depth >= d->maxdepth) {
    lua_pushfstring(d->L, "nested too deeply (more than %d levels)", d->maxdepth);
    d->why = lua_tostring(d->L, -1);   /* anchored: the caller keeps the stack */
    d->at = d->p;
    d->showchar = 0;
    return 0;
  }
  if (!lua_checkstack(d->L, 6))
    return derr(d, d->p, "nested too deeply");
  d->depth++;
  d->p++;
  return 1;
}

/*
** Between the items of a container: 1 after a ',' (another item follows),
** 0 at 'close' (the container ends), -1 on anything else (d->why set).
** At the very start ('first') only the close is looked for: 1 otherwise.
*/
static int next_item(jdec *d, int close, int first) {
  skip_ws(d);
  if (d->p < d->end && *d->p == close) {
    d->p++;
    d->depth--;
    return 0;
  }
  if (first)
    return 1;
  if (d->p < d->end && *d->p == ',') {
    d->p++;
    return 1;
  }
  dunexpected(d, d->p);
  return -1;
}

static int dec_array(jdec *d) {
  lua_State *L = d->L;
  lua_Integer n = 0;
  if (!open_container(d))
    return 0;
  lua_newtable(L);
  lua_pushvalue(L, d->arraymt);
  lua_setmetatable(L, -2);
  if (next_item(d, ']', 1) == 0)
    return 1;
  do {
    if (!dec_value(d))
      return 0;
    lua_rawseti(L, -2, ++n);
  } while (next_item(d, ']', 0) > 0);
  return d->why == NULL;
}

/* Duplicate keys: the last one wins, as in most decoders. */
static int dec_object(jdec *d) {
  lua_State *L = d->L;
  if (!open_container(d))
    return 0;
  lua_newtable(L);
  if (next_item(d, '}', 1) == 0)
    return 1;
  do {
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"')
      return dunexpected(d, d->p);
    if (!dec_string(d))
      return 0;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':')
      return dunexpected(d, d->p);
    d->p++;
    if (!dec_value(d))
      return 0;
    lua_rawset(L, -3);
  } while (next_item(d, '}', 0) > 0);
  return d->why == NULL;
}

static int literal(jdec *d, const char *word, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0) {
    const unsigned char *p = d->p;   /* point at the first wrong byte */
    while (p < d->end && (size_t)(p - d->p) < n && *p == (unsigned char)word[p - d->p])
      p++;
    return dunexpected(d, p);
  }
  d->p += n;
  return 1;
}

static int dec_value(jdec *d) {
  skip_ws(d);
  if (d->p >= d->end)
    return dunexpected(d, d->p);
  switch (*d->p) {
    case '{': return dec_object(d);
    case '[': return dec_array(d);
    case '"': return dec_string(d);
    case 't':
      if (!literal(d, "true", 4)) return 0;
      lua_pushboolean(d->L, 1);
      return 1;
    case 'f':
      if (!literal(d, "false", 5)) return 0;
      lua_pushboolean(d->L, 0);
      return 1;
    case 'n':
      if (!literal(d, "null", 4)) return 0;
      lua_pushlightuserdata(d->L, NULL);
      return 1;
    default:
      if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9'))
        return dec_number(d);
      return dunexpected(d, d->p);
  }
}

/* core.json_decode(text [, {depth=}]) -> value | fail */
static int json_decode(lua_State *L) {
  static const char *const opt_keys[] = {"depth", NULL};
  size_t len;
  const char *text;
  jdec d;
  int base;
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_typeerror(L, 1, "string");
  text = lua_tolstring(L, 1, &len);
  memset(&d, 0, sizeof d);
  d.maxdepth = AZB_JSON_DEPTH;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    azb_check_options(L, 2, 2, "json_decode", opt_keys);
    if (lua_getfield(L, 2, "depth") != LUA_TNIL) {
      int isint = 0;
      lua_Integer n = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
      luaL_argcheck(L, isint && n >= 1 && n <= DECODE_DEPTH_MAX, 2,
                    "depth must be an integer in [1, " STR(DECODE_DEPTH_MAX) "]");
      d.maxdepth = (int)n;
    }
  }
  lua_settop(L, 1);
  luaL_getmetatable(L, AZB_ARRAY);
  base = lua_gettop(L);
  d.L = L;
  d.arraymt = base;
  d.s = d.p = (const unsigned char *)text;
  d.end = d.s + len;
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
    d.p += 3;   /* a UTF-8 byte order mark: RFC 8259 lets a parser skip it */
  if (dec_value(&d)) {
    skip_ws(&d);
    if (d.p == d.end)
      return 1;
    dunexpected(&d, d.p);
  }
  /* d.why may be a string on the stack: format before resetting it */
  if (d.showchar) {
    size_t n = azb_utf8_seq(d.at, (size_t)(d.end - d.at));
    azb_text_pushquoted(L, (const char *)d.at, n ? n : 1, '\'');
    lua_pushfstring(L, "json: %s %s at byte %I", d.why, lua_tostring(L, -1),
                    (LUAI_UACINT)(d.at - d.s + 1));
  }
  else
    lua_pushfstring(L, "json: %s at byte %I", d.why, (LUAI_UACINT)(d.at - d.s + 1));
  lua_replace(L, base);
  lua_settop(L, base);
  luaL_pushfail(L);
  lua_insert(L, -2);
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, "validation");
  lua_setfield(L, -2, "kind");
  lua_pushliteral(L, "json");
  lua_setfield(L, -2, "field");
  lua_pushinteger(L, (lua_Integer)(d.at - d.s + 1));
  lua_setfield(L, -2, "offset");
  return 3;
}

/* }====================================================== */


/*
** {======================================================
** Lua functions
** =======================================================
*/

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
  {"json_decode", json_decode},
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
