/*
** azb_wire.c: what crosses the wire besides the body. Request headers
** from a Lua table, checked once into the list that is signed and sent;
** response headers into a Lua table, cleaned; transport failures into
** fail values that say whether the request may have reached the server.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "azb.h"

#define HEADER_VALUE_MAX 8192   /* a response header value kept for Lua */


/*
** {======================================================
** Request headers
** =======================================================
*/

#define Z16 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
static const unsigned char token[128] = {   /* RFC 9110 tchar */
  Z16, Z16,
  0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0,   /* 0x20 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,   /* 0x30 */
  0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 0x40 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,   /* 0x50 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 0x60 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,   /* 0x70 */
};
#undef Z16

static int tchar(int c) { return c < 128 && token[c]; }

static int blank(int c) { return c == ' ' || c == '\t'; }

static int lowerc(int c) {
  return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

int azb_header_cmp(const azb_header *a, const azb_header *b) {
  size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
  for (size_t i = 0; i < n; i++) {
    int c = lowerc((unsigned char)a->name[i]) - lowerc((unsigned char)b->name[i]);
    if (c != 0)
      return c;
  }
  return a->nlen < b->nlen ? -1 : a->nlen > b->nlen;
}

static int header_qcmp(const void *x, const void *y) {
  return azb_header_cmp((const azb_header *)x, (const azb_header *)y);
}

int azb_header_is(const azb_header *h, const char *name) {
  return strlen(name) == h->nlen && azb_strnieq(h->name, name, h->nlen);
}

/*
** Fill h from name/value; returns NULL or why it is malformed. Values
** are never quoted in messages: they may hold an Authorization header.
*/
static const char *header_set(azb_header *h, const char *name, size_t nlen,
                              const char *value, size_t vlen) {
  if (nlen == 0)
    return "empty header name";
  for (size_t i = 0; i < nlen; i++)
    if (!tchar((unsigned char)name[i]))
      return "invalid character in a header name";
  while (vlen > 0 && blank((unsigned char)value[0])) {
    value++;
    vlen--;
  }
  while (vlen > 0 && blank((unsigned char)value[vlen - 1]))
    vlen--;
  for (size_t i = 0; i < vlen; i++)
    if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
      return "CR, LF or NUL in a header value";
  h->name = name;
  h->nlen = nlen;
  h->value = value;
  h->vlen = vlen;
  return NULL;
}

int azb_headers_collect(lua_State *L, int idx, int extra, azb_header **out) {
  int n = 0, i = 0;
  azb_header *hs;
  idx = lua_absindex(L, idx);
  if (!lua_isnoneornil(L, idx) && lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "headers: table expected, got %s", luaL_typename(L, idx));
  if (!lua_isnoneornil(L, idx)) {
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      n++;
      lua_pop(L, 1);
    }
  }
  hs = (azb_header *)lua_newuserdatauv(L, sizeof(azb_header) *
                                       (size_t)(n + extra + 1), 0);
  if (n == 0) {
    *out = hs;
    return 0;
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {   /* strings stay anchored in the table */
    size_t nl, vl;
    const char *name, *value, *why;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "headers: names are strings, got a %s key",
                 luaL_typename(L, -2));
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "headers: the value of '%s' must be a string, got %s",
                 lua_tostring(L, -2), luaL_typename(L, -1));
    name = lua_tolstring(L, -2, &nl);
    value = lua_tolstring(L, -1, &vl);
    why = header_set(&hs[i], name, nl, value, vl);
    if (why != NULL) {
      lua_pushfstring(L, "headers: %s", why);
      return -1;
    }
    i++;
    lua_pop(L, 1);
  }
  qsort(hs, (size_t)n, sizeof *hs, header_qcmp);
  for (i = 1; i < n; i++)
    if (azb_header_cmp(&hs[i - 1], &hs[i]) == 0) {
      lua_pushliteral(L, "headers: ");
      lua_pushlstring(L, hs[i].name, hs[i].nlen);
      lua_pushliteral(L, " is given twice (names ignore case)");
      lua_concat(L, 3);
      return -1;
    }
  *out = hs;
  return n;
}

/* }====================================================== */


/*
** {======================================================
** Response headers
** =======================================================
*/

/* Push v[0..n) cleaned (control bytes dropped, length capped). */
static void push_clean(lua_State *L, const char *v, size_t n) {
  luaL_Buffer b;
  size_t cap = n < HEADER_VALUE_MAX ? n : HEADER_VALUE_MAX, i = 0;
  char *out;
  while (i < cap && v[i] >= 0x20 && v[i] < 0x7F)
    i++;
  if (i == n) {               /* the usual case: printable ASCII, short */
    lua_pushlstring(L, v, n);
    return;
  }
  out = luaL_buffinitsize(L, &b, cap);
  luaL_pushresultsize(&b, azb_text_clean(v, n, out, HEADER_VALUE_MAX));
}

/* Lower-cased names -> values; repeats joined with ", ". */
void azb_push_headers(lua_State *L, const char *p, size_t n) {
  const char *e = p + n;
  int t, last;
  lua_createtable(L, 0, 16);      /* a Batch answer has about a dozen */
  t = lua_gettop(L);
  lua_pushnil(L);                 /* slot: the last name seen */
  last = lua_gettop(L);
  while (p < e) {
    const char *eol = memchr(p, '\n', (size_t)(e - p));
    const char *le, *v, *ve;
    if (eol == NULL)
      eol = e;
    le = (eol > p && eol[-1] == '\r') ? eol - 1 : eol;
    if (le > p && blank(*p) && !lua_isnil(L, last)) {
      v = p;                      /* obsolete line folding */
      ve = le;
      while (v < ve && blank(*v)) v++;
      while (ve > v && blank(ve[-1])) ve--;
      lua_pushvalue(L, last);
      lua_pushvalue(L, last);
      lua_rawget(L, t);
      lua_pushliteral(L, " ");
      push_clean(L, v, (size_t)(ve - v));
      lua_concat(L, 3);
      lua_rawset(L, t);
    }
    else if (le > p && !(le - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
      const char *colon = memchr(p, ':', (size_t)(le - p));
      int ok = colon != NULL && colon > p;
      for (const char *c = p; ok && c < colon; c++)
        ok = tchar((unsigned char)*c);
      if (ok) {
        char name[128];
        size_t nl = (size_t)(colon - p);
        if (nl <= sizeof name) {      /* the usual case: on the C stack */
          for (size_t i = 0; i < nl; i++)
            name[i] = (char)lowerc((unsigned char)p[i]);
          lua_pushlstring(L, name, nl);
        }
        else {
          luaL_Buffer b;
          luaL_buffinit(L, &b);
          for (const char *c = p; c < colon; c++)
            luaL_addchar(&b, (char)lowerc((unsigned char)*c));
          luaL_pushresult(&b);
        }
        lua_replace(L, last);
        v = colon + 1;
        ve = le;
        while (v < ve && blank(*v)) v++;
        while (ve > v && blank(ve[-1])) ve--;
        lua_pushvalue(L, last);
        lua_pushvalue(L, last);
        if (lua_rawget(L, t) == LUA_TSTRING) {
          lua_pushliteral(L, ", ");
          push_clean(L, v, (size_t)(ve - v));
          lua_concat(L, 3);
        }
        else {
          lua_pop(L, 1);
          push_clean(L, v, (size_t)(ve - v));
        }
        lua_rawset(L, t);
      }
    }
    p = eol + 1;
  }
  lua_settop(L, t);
}

/* }====================================================== */


/*
** {======================================================
** Transport failures
** =======================================================
*/

static int retryable(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
      return 1;
    default:
      return 0;
  }
}

int azb_curl_fail(lua_State *L, const char *where, int code,
                  const char *errbuf, long os_errno, int sent) {
  char msg[CURL_ERROR_SIZE + 80], os[64], clean[CURL_ERROR_SIZE + 80];
  size_t n;
  snprintf(msg, sizeof msg, "%s", (errbuf != NULL && errbuf[0] != '\0')
           ? errbuf : curl_easy_strerror((CURLcode)code));
  n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
    msg[--n] = '\0';   /* errbuf may end in a newline */
  /* "Couldn't connect to server" says less than "Connection refused" */
  if (os_errno != 0 && strerror_r((int)os_errno, os, sizeof os) == 0 &&
      strstr(msg, os) == NULL)
    snprintf(msg + n, sizeof msg - n, " (%s)", os);
  /* errbuf can quote what a server sent (a bad status line) */
  n = azb_text_clean(msg, strlen(msg), clean, sizeof clean - 1);
  clean[n] = '\0';
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", where, clean);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, code == CURLE_OPERATION_TIMEDOUT ? "timeout" : "transport");
  lua_setfield(L, -2, "kind");
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "curl_code");
  lua_pushboolean(L, retryable((CURLcode)code));
  lua_setfield(L, -2, "retryable");
  /* whether any byte of the request left: if none did, the service
  ** cannot have acted on it, whatever the operation */
  lua_pushboolean(L, sent);
  lua_setfield(L, -2, "sent");
  return 3;
}

/* }====================================================== */
