/*
** azb_jsondec.c: the JSON decoder, core.json_decode. Strict RFC 8259:
** arrays come back marked AZB_ARRAY (so [] and {} stay apart), integers
** as integers and other numbers as floats, strings checked as UTF-8,
** null as core.null; nesting is bounded. A problem is a fail naming
** the byte where it is.
*/
#include <limits.h>
#include <math.h>
#include <string.h>

#include "azb.h"

#define DECODE_DEPTH_MAX 1000                 /* the most opts.depth may ask */


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

/* Four hex digits at p (p + 4 <= end checked by the caller), or -1. */
static long hex4(const unsigned char *p) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = azb_hexval(p[i]);
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

/* Bytes a string's scan steps over at once: printable ASCII but '"', '\\' */
#define P8 1, 1, 1, 1, 1, 1, 1, 1
#define Z8 0, 0, 0, 0, 0, 0, 0, 0
static const unsigned char plain[256] = {
  Z8, Z8, Z8, Z8,                                       /* 0x00-0x1f */
  1, 1, 0, 1, 1, 1, 1, 1, P8,                           /* 0x20-0x2f: not '"' */
  P8, P8, P8, P8,                                       /* 0x30-0x4f */
  P8, 1, 1, 1, 1, 0, 1, 1, 1,                           /* 0x50-0x5f: not '\\' */
  P8, P8, P8, P8,                                       /* 0x60-0x7f */
  Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8
};
#undef P8
#undef Z8

/* The string at d->p (its '"'); pushes it. */
static int dec_string(jdec *d) {
  const unsigned char *start = ++d->p, *p = start, *end = d->end;
  int escapes = 0;
  for (;;) {
    unsigned c;
    while (p < end && plain[*p])
      p++;
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

/*
** Items wait on the stack (up to PENDING_MAX) until the container ends,
** so its table is made at its size once: growing it key by key rehashes
** it at every power of two. Past that it grows as usual.
*/
#define PENDING_MAX 64

/* The n items above base into a new table at base + 1 (the stack top). */
static void array_flush(jdec *d, int base, int n) {
  lua_State *L = d->L;
  lua_createtable(L, n, 0);
  lua_pushvalue(L, d->arraymt);
  lua_setmetatable(L, -2);
  lua_insert(L, base + 1);
  for (int i = n; i > 0; i--)   /* each pops the top: item i */
    lua_rawseti(L, base + 1, i);
}

static int dec_array(jdec *d) {
  lua_State *L = d->L;
  int base, n = 0, t = 0, r;
  if (!open_container(d))
    return 0;
  base = lua_gettop(L);
  r = next_item(d, ']', 1);
  while (r > 0) {
    if (t == 0 && !lua_checkstack(L, 4))
      return derr(d, d->p, "nested too deeply");
    if (!dec_value(d))
      return 0;
    if (n == INT_MAX)
      return derr(d, d->p, "array too long");
    n++;
    if (t != 0)
      lua_rawseti(L, t, n);
    else if (n == PENDING_MAX) {
      array_flush(d, base, n);
      t = base + 1;
    }
    r = next_item(d, ']', 0);
  }
  if (r < 0)
    return 0;
  if (t == 0)
    array_flush(d, base, n);
  return 1;
}

/* The n key/value pairs above base into a new table at base + 1, in
** order, so that of duplicate keys the last one wins, as in most decoders. */
static void object_flush(jdec *d, int base, int n) {
  lua_State *L = d->L;
  int t;
  lua_createtable(L, 0, n);
  if (n == 0)
    return;
  t = lua_gettop(L);
  for (int i = 0; i < n; i++) {
    lua_pushvalue(L, base + 1 + 2 * i);
    lua_pushvalue(L, base + 2 + 2 * i);
    lua_rawset(L, t);
  }
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
}

static int dec_object(jdec *d) {
  lua_State *L = d->L;
  int base, n = 0, t = 0, r;
  if (!open_container(d))
    return 0;
  base = lua_gettop(L);
  r = next_item(d, '}', 1);
  while (r > 0) {
    if (t == 0 && !lua_checkstack(L, 6))
      return derr(d, d->p, "nested too deeply");
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
    if (t != 0)
      lua_rawset(L, t);
    else if (++n == PENDING_MAX) {
      object_flush(d, base, n);
      t = base + 1;
    }
    r = next_item(d, '}', 0);
  }
  if (r < 0)
    return 0;
  if (t == 0)
    object_flush(d, base, n);
  return 1;
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
int azb_json_decode(lua_State *L) {
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
                    "depth must be an integer in [1, " AZB_STR(DECODE_DEPTH_MAX) "]");
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
