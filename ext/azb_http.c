/*
** azb_http.c: the transport. One CURLM per azbatch.Http; each
** azbatch.Request owns an easy handle while in flight. libcurl callbacks
** only append into azb_buf; Lua values are built when Lua asks (poll,
** result), so no Lua API call ever runs inside libcurl.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "azb.h"

#define SPARE_EASY 8      /* idle easy handles kept for reuse */

typedef struct Http Http;
typedef struct Request Request;

enum { RQ_NEW, RQ_RUNNING, RQ_DONE };
enum { END_NONE, END_CANCELLED, END_CLOSED };

struct Request {
  Http *http;              /* set while linked into one of its lists */
  Request *prev, *next;
  CURL *easy;              /* while running */
  struct curl_slist *headers;
  azb_buf body, hdrs;
  int state, ended, keep_headers, listed;
  CURLcode code;
  long status, connects, os_errno;
  double total_time, connect_time;
  char primary_ip[64];
  char errbuf[CURL_ERROR_SIZE];
};

struct Http {
  CURLM *multi;            /* NULL once closed */
  Request *running;        /* in the multi handle */
  Request *finished;       /* done, not yet returned by poll */
  CURL *spare[SPARE_EASY];
  int nspare, verbose;
  double timeout, connect_timeout;
  lua_Integer requests, connections, inflight;
};

/* User values of an Http. */
#define UV_REQS   1   /* weak table: lightuserdata(Request*) -> Request */
#define UV_UA     2
#define UV_CAFILE 3
#define UV_CAPATH 4
/* User values of a Request. */
#define UV_HTTP   1   /* keeps the Http alive under it */
#define UV_BODY   2   /* the request body string libcurl reads */
#define UV_WHERE  3   /* "GET https://host/path" for messages */
#define UV_RESULT 4   /* cached results, once materialised */


/*
** {======================================================
** Lists and completion (pure C)
** =======================================================
*/

static void link_req(Request **head, Request *r) {
  r->prev = NULL;
  r->next = *head;
  if (*head != NULL)
    (*head)->prev = r;
  *head = r;
  r->listed = 1;
}

static void unlink_req(Request **head, Request *r) {
  if (!r->listed)
    return;
  if (r->prev != NULL)
    r->prev->next = r->next;
  else
    *head = r->next;
  if (r->next != NULL)
    r->next->prev = r->prev;
  r->prev = r->next = NULL;
  r->listed = 0;
}

/* Wipe header lines before freeing them: they may carry a token. */
static void free_headers(Request *r) {
  for (struct curl_slist *s = r->headers; s != NULL; s = s->next)
    OPENSSL_cleanse(s->data, strlen(s->data));
  curl_slist_free_all(r->headers);
  r->headers = NULL;
}

/* Give r's easy handle back: reset (drops pointers into r) and keep it. */
static void drop_easy(Http *h, Request *r) {
  if (r->easy == NULL)
    return;
  if (h != NULL && h->multi != NULL) {
    curl_multi_remove_handle(h->multi, r->easy);
    if (h->nspare < SPARE_EASY) {
      curl_easy_reset(r->easy);
      h->spare[h->nspare++] = r->easy;
      r->easy = NULL;
    }
  }
  if (r->easy != NULL)
    curl_easy_cleanup(r->easy);
  r->easy = NULL;
  free_headers(r);
}

/* A running request stops: finished by libcurl, cancelled or closed. */
static void stop_req(Http *h, Request *r, CURLcode code, int ended) {
  if (r->state != RQ_RUNNING)
    return;
  if (ended == END_NONE) {
    char *ip = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &r->total_time);
    curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME, &r->connect_time);
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &r->os_errno);
    if (curl_easy_getinfo(r->easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK &&
        ip != NULL)
      snprintf(r->primary_ip, sizeof r->primary_ip, "%s", ip);
    h->requests++;
    h->connections += r->connects;
  }
  unlink_req(&h->running, r);
  h->inflight--;
  drop_easy(h, r);
  r->code = code;
  r->ended = ended;
  r->state = RQ_DONE;
  if (ended == END_NONE)
    link_req(&h->finished, r);
  else
    r->http = NULL;
}

/* curl_multi_perform, then move every finished transfer to 'finished'. */
static CURLMcode drive(Http *h) {
  int still, left;
  CURLMsg *m;
  CURLMcode mc = curl_multi_perform(h->multi, &still);
  while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
    if (m->msg == CURLMSG_DONE) {
      Request *r = NULL;
      CURLcode code = m->data.result;   /* m dies with remove_handle */
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
      if (r != NULL)
        stop_req(h, r, code, END_NONE);
    }
  }
  return mc;
}

/* Detach a request from its Http, whatever its state (its __gc too). */
static void req_release(Request *r) {
  Http *h = r->http;
  if (h != NULL) {
    if (r->state == RQ_RUNNING)
      stop_req(h, r, CURLE_ABORTED_BY_CALLBACK, END_CANCELLED);
    else
      unlink_req(&h->finished, r);
  }
  r->http = NULL;
  drop_easy(NULL, r);
  azb_buf_free(&r->body);
  azb_buf_free(&r->hdrs);
}

static void http_release(Http *h) {
  if (h->multi == NULL)
    return;
  while (h->running != NULL)
    stop_req(h, h->running, CURLE_ABORTED_BY_CALLBACK, END_CLOSED);
  while (h->finished != NULL) {
    Request *r = h->finished;
    unlink_req(&h->finished, r);
    r->http = NULL;
  }
  while (h->nspare > 0)
    curl_easy_cleanup(h->spare[--h->nspare]);
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
}

/* }====================================================== */


/*
** {======================================================
** libcurl callbacks (no Lua in here)
** =======================================================
*/

static size_t on_header(char *d, size_t size, size_t nmemb, void *ud) {
  Request *r = (Request *)ud;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(d, "HTTP/", 5) == 0)
    azb_buf_reset(&r->hdrs);   /* a new response head (after a 1xx) */
  if (!r->keep_headers)
    return n;
  return azb_buf_add(&r->hdrs, d, n) == 0 ? n : 0;
}

/* verbose: connection events only (CURLINFO_TEXT), never headers or data */
static int on_debug(CURL *e, curl_infotype t, char *d, size_t n, void *ud) {
  (void)e; (void)ud;
  if (t == CURLINFO_TEXT)
    fprintf(stderr, "* azbatch: %.*s", (int)n, d);
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Http class
** =======================================================
*/

static Http *check_open_http(lua_State *L) {
  Http *h = (Http *)luaL_checkudata(L, 1, AZB_HTTP);
  if (h->multi == NULL)
    luaL_error(L, "attempt to use a closed " AZB_HTTP);
  return h;
}

/* Copy opts[k] (string or nil) to user value uv of the userdata at ud. */
static void opt_string_uv(lua_State *L, int t, const char *k, int ud, int uv) {
  int ty = lua_getfield(L, t, k);
  if (ty != LUA_TNIL && ty != LUA_TSTRING)
    luaL_error(L, "option '%s': string expected, got %s", k,
               luaL_typename(L, -1));
  lua_setiuservalue(L, ud, uv);
}

static const char *const http_opts[] = { "timeout", "connect_timeout",
  "ca_file", "ca_path", "user_agent", "max_connections", "verbose", NULL };

/* core.http([opts]) -> Http */
static int http_new(lua_State *L) {
  Http *h;
  lua_Integer maxc = 8;
  int ud;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  azb_check_keys(L, 1, "http", http_opts);
  h = (Http *)lua_newuserdatauv(L, sizeof *h, 4);
  ud = lua_gettop(L);
  memset(h, 0, sizeof *h);
  luaL_setmetatable(L, AZB_HTTP);
  h->timeout = azb_opt_number(L, 1, "timeout", 60, 0.001);
  h->connect_timeout = azb_opt_number(L, 1, "connect_timeout", 10, 0.001);
  opt_string_uv(L, 1, "ca_file", ud, UV_CAFILE);
  opt_string_uv(L, 1, "ca_path", ud, UV_CAPATH);
  if (lua_getfield(L, 1, "user_agent") == LUA_TNIL) {
    lua_pop(L, 1);
    azb_push_useragent(L);
  }
  else if (lua_type(L, -1) != LUA_TSTRING)
    return luaL_error(L, "option 'user_agent': string expected, got %s",
                      luaL_typename(L, -1));
  lua_setiuservalue(L, ud, UV_UA);
  if (lua_getfield(L, 1, "max_connections") != LUA_TNIL) {
    int isint;
    maxc = lua_tointegerx(L, -1, &isint);
    if (!isint || maxc < 1 || maxc > 1024)
      return luaL_error(L, "option 'max_connections': integer in [1, 1024] "
                        "expected");
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "verbose");
  h->verbose = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_createtable(L, 0, 0);              /* the weak request map */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setiuservalue(L, ud, UV_REQS);
  h->multi = curl_multi_init();          /* last: the handle is safe */
  if (h->multi == NULL)
    return luaL_error(L, "http: curl_multi_init failed");
  curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)maxc);
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)(maxc * 4 + 8));
  lua_settop(L, ud);
  return 1;
}

static int method_index(const char *m) {
  static const char *const methods[] =
    { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", NULL };
  for (int i = 0; methods[i] != NULL; i++)
    if (strcmp(m, methods[i]) == 0)
      return i;
  return -1;
}
enum { M_GET, M_HEAD, M_POST, M_PUT, M_PATCH, M_DELETE };

/* Parse a Content-Length value; -1 when it is not a plain integer. */
static long long parse_length(const char *s, size_t n) {
  long long v = 0;
  if (n == 0 || n > 18)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* Append "Name: value" (or "Name;" for an empty value) to r->headers. */
static int add_header(Request *r, azb_buf *tmp, const char *name, size_t nl,
                      const char *value, size_t vl) {
  struct curl_slist *s;
  azb_buf_reset(tmp);
  azb_buf_add(tmp, name, nl);
  if (vl == 0)
    azb_buf_addc(tmp, ';');   /* "Name:" would delete the header */
  else {
    azb_buf_add(tmp, ": ", 2);
    azb_buf_add(tmp, value, vl);
  }
  if (tmp->oom)
    return -1;
  s = curl_slist_append(r->headers, tmp->p);
  if (s == NULL)
    return -1;
  r->headers = s;
  return 0;
}

static const char *const start_opts[] = { "method", "url", "headers", "body",
  "timeout", "connect_timeout", "keep_headers", "fresh_connect", NULL };

/* Request fail helper: nil, "<where>: <msg>", {kind="validation", field=} */
#define VFAIL(field, ...) \
  return azb_fail(L, "validation", field, __VA_ARGS__)

/*
** Build and add a request; returns the Request on top, or a fail triple.
** Table at 2. Used by start and request.
*/
static int start_req(lua_State *L, Http *h) {
  const char *method, *url, *body = NULL;
  size_t bodylen = 0;
  int mi, nh, direct, fresh, has_ct = 0, has_cl = 0, has_expect = 0, has_accept = 0;
  long long cl = -1;
  azb_header *hs;
  azb_netopts no;
  Request *r;
  azb_buf tmp;
  CURLcode rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  azb_check_keys(L, 2, "http:start", start_opts);
  if (lua_getfield(L, 2, "method") != LUA_TSTRING)
    return luaL_error(L, "http:start: field 'method' must be a string");
  method = lua_tostring(L, -1);                              /* 3 */
  mi = method_index(method);
  if (mi < 0)
    return luaL_error(L, "http:start: unsupported method '%s'", method);
  if (lua_getfield(L, 2, "url") != LUA_TSTRING)              /* 4 */
    return luaL_error(L, "http:start: field 'url' must be a string");
  url = lua_tostring(L, -1);
  switch (lua_getfield(L, 2, "body")) {                       /* 5 */
    case LUA_TNIL: break;
    case LUA_TSTRING: body = lua_tolstring(L, -1, &bodylen); break;
    default: return luaL_error(L, "http:start: field 'body' must be a string");
  }
  if (body != NULL && (mi == M_GET || mi == M_HEAD))
    return luaL_error(L, "http:start: a %s request has no body", method);
  no.timeout = azb_opt_number(L, 2, "timeout", h->timeout, 0.001);
  no.connect_timeout = azb_opt_number(L, 2, "connect_timeout", h->connect_timeout,
                                     0.001);
  lua_getfield(L, 2, "headers");                              /* 6 */
  if (!azb_url_check(L, url, 0, &direct))                     /* 7 */
    VFAIL("url", "url: %s", lua_tostring(L, -1));
  nh = azb_headers_collect(L, 6, &hs);                        /* 8 */
  if (nh < 0)
    VFAIL("headers", "%s", lua_tostring(L, -1));
  for (int i = 0; i < nh; i++) {
    if (hs[i].nlen == 14 && azb_strnieq(hs[i].name, "Content-Length", 14)) {
      has_cl = 1;
      cl = parse_length(hs[i].value, hs[i].vlen);
    }
    has_ct |= hs[i].nlen == 12 && azb_strnieq(hs[i].name, "Content-Type", 12);
    has_expect |= hs[i].nlen == 6 && azb_strnieq(hs[i].name, "Expect", 6);
    has_accept |= hs[i].nlen == 6 && azb_strnieq(hs[i].name, "Accept", 6);
  }
  if (body == NULL && (mi == M_POST || mi == M_PUT || mi == M_PATCH))
    body = "";   /* these always say how long their body is */
  if (has_cl && (body == NULL ? cl != 0 : cl != (long long)bodylen))
    VFAIL("headers", "headers: Content-Length does not match the body "
          "(%I bytes)", (LUAI_UACINT)bodylen);
  /* the Request: empty, metatable set, then resources */
  r = (Request *)lua_newuserdatauv(L, sizeof *r, 4);         /* 9 */
  memset(r, 0, sizeof *r);
  azb_buf_init(&r->body);
  azb_buf_init(&r->hdrs);
  luaL_setmetatable(L, AZB_REQUEST);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 9, UV_HTTP);
  lua_pushvalue(L, 5);
  lua_setiuservalue(L, 9, UV_BODY);
  lua_pushfstring(L, "%s %s", method, lua_tostring(L, 7));
  lua_setiuservalue(L, 9, UV_WHERE);
  lua_getiuservalue(L, 1, UV_UA);                             /* 10 */
  lua_getiuservalue(L, 1, UV_CAFILE);                         /* 11 */
  lua_getiuservalue(L, 1, UV_CAPATH);                         /* 12 */
  no.user_agent = lua_tostring(L, 10);
  no.ca_file = lua_tostring(L, 11);
  no.ca_path = lua_tostring(L, 12);
  r->keep_headers = 1;
  if (lua_getfield(L, 2, "keep_headers") != LUA_TNIL)        /* 13 */
    r->keep_headers = lua_toboolean(L, -1);
  lua_getfield(L, 2, "fresh_connect");                        /* 14 */
  fresh = lua_toboolean(L, -1);
  /* header list: no Lua calls from here until it is complete */
  azb_buf_init(&tmp);
  {
    int bad = 0;
    char len[32];
    for (int i = 0; i < nh && !bad; i++)
      bad = add_header(r, &tmp, hs[i].name, hs[i].nlen, hs[i].value, hs[i].vlen);
    if (!bad && body != NULL && !has_cl) {
      snprintf(len, sizeof len, "%llu", (unsigned long long)bodylen);
      bad = add_header(r, &tmp, "Content-Length", 14, len, strlen(len));
    }
    azb_buf_wipe(&tmp);
    if (bad)
      return luaL_error(L, "http:start: not enough memory");
  }
  {
    /* headers libcurl would add by itself (Expect: 100-continue, a form
    ** Content-Type on POST, "Accept: any") are dropped unless given:
    ** "Name:" with no value tells libcurl not to send its own */
    const char *drop[3] = { "Expect:", "Content-Type:", "Accept:" };
    int want[3] = { !has_expect, !has_ct, !has_accept };
    for (int i = 0; i < 3; i++) {
      struct curl_slist *s;
      if (!want[i])
        continue;
      s = curl_slist_append(r->headers, drop[i]);
      if (s == NULL)
        return luaL_error(L, "http:start: not enough memory");
      r->headers = s;
    }
  }
  if (h->nspare > 0)
    r->easy = h->spare[--h->nspare];
  else if ((r->easy = curl_easy_init()) == NULL)
    return luaL_error(L, "http:start: curl_easy_init failed");
  rc = (CURLcode)azb_easy_setup(r->easy, &no, direct, r->errbuf);
#define SET(opt, v) if (rc == CURLE_OK) rc = curl_easy_setopt(r->easy, opt, v)
  SET(CURLOPT_URL, url);
  SET(CURLOPT_PRIVATE, (void *)r);
  SET(CURLOPT_HTTPHEADER, r->headers);
  SET(CURLOPT_WRITEFUNCTION, azb_buf_write);
  SET(CURLOPT_WRITEDATA, (void *)&r->body);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)r);
  /* A new connection is never one libcurl may find dead and silently
  ** re-send on: non-idempotent callers ask for it (pool create). */
  SET(CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
  if (h->verbose) {
    SET(CURLOPT_DEBUGFUNCTION, on_debug);
    SET(CURLOPT_VERBOSE, 1L);
  }
  switch (mi) {
    case M_GET: SET(CURLOPT_HTTPGET, 1L); break;
    case M_HEAD: SET(CURLOPT_NOBODY, 1L); break;
    default:
      if (mi != M_POST)
        SET(CURLOPT_CUSTOMREQUEST, method);
      if (body != NULL) {   /* the string is anchored in UV_BODY */
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodylen);
        SET(CURLOPT_POSTFIELDS, body);
      }
      break;
  }
#undef SET
  if (rc != CURLE_OK)
    return luaL_error(L, "http:start: %s", curl_easy_strerror(rc));
  if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
    return luaL_error(L, "http:start: curl_multi_add_handle failed");
  r->http = h;
  r->state = RQ_RUNNING;
  link_req(&h->running, r);
  h->inflight++;
  lua_getiuservalue(L, 1, UV_REQS);                          /* map[r] = req */
  lua_pushlightuserdata(L, r);
  lua_pushvalue(L, 9);
  lua_rawset(L, -3);
  lua_settop(L, 9);
  return 1;
}

/* Build the results once, cache them in UV_RESULT, free the buffers. */
static void materialise(lua_State *L, Request *r, int ri) {
  int c, n;
  lua_createtable(L, 4, 1);
  c = lua_gettop(L);
  lua_getiuservalue(L, ri, UV_WHERE);
  lua_pushfstring(L, "transport: %s", lua_tostring(L, -1));
  if (r->ended != END_NONE) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), r->ended == END_CLOSED
                    ? "the " AZB_HTTP " was closed" : "request cancelled");
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "transport");
    lua_setfield(L, -2, "kind");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "retryable");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "cancelled");
    n = 3;
  }
  else if (r->code != CURLE_OK) {
    const char *eb = r->errbuf;
    if (r->code == CURLE_WRITE_ERROR && (r->body.oom || r->hdrs.oom))
      eb = "out of memory reading the response";
    n = azb_curl_fail(L, lua_tostring(L, -1), r->code, eb, r->os_errno);
  }
  else {
    lua_pushinteger(L, r->status);
    azb_push_headers(L, r->hdrs.p ? r->hdrs.p : "", r->hdrs.n);
    lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.n);
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, r->total_time);
    lua_setfield(L, -2, "total_time");
    lua_pushnumber(L, r->connect_time);
    lua_setfield(L, -2, "connect_time");
    lua_pushinteger(L, r->connects);
    lua_setfield(L, -2, "new_connections");
    lua_pushstring(L, r->primary_ip);
    lua_setfield(L, -2, "primary_ip");
    n = 4;
  }
  for (int i = n; i >= 1; i--)
    lua_rawseti(L, c, i);
  lua_pushinteger(L, n);
  lua_setfield(L, c, "n");
  lua_settop(L, c);
  lua_setiuservalue(L, ri, UV_RESULT);
  azb_buf_free(&r->body);
  azb_buf_free(&r->hdrs);
}

static int push_result(lua_State *L, Request *r, int ri) {
  lua_Integer n;
  if (lua_getiuservalue(L, ri, UV_RESULT) != LUA_TTABLE) {
    lua_pop(L, 1);
    materialise(L, r, ri);
    lua_getiuservalue(L, ri, UV_RESULT);
  }
  lua_getfield(L, -1, "n");
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  for (lua_Integer i = 1; i <= n; i++)
    lua_rawgeti(L, -(int)i, i);
  return (int)n;
}

/* Forget r in the Http's request map (Http at index hi). */
static void unmap(lua_State *L, int hi, Request *r) {
  lua_getiuservalue(L, hi, UV_REQS);
  lua_pushlightuserdata(L, r);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* http:start(req) -> Request, or fail (kind "validation") */
static int http_start(lua_State *L) {
  return start_req(L, check_open_http(L));
}

/* http:poll([wait]) -> {Request...} finished since the last call */
static int http_poll(lua_State *L) {
  Http *h = check_open_http(L);
  double wait = luaL_optnumber(L, 2, 0);
  CURLMcode mc;
  Request *tail;
  int n = 0;
  luaL_argcheck(L, wait >= 0, 2, "wait must be >= 0");
  lua_settop(L, 1);
  mc = drive(h);
  /* with nothing in flight this still waits: Lua uses poll as its timer */
  if (mc == CURLM_OK && h->finished == NULL && wait > 0) {
    int ms = wait > INT_MAX / 1000 ? INT_MAX : (int)(wait * 1000 + 0.5);
    mc = curl_multi_poll(h->multi, NULL, 0, ms, NULL);
    if (mc == CURLM_OK)
      mc = drive(h);
  }
  if (mc != CURLM_OK)
    return luaL_error(L, "http:poll: %s", curl_multi_strerror(mc));
  lua_newtable(L);                       /* 2 */
  lua_getiuservalue(L, 1, UV_REQS);      /* 3 */
  tail = h->finished;                    /* newest first: start at the tail */
  while (tail != NULL && tail->next != NULL)
    tail = tail->next;
  while (tail != NULL) {
    Request *r = tail;
    tail = r->prev;
    lua_pushlightuserdata(L, r);
    if (lua_rawget(L, 3) == LUA_TUSERDATA)
      lua_rawseti(L, 2, ++n);
    else
      lua_pop(L, 1);   /* dropped by Lua; its __gc is pending */
    unlink_req(&h->finished, r);
    unmap(L, 1, r);
  }
  lua_settop(L, 2);
  return 1;
}

/* http:request(req) -> status, headers, body, info; or fail */
static int http_request(lua_State *L) {
  Http *h = check_open_http(L);
  Request *r;
  int ri;
  if (start_req(L, h) != 1)
    return 3;
  ri = lua_gettop(L);
  r = (Request *)lua_touserdata(L, ri);
  while (r->state == RQ_RUNNING) {
    CURLMcode mc = drive(h);
    if (mc == CURLM_OK && r->state == RQ_RUNNING)
      mc = curl_multi_poll(h->multi, NULL, 0, 1000, NULL);
    if (mc != CURLM_OK)
      return luaL_error(L, "http:request: %s", curl_multi_strerror(mc));
  }
  /* other requests' completions stay queued for the next poll */
  unlink_req(&h->finished, r);
  unmap(L, 1, r);
  return push_result(L, r, ri);
}

/* http:pending() -> number of requests in flight */
static int http_pending(lua_State *L) {
  lua_pushinteger(L, check_open_http(L)->inflight);
  return 1;
}

/* http:stats() -> {requests=, connections=, in_flight=} */
static int http_stats(lua_State *L) {
  Http *h = check_open_http(L);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, h->requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, h->connections);
  lua_setfield(L, -2, "connections");
  lua_pushinteger(L, h->inflight);
  lua_setfield(L, -2, "in_flight");
  return 1;
}

/* http:close() -> true; also __gc and __close (idempotent) */
static int http_close(lua_State *L) {
  http_release((Http *)luaL_checkudata(L, 1, AZB_HTTP));
  lua_pushboolean(L, 1);
  return 1;
}

/* tostring(http) -> "azbatch.Http (0x...)" or "azbatch.Http (closed)" */
static int http_tostring(lua_State *L) {
  Http *h = (Http *)luaL_checkudata(L, 1, AZB_HTTP);
  if (h->multi == NULL)
    lua_pushliteral(L, AZB_HTTP " (closed)");
  else
    lua_pushfstring(L, AZB_HTTP " (%p)", (void *)h);
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Request class
** =======================================================
*/

static Request *check_req(lua_State *L) {
  return (Request *)luaL_checkudata(L, 1, AZB_REQUEST);
}

/* req:done() -> boolean */
static int req_done(lua_State *L) {
  lua_pushboolean(L, check_req(L)->state == RQ_DONE);
  return 1;
}

/* req:result() -> status, headers, body, info; or fail; raises if in flight */
static int req_result(lua_State *L) {
  Request *r = check_req(L);
  if (r->state != RQ_DONE)
    return luaL_error(L, "request still in flight");
  return push_result(L, r, 1);
}

/* req:cancel() -> true if it was in flight */
static int req_cancel(lua_State *L) {
  Request *r = check_req(L);
  Http *h = r->http;
  if (r->state != RQ_RUNNING || h == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  stop_req(h, r, CURLE_ABORTED_BY_CALLBACK, END_CANCELLED);
  lua_getiuservalue(L, 1, UV_HTTP);
  unmap(L, lua_gettop(L), r);
  lua_pushboolean(L, 1);
  return 1;
}

/* __gc: a Request dropped while in flight leaves its Http safely */
static int req_gc(lua_State *L) {
  req_release(check_req(L));
  return 0;
}

/* tostring(req) -> "azbatch.Request (GET https://host/path, running)" */
static int req_tostring(lua_State *L) {
  Request *r = check_req(L);
  lua_getiuservalue(L, 1, UV_WHERE);
  lua_pushfstring(L, AZB_REQUEST " (%s, %s)", lua_tostring(L, -1),
                  r->state == RQ_RUNNING ? "running" : "done");
  return 1;
}

static const luaL_Reg http_methods[] = {
  { "start", http_start },
  { "poll", http_poll },
  { "request", http_request },
  { "pending", http_pending },
  { "stats", http_stats },
  { "close", http_close },
  { NULL, NULL }
};

static const luaL_Reg http_meta[] = {
  { "__gc", http_close },
  { "__close", http_close },
  { "__tostring", http_tostring },
  { NULL, NULL }
};

static const luaL_Reg req_methods[] = {
  { "done", req_done },
  { "result", req_result },
  { "cancel", req_cancel },
  { NULL, NULL }
};

static const luaL_Reg req_meta[] = {
  { "__gc", req_gc },
  { "__tostring", req_tostring },
  { NULL, NULL }
};

/* }====================================================== */


/* __gc of the registry sentinel: gives back curl_global_init's reference */
static int global_cleanup(lua_State *L) {
  (void)L;
  curl_global_cleanup();
  return 0;
}

/*
** curl_global_init is reference-counted and, since libcurl 7.84,
** thread-safe; each lua_State that opens the module takes one reference
** and gives it back when the state closes (a sentinel's __gc, created
** before any handle, so it is finalised after all of them).
*/
void azb_http_open(lua_State *L) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    luaL_error(L, "azbatch.core: curl_global_init failed");
  lua_newuserdatauv(L, 0, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, global_cleanup);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "azbatch.curl_global");
  azb_newclass(L, AZB_HTTP, http_meta, http_methods);
  azb_newclass(L, AZB_REQUEST, req_meta, req_methods);
  lua_pop(L, 2);
  lua_pushcfunction(L, http_new);
  lua_setfield(L, -2, "http");
}
