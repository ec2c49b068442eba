/*
** azb_http.c: the transport's face, the azbatch.Http class. One CURLM
** per Http; each azbatch.Request owns an easy handle while in flight.
** Options are checked here and turned into a request spec, which
** azb_httpreq.c sends; poll and request wait through azb_httploop.c and
** read answers through azb_httpres.c. Lua values are built when Lua asks,
** never inside libcurl.
*/
#include <string.h>

#include "azb_http.h"

#define DEFAULT_MAX_RESPONSE (32 * 1024 * 1024)


/*
** {======================================================
** Http class
** =======================================================
*/

static Http *check_open_http(lua_State *L, int i) {
  Http *h = (Http *)luaL_checkudata(L, i, AZB_HTTP);
  if (h->multi == NULL)
    luaL_error(L, "attempt to use a closed " AZB_HTTP);
  return h;
}

/* opts[k]: nil or a string, else raise */
static const char *opt_string(lua_State *L, int t, const char *k) {
  int ty = lua_getfield(L, t, k);
  if (ty != LUA_TNIL && ty != LUA_TSTRING)
    luaL_error(L, "option '%s': string expected, got %s", k,
               luaL_typename(L, -1));
  return lua_tostring(L, -1);   /* left on the stack: anchored */
}

static size_t opt_size(lua_State *L, int t, const char *k, size_t d) {
  lua_Integer v;
  int isint;
  if (lua_getfield(L, t, k) == LUA_TNIL) {
    lua_pop(L, 1);
    return d;
  }
  v = lua_tointegerx(L, -1, &isint);
  if (!isint || v < 1 || v > ((lua_Integer)1 << 40))
    luaL_error(L, "option '%s': integer number of bytes in [1, 2^40] expected", k);
  lua_pop(L, 1);
  return (size_t)v;
}

static const char *const http_opts[] = { "timeout", "connect_timeout",
  "ca_file", "ca_path", "user_agent", "max_connections", "max_response",
  "verbose", NULL };

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
  azb_check_options(L, 1, 1, "http", http_opts);
  h = (Http *)lua_newuserdatauv(L, sizeof *h, 4);
  ud = lua_gettop(L);
  memset(h, 0, sizeof *h);
  luaL_setmetatable(L, AZB_HTTP);
  h->timeout = azb_opt_seconds(L, 1, "timeout", 60, 0.001);
  h->connect_timeout = azb_opt_seconds(L, 1, "connect_timeout", 10, 0.001);
  h->max_response = opt_size(L, 1, "max_response", DEFAULT_MAX_RESPONSE);
  opt_string(L, 1, "ca_file");
  lua_setiuservalue(L, ud, UV_CAFILE);
  opt_string(L, 1, "ca_path");
  lua_setiuservalue(L, ud, UV_CAPATH);
  if (opt_string(L, 1, "user_agent") == NULL) {
    lua_pop(L, 1);
    azb_push_useragent(L);
  }
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
  azb_http_watch(h);
  lua_settop(L, ud);
  return 1;
}

static const char *const start_opts[] = { "method", "url", "headers", "body",
  "timeout", "connect_timeout", "keep_headers", "fresh_connect", "origin",
  "auth", "scope", "max_response", "user_agent", "ca_file", "ca_path",
  "verbose", NULL };

/*
** Fill the parts of a request spec every request shares from the Http
** at hidx and the options table at t (which may be 0 for none).
*/
void azb_http_defaults(lua_State *L, int hidx, int t, azb_reqspec *rs) {
  Http *h = (Http *)luaL_checkudata(L, hidx, AZB_HTTP);
  hidx = lua_absindex(L, hidx);
  rs->timeout = t ? azb_opt_seconds(L, t, "timeout", h->timeout, 0.001)
                  : h->timeout;
  rs->connect_timeout = t ? azb_opt_seconds(L, t, "connect_timeout",
                                            h->connect_timeout, 0.001)
                          : h->connect_timeout;
  rs->verbose = h->verbose;
  rs->keep_headers = 1;
  if (t && lua_getfield(L, t, "verbose") != LUA_TNIL)
    rs->verbose = lua_toboolean(L, -1);
  if (t)
    lua_pop(L, 1);
  /* strings stay anchored: the option table's, or the Http's user values */
  rs->user_agent = t ? opt_string(L, t, "user_agent") : NULL;
  if (rs->user_agent == NULL) {
    lua_getiuservalue(L, hidx, UV_UA);
    rs->user_agent = lua_tostring(L, -1);
  }
  rs->ca_file = t ? opt_string(L, t, "ca_file") : NULL;
  if (rs->ca_file == NULL) {
    lua_getiuservalue(L, hidx, UV_CAFILE);
    rs->ca_file = lua_tostring(L, -1);
  }
  rs->ca_path = t ? opt_string(L, t, "ca_path") : NULL;
  if (rs->ca_path == NULL) {
    lua_getiuservalue(L, hidx, UV_CAPATH);
    rs->ca_path = lua_tostring(L, -1);
  }
}

/*
** http:start{method=, url=, headers=, body=, ...} -> Request, or fail.
** headers: name -> value. auth: a SharedKey (signs the request) or a
** TokenCredential holding a token for 'scope'. origin: the URL must be on
** it ("https://host:443", as core.url_check gives it).
*/
static int start_from_table(lua_State *L, int hidx, int t) {
  azb_reqspec rs;
  int bodyidx = 0, nh;
  azb_header *hs;
  memset(&rs, 0, sizeof rs);
  luaL_checktype(L, t, LUA_TTABLE);
  luaL_checkstack(L, 24, NULL);
  azb_check_options(L, t, 1, "start", start_opts);
  if (lua_getfield(L, t, "method") != LUA_TSTRING)
    return luaL_error(L, "http:start: field 'method' must be a string");
  rs.method = lua_tostring(L, -1);
  if (lua_getfield(L, t, "url") != LUA_TSTRING)
    return luaL_error(L, "http:start: field 'url' must be a string");
  rs.url = lua_tostring(L, -1);
  switch (lua_getfield(L, t, "body")) {
    case LUA_TNIL: break;
    case LUA_TSTRING:
      rs.body = lua_tolstring(L, -1, &rs.bodylen);
      bodyidx = lua_gettop(L);
      break;
    default: return luaL_error(L, "http:start: field 'body' must be a string");
  }
  rs.origin = opt_string(L, t, "origin");
  switch (lua_getfield(L, t, "auth")) {
    case LUA_TNIL: break;
    case LUA_TUSERDATA:
      if (luaL_testudata(L, -1, AZB_SHAREDKEY) != NULL ||
          luaL_testudata(L, -1, AZB_TOKENCRED) != NULL) {
        rs.auth = lua_gettop(L);
        break;
      }
      /* FALLTHROUGH */
    default:
      return luaL_error(L, "http:start: field 'auth' must be an "
                        AZB_SHAREDKEY " or " AZB_TOKENCRED);
  }
  if (lua_getfield(L, t, "scope") == LUA_TSTRING)
    rs.scope = lua_tolstring(L, -1, &rs.scopelen);
  else if (!lua_isnil(L, -1))
    return luaL_error(L, "http:start: field 'scope' must be a string");
  if (rs.auth && rs.scope == NULL &&
      luaL_testudata(L, rs.auth, AZB_TOKENCRED) != NULL)
    return luaL_error(L, "http:start: a token credential needs 'scope'");
  azb_http_defaults(L, hidx, t, &rs);
  rs.max_response = opt_size(L, t, "max_response", 0);
  if (lua_getfield(L, t, "keep_headers") != LUA_TNIL)
    rs.keep_headers = lua_toboolean(L, -1);
  lua_getfield(L, t, "fresh_connect");
  rs.fresh_connect = lua_toboolean(L, -1);
  lua_getfield(L, t, "headers");
  nh = azb_headers_collect(L, -1, 0, &hs);
  if (nh < 0)
    return azb_fail(L, "validation", "headers", "%s", lua_tostring(L, -1));
  rs.headers = hs;
  rs.nheaders = nh;
  return azb_http_start(L, hidx, bodyidx, &rs);
}

/* http:start(req) -> Request, or fail (kind "validation" or "auth") */
static int http_start(lua_State *L) {
  check_open_http(L, 1);
  return start_from_table(L, 1, 2);
}

/* http:poll([wait]) -> {Request...} finished (or cancelled) since the last call */
static int http_poll(lua_State *L) {
  Http *h = check_open_http(L, 1);
  CURLMcode mc = azb_http_poll_one(h, azb_http_check_wait(L, 2));
  if (mc != CURLM_OK)
    return luaL_error(L, "http:poll: %s", curl_multi_strerror(mc));
  return azb_http_push_finished(L, h);
}

/* http:request(req) -> status, headers, body, info; or fail */
static int http_request(lua_State *L) {
  Http *h = check_open_http(L, 1);
  Request *r;
  int ri;
  if (start_from_table(L, 1, 2) != 1)
    return 3;
  ri = lua_gettop(L);
  r = (Request *)lua_touserdata(L, ri);
  while (r->state == RQ_RUNNING) {
    CURLMcode mc = azb_http_run(h, 1000);
    if (mc != CURLM_OK)
      return luaL_error(L, "http:request: %s", curl_multi_strerror(mc));
  }
  /* other requests' completions stay queued for the next poll */
  azb_http_unlink(&h->finished, r);
  azb_http_unmap(L, 1, r);
  return azb_http_push_result(L, r, ri);
}

/* http:pending() -> number of requests in flight */
static int http_pending(lua_State *L) {
  lua_pushinteger(L, check_open_http(L, 1)->inflight);
  return 1;
}

/* http:closed() -> boolean */
static int http_closed(lua_State *L) {
  lua_pushboolean(L, ((Http *)luaL_checkudata(L, 1, AZB_HTTP))->multi == NULL);
  return 1;
}

/* http:stats() -> {requests=, connections=, in_flight=} */
static int http_stats(lua_State *L) {
  Http *h = check_open_http(L, 1);
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
  azb_http_release((Http *)luaL_checkudata(L, 1, AZB_HTTP));
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

static const luaL_Reg http_methods[] = {
  { "start", http_start },
  { "poll", http_poll },
  { "request", http_request },
  { "pending", http_pending },
  { "closed", http_closed },
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

/* }====================================================== */


void azb_push_useragent(lua_State *L) {
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  lua_pushfstring(L, "azbatch/%s Lua/%s.%s libcurl/%s", AZB_VERSION,
                  LUA_VERSION_MAJOR, LUA_VERSION_MINOR, v->version);
}

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
  lua_pop(L, 1);
  azb_http_request_open(L);
  lua_pushcfunction(L, http_new);
  lua_setfield(L, -2, "http");
  lua_pushcfunction(L, azb_http_wait_many);
  lua_setfield(L, -2, "wait");
}
