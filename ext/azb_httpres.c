/*
** azb_httpres.c: what a finished request gives Lua. Results are built
** once, when Lua first asks (poll, result), and cached on the Request;
** a secret request's answer (a token) stays in C for its owner to read
** and wipe. Also the azbatch.Request class.
*/
#include <stdio.h>
#include <string.h>

#include "azb_http.h"


/*
** {======================================================
** Results
** =======================================================
*/

static void set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
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
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -2),
                    r->ended == END_CLOSED ? "the " AZB_HTTP " was closed"
                    : r->reason[0] ? r->reason : "request cancelled");
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "transport");
    lua_setfield(L, -2, "kind");
    set_bool(L, "retryable", 0);
    set_bool(L, "cancelled", 1);
    set_bool(L, "sent", r->sent > 0);
    if (r->sends > 1)
      set_bool(L, "resent", 1);
    n = 3;
  }
  else if (r->too_large) {
    luaL_pushfail(L);
    if (r->too_large == TOO_LARGE_BODY)
      lua_pushfstring(L, "%s: the response body is larger than the %I "
                      "bytes allowed (max_response); not read",
                      lua_tostring(L, -2), (LUAI_UACINT)r->max_body);
    else
      lua_pushfstring(L, "%s: the response headers are larger than %d "
                      "bytes; not read", lua_tostring(L, -2), MAX_HEADERS);
    lua_createtable(L, 0, 5);
    lua_pushliteral(L, "transport");
    lua_setfield(L, -2, "kind");
    lua_pushliteral(L, "ResponseTooLarge");
    lua_setfield(L, -2, "code");
    if (r->status > 0) {
      lua_pushinteger(L, r->status);
      lua_setfield(L, -2, "status");
    }
    set_bool(L, "retryable", 0);
    set_bool(L, "sent", 1);
    n = 3;
  }
  else if (r->code != CURLE_OK) {
    const char *eb = r->errbuf;
    if (r->code == CURLE_WRITE_ERROR && (r->body.oom || r->hdrs.oom))
      eb = "out of memory reading the response";
    n = azb_curl_fail(L, lua_tostring(L, -1), r->code, eb, r->os_errno,
                      r->sent > 0);
    if (r->sends > 1)
      set_bool(L, "resent", 1);
  }
  else {
    lua_pushinteger(L, r->status);
    azb_push_headers(L, r->hdrs.p ? r->hdrs.p : "", r->hdrs.n);
    if (r->secret)
      lua_pushliteral(L, "");   /* a token answer stays in C */
    else
      lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.n);
    lua_createtable(L, 0, 5);
    lua_pushnumber(L, r->total_time);
    lua_setfield(L, -2, "total_time");
    lua_pushnumber(L, r->connect_time);
    lua_setfield(L, -2, "connect_time");
    lua_pushinteger(L, r->connects);
    lua_setfield(L, -2, "new_connections");
    lua_pushstring(L, r->primary_ip);
    lua_setfield(L, -2, "primary_ip");
    /* libcurl re-sent it on a new connection after the first went dead:
    ** the first send may have been applied too */
    set_bool(L, "resent", r->sends > 1);
    n = 4;
  }
  for (int i = n; i >= 1; i--)
    lua_rawseti(L, c, i);
  lua_pushinteger(L, n);
  lua_setfield(L, c, "n");
  lua_settop(L, c);
  lua_setiuservalue(L, ri, UV_RESULT);
  if (!r->secret) {   /* a token answer is read (and wiped) by its owner */
    azb_buf_wipe(&r->body);
    azb_buf_free(&r->hdrs);
  }
}

int azb_http_push_result(lua_State *L, Request *r, int ri) {
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

int azb_http_response(lua_State *L, int idx, azb_response *out) {
  Request *r = (Request *)luaL_checkudata(L, idx, AZB_REQUEST);
  memset(out, 0, sizeof *out);
  if (r->state != RQ_DONE)
    return luaL_error(L, "request still in flight");
  out->ok = r->ended == END_NONE && r->code == CURLE_OK && !r->too_large;
  out->status = r->status;
  out->body = &r->body;
  out->hdrs = &r->hdrs;
  return out->ok;
}

void azb_http_wipe(lua_State *L, int idx) {
  Request *r = (Request *)luaL_checkudata(L, idx, AZB_REQUEST);
  azb_buf_wipe(&r->body);
  azb_buf_free(&r->hdrs);
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

/* The Request at 1, done and its result not taken; raises otherwise. */
static Request *check_result(lua_State *L) {
  Request *r = check_req(L);
  if (r->state != RQ_DONE)
    luaL_error(L, "request still in flight");
  if (r->taken)
    luaL_error(L, "request's result already taken");
  return r;
}

/* req:done() -> boolean */
static int req_done(lua_State *L) {
  lua_pushboolean(L, check_req(L)->state == RQ_DONE);
  return 1;
}

/* req:result() -> status, headers, body, info; or fail; raises if in flight */
static int req_result(lua_State *L) {
  return azb_http_push_result(L, check_result(L), 1);
}

/*
** req:take() -> the same as result(), once: the request then lets go of
** them, so a request kept alive (a key in a scheduler map) holds no
** response body. A later result() or take() raises.
*/
static int req_take(lua_State *L) {
  Request *r = check_result(L);
  int n = azb_http_push_result(L, r, 1);
  lua_pushnil(L);
  lua_setiuservalue(L, 1, UV_RESULT);
  r->taken = 1;
  return n;
}

/*
** req:cancel([reason]) -> true if it was in flight. It ends with a
** transport fail giving 'reason', and poll returns it like any other.
*/
static int req_cancel(lua_State *L) {
  Request *r = check_req(L);
  Http *h = r->http;
  const char *reason = luaL_optstring(L, 2, NULL);
  if (r->state != RQ_RUNNING || h == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (reason != NULL)
    snprintf(r->reason, sizeof r->reason, "%s", reason);
  azb_http_stop(h, r, CURLE_ABORTED_BY_CALLBACK, END_CANCELLED);
  lua_pushboolean(L, 1);
  return 1;
}

/* __gc: a Request dropped while in flight leaves its Http safely */
static int req_gc(lua_State *L) {
  azb_http_req_release(check_req(L));
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

static const luaL_Reg req_methods[] = {
  { "done", req_done },
  { "result", req_result },
  { "take", req_take },
  { "cancel", req_cancel },
  { NULL, NULL }
};

static const luaL_Reg req_meta[] = {
  { "__gc", req_gc },
  { "__tostring", req_tostring },
  { NULL, NULL }
};

void azb_http_request_open(lua_State *L) {
  azb_newclass(L, AZB_REQUEST, req_meta, req_methods);
  lua_pop(L, 1);
}

/* }====================================================== */
