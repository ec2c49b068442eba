/*
** azb_httpreq.c: building a request, the one request path. The URL is
** parsed once (azb_url.c) and handed to libcurl as parsed, the header
** list checked once, Content-Length set by one rule, and the
** Authorization header computed from exactly that list, inside the call
** that sends it. Token requests (azb_token.c) come through here too.
** libcurl callbacks only append into azb_buf, so no Lua API call ever
** runs inside libcurl.
*/
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "azb_http.h"


/*
** {======================================================
** libcurl callbacks (no Lua in here)
** =======================================================
*/

/* The response body, bounded on the decoded bytes (a gzip bomb stops). */
static size_t on_body(char *d, size_t size, size_t nmemb, void *ud) {
  Request *r = (Request *)ud;
  size_t n = size * nmemb;
  if (n > r->max_body - r->body.n) {
    r->too_large = TOO_LARGE_BODY;
    return 0;                     /* CURLE_WRITE_ERROR ends the transfer */
  }
  return azb_buf_add(&r->body, d, n) == 0 ? n : 0;
}

static size_t on_header(char *d, size_t size, size_t nmemb, void *ud) {
  Request *r = (Request *)ud;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(d, "HTTP/", 5) == 0)
    azb_buf_reset(&r->hdrs);   /* a new response head (after a 1xx) */
  if (!r->keep_headers)
    return n;
  if (n > MAX_HEADERS - r->hdrs.n) {
    r->too_large = TOO_LARGE_HEADERS;
    return 0;
  }
  return azb_buf_add(&r->hdrs, d, n) == 0 ? n : 0;
}

/*
** Called before each time the request goes out on a connection. libcurl
** re-sends a request by itself when a reused connection dies before any
** answer: the first send may have been applied, and the caller must know.
*/
static int on_send(void *ud, char *pip, char *lip, int pport, int lport) {
  (void)pip; (void)lip; (void)pport; (void)lport;
  ((Request *)ud)->sends++;
  return CURL_PREREQFUNC_OK;
}

/*
** verbose: connection events only (CURLINFO_TEXT), never data. HTTP/2
** logs request headers as text ("[HTTP/2] [1] [authorization: ...]"):
** anything from an Authorization header on is cut.
*/
static int on_debug(CURL *e, curl_infotype t, char *d, size_t n, void *ud) {
  static const char needle[] = "authorization";
  const size_t nl = sizeof needle - 1;
  (void)e; (void)ud;
  if (t != CURLINFO_TEXT)
    return 0;
  for (size_t i = 0; i + nl <= n; i++)
    if (azb_strnieq(d + i, needle, nl)) {
      fprintf(stderr, "* azbatch: %.*s%.*s: <redacted>\n", (int)i, d,
              (int)nl, d + i);
      return 0;
    }
  fprintf(stderr, "* azbatch: %.*s", (int)n, d);
  if (n == 0 || d[n - 1] != '\n')
    fputc('\n', stderr);
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Building a request
** =======================================================
*/

static long to_ms(double s) {
  double ms = s * 1000.0 + 0.5;
  return ms < 1 ? 1 : ms > (double)LONG_MAX / 2 ? LONG_MAX / 2 : (long)ms;
}

/*
** Configure an easy handle, new or a spare (reset when it was given back,
** so a second reset here would only cost): TLS verification on (there is
** deliberately no option to turn it off), http/https only, no redirects,
** only gzip offered, timeouts, CA, user agent.
*/
static CURLcode easy_setup(CURL *c, const azb_reqspec *rs, int direct,
                           char *errbuf) {
  CURLcode rc = CURLE_OK;
  errbuf[0] = '\0';
#define SET(opt, v) if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, v)
  SET(CURLOPT_ERRORBUFFER, errbuf);
  SET(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  SET(CURLOPT_TIMEOUT_MS, to_ms(rs->timeout));
  SET(CURLOPT_CONNECTTIMEOUT_MS, to_ms(rs->connect_timeout));
  SET(CURLOPT_USERAGENT, rs->user_agent);
  if (rs->ca_file != NULL)
    SET(CURLOPT_CAINFO, rs->ca_file);
  if (rs->ca_path != NULL)
    SET(CURLOPT_CAPATH, rs->ca_path);
  /* one encoding only: each one offered is one more decoder facing
  ** hostile input */
  SET(CURLOPT_ACCEPT_ENCODING, "gzip");
  SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  /* loopback (emulator) and IMDS never go through a proxy; other hosts
  ** follow http_proxy/https_proxy/no_proxy as libcurl reads them */
  if (direct)
    SET(CURLOPT_NOPROXY, "*");
#undef SET
  return rc;
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

static const char *find_header(const azb_header *hs, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (azb_header_is(&hs[i], name))
      return hs[i].name;
  return NULL;
}

/*
** The Authorization value for the final header list into 'out', or NULL
** when the request carries none; on failure pushes nothing and returns
** why in 'why'.
*/
static int authorize(lua_State *L, const azb_reqspec *rs, const char *method,
                     const azb_header *hs, int nh, const azb_url *u,
                     azb_buf *out, const char **why) {
  *why = NULL;
  if (rs->auth == 0)
    return 0;
  if (luaL_testudata(L, rs->auth, AZB_SHAREDKEY) != NULL)
    *why = azb_sharedkey_authorize(L, rs->auth, method, hs, nh, u->path,
                                   u->query, out);
  else
    *why = azb_token_authorize(L, rs->auth, rs->scope, rs->scopelen, out);
  return *why == NULL ? 1 : -1;
}

int azb_http_start(lua_State *L, int hidx, int bodyidx,
                   const azb_reqspec *rs) {
  Http *h = (Http *)lua_touserdata(L, hidx);
  const char *body = rs->body, *why;
  size_t bodylen = rs->bodylen;
  int mi = method_index(rs->method), ri, nh, direct, bad = 0, authed;
  azb_header *hs, few[16];
  char errs[320], where[AZB_URL_TEXT + 16];
  Request *r;
  azb_buf tmp, auth;
  CURLcode rc;
  hidx = lua_absindex(L, hidx);
  luaL_checkstack(L, 24, NULL);
  if (mi < 0)
    return luaL_error(L, "http:start: unsupported method '%s'", rs->method);
  if (body != NULL && (mi == M_GET || mi == M_HEAD))
    return luaL_error(L, "http:start: a %s request has no body", rs->method);
  for (int i = 0; i < rs->nheaders; i++)
    if (azb_header_is(&rs->headers[i], "Content-Length"))
      return azb_fail(L, "validation", "headers", "headers: Content-Length "
                      "is set by the transport, from the body");
  if (rs->auth != 0 && find_header(rs->headers, rs->nheaders, "Authorization"))
    return azb_fail(L, "validation", "headers", "headers: Authorization is "
                    "set by the transport when auth is given");
  /* the Request: empty, metatable set, then resources */
  r = (Request *)lua_newuserdatauv(L, sizeof *r, 4);
  ri = lua_gettop(L);
  memset(r, 0, sizeof *r);
  azb_buf_init(&r->body);
  azb_buf_init(&r->hdrs);
  azb_buf_init(&r->send);
  luaL_setmetatable(L, AZB_REQUEST);
  lua_pushvalue(L, hidx);
  lua_setiuservalue(L, ri, UV_HTTP);
  if (azb_url_parse(rs->url, rs->url_flags, &r->url, errs, sizeof errs) != NULL)
    return azb_fail(L, "validation", "url", "url: %s", errs);
  if (rs->origin != NULL) {
    char origin[AZB_URL_TEXT];
    azb_url_origin(&r->url, origin, sizeof origin);
    if (!azb_strieq(origin, rs->origin)) {
      azb_url_where(&r->url, where, sizeof where);
      return azb_fail(L, "validation", "url", "url: %s is not on %s",
                      where, rs->origin);
    }
  }
  direct = r->url.loopback || r->url.imds;
  azb_url_where(&r->url, where, sizeof where);
  lua_pushfstring(L, "%s %s", rs->method, where);
  lua_setiuservalue(L, ri, UV_WHERE);
  if (rs->fill != NULL) {   /* written straight into wiped memory */
    const char *fwhy = rs->fill(rs->fill_ud, &r->send);
    if (fwhy != NULL)
      return azb_fail(L, "auth", NULL, "%s", fwhy);
    body = r->send.p ? r->send.p : "";
    bodylen = r->send.n;
  }
  if (body == NULL && (mi == M_POST || mi == M_PUT || mi == M_PATCH))
    body = "";   /* these always say how long their body is */
  if (rs->secret && body != NULL && rs->fill == NULL) {
    if (azb_buf_add(&r->send, body, bodylen) != 0)
      return luaL_error(L, "http:start: not enough memory");
    body = r->send.p;
  }
  else if (bodyidx != 0) {   /* libcurl reads the string: anchor it */
    lua_pushvalue(L, bodyidx);
    lua_setiuservalue(L, ri, UV_BODY);
  }
  r->secret = rs->secret;
  r->keep_headers = rs->keep_headers;
  r->max_body = rs->max_response > 0 ? rs->max_response : h->max_response;
  /* the final header list: the caller's, Content-Length, Authorization */
  if (rs->nheaders + 1 <= (int)(sizeof few / sizeof few[0]))
    hs = few;   /* the usual case: no garbage made */
  else
    hs = (azb_header *)lua_newuserdatauv(L, sizeof(azb_header) *
                                         (size_t)(rs->nheaders + 1), 0);
  memcpy(hs, rs->headers, sizeof(azb_header) * (size_t)rs->nheaders);
  nh = rs->nheaders;
  {
    char len[32];
    if (body != NULL) {
      snprintf(len, sizeof len, "%llu", (unsigned long long)bodylen);
      lua_pushstring(L, len);   /* anchors the value */
      hs[nh].name = "Content-Length";
      hs[nh].nlen = 14;
      hs[nh].value = lua_tolstring(L, -1, &hs[nh].vlen);
      nh++;
    }
  }
  azb_buf_init(&auth);
  authed = authorize(L, rs, rs->method, hs, nh, &r->url, &auth, &why);
  if (authed < 0) {
    azb_buf_wipe(&auth);
    return azb_fail(L, "auth", NULL, "%s %s: %s", rs->method, where, why);
  }
  /* header list: no Lua calls from here until 'auth' is wiped */
  azb_buf_init(&tmp);
  for (int i = 0; i < nh && !bad; i++)
    bad = add_header(r, &tmp, hs[i].name, hs[i].nlen, hs[i].value, hs[i].vlen);
  if (!bad && authed)
    bad = add_header(r, &tmp, "Authorization", 13, auth.p, auth.n);
  azb_buf_wipe(&tmp);
  azb_buf_wipe(&auth);
  if (bad)
    return luaL_error(L, "http:start: not enough memory");
  {
    /* headers libcurl would add by itself (Expect: 100-continue, a form
    ** Content-Type on POST, "Accept: any") are dropped unless given:
    ** "Name:" with no value tells libcurl not to send its own */
    const char *drop[3] = { "Accept:", "Expect:", "Content-Type:" };
    const char *names[3] = { "Accept", "Expect", "Content-Type" };
    /* without a body libcurl adds neither Expect nor Content-Type */
    for (int i = 0; i < (body != NULL ? 3 : 1); i++) {
      struct curl_slist *s;
      if (find_header(hs, nh, names[i]) != NULL)
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
  rc = easy_setup(r->easy, rs, direct, r->errbuf);
#define SET(opt, v) if (rc == CURLE_OK) rc = curl_easy_setopt(r->easy, opt, v)
  SET(CURLOPT_CURLU, r->url.curlu);      /* parsed once, read by libcurl */
  SET(CURLOPT_PRIVATE, (void *)r);
  SET(CURLOPT_HTTPHEADER, r->headers);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, (void *)r);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)r);
  SET(CURLOPT_PREREQFUNCTION, on_send);
  SET(CURLOPT_PREREQDATA, (void *)r);
  /* A new connection is never one libcurl may find dead and silently
  ** re-send on: non-idempotent callers ask for it (pool create). */
  SET(CURLOPT_FRESH_CONNECT, rs->fresh_connect ? 1L : 0L);
  if (rs->verbose) {
    SET(CURLOPT_DEBUGFUNCTION, on_debug);
    SET(CURLOPT_VERBOSE, 1L);
  }
  switch (mi) {
    case M_GET: SET(CURLOPT_HTTPGET, 1L); break;
    case M_HEAD: SET(CURLOPT_NOBODY, 1L); break;
    default:
      if (mi != M_POST)
        SET(CURLOPT_CUSTOMREQUEST, rs->method);
      if (body != NULL) {   /* anchored in UV_BODY or owned in r->send */
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
  azb_http_link(&h->running, r);
  h->inflight++;
  lua_getiuservalue(L, hidx, UV_REQS);                      /* map[r] = req */
  lua_pushlightuserdata(L, r);
  lua_pushvalue(L, ri);
  lua_rawset(L, -3);
  lua_settop(L, ri);
  return 1;
}

/* }====================================================== */
