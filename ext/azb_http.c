/*
** azb_http.c: the transport, the one request path. One CURLM per
** azbatch.Http; each azbatch.Request owns an easy handle while in flight.
** A request is built here once: the URL parsed once (azb_url.c) and handed
** to libcurl as parsed, the header list checked once, Content-Length set
** by one rule, and the Authorization header computed from exactly that
** list, inside the call that sends it. Token requests (azb_token.c) come
** through here too. libcurl callbacks only append into azb_buf; Lua values
** are built when Lua asks (poll, result), so no Lua API call ever runs
** inside libcurl.
*/
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "azb.h"

#define SPARE_EASY   8              /* idle easy handles kept for reuse */
#define MAX_HEADERS  (256 * 1024)   /* response header block */
#define DEFAULT_MAX_RESPONSE (32 * 1024 * 1024)
#define MAX_WAIT_FDS 512

typedef struct Http Http;
typedef struct Request Request;

enum { RQ_NEW, RQ_RUNNING, RQ_DONE };
enum { END_NONE, END_CANCELLED, END_CLOSED };
enum { TOO_LARGE_BODY = 1, TOO_LARGE_HEADERS };

struct Request {
  Http *http;              /* set while linked into one of its lists */
  Request *prev, *next;
  CURL *easy;              /* while running */
  struct curl_slist *headers;
  azb_url url;             /* owns the CURLU libcurl reads */
  azb_buf body, hdrs;      /* the response */
  azb_buf send;            /* a secret request body, wiped */
  size_t max_body;
  int state, ended, keep_headers, listed, secret, too_large;
  int sends;               /* times libcurl sent it: > 1 when it re-sent by itself */
  CURLcode code;
  long status, connects, os_errno;
  curl_off_t sent;         /* request bytes that left */
  double total_time, connect_time;
  char primary_ip[64];
  char errbuf[CURL_ERROR_SIZE];
  char reason[96];         /* why it was cancelled */
};

struct Http {
  CURLM *multi;            /* NULL once closed */
  Request *running;        /* in the multi handle */
  Request *finished;       /* done, not yet returned by poll */
  CURL *spare[SPARE_EASY];
  int nspare, verbose;
  double timeout, connect_timeout;
  size_t max_response;
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

/* Wipe header lines before freeing them: they carry the Authorization. */
static void free_headers(Request *r) {
  for (struct curl_slist *s = r->headers; s != NULL; s = s->next)
    OPENSSL_cleanse(s->data, strlen(s->data));
  curl_slist_free_all(r->headers);
  r->headers = NULL;
}

/* Give r's easy handle back: reset (drops pointers into r) and keep it. */
static void drop_easy(Http *h, Request *r) {
  if (r->easy != NULL) {
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
  }
  free_headers(r);
  azb_buf_wipe(&r->send);
  azb_url_free(&r->url);
}

/*
** A running request stops: finished by libcurl, cancelled or closed.
** Finished and cancelled requests are queued for poll, so whoever waits
** on them wakes up; requests of a closing Http are not (it has no poll).
*/
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
  {
    long sent = 0;
    curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &sent);
    r->sent = sent;
  }
  unlink_req(&h->running, r);
  h->inflight--;
  drop_easy(h, r);
  r->code = code;
  r->ended = ended;
  r->state = RQ_DONE;
  if (ended != END_CLOSED)
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
    unlink_req(&h->finished, r);
  }
  r->http = NULL;
  drop_easy(NULL, r);
  azb_buf_wipe(&r->body);
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
** Reset-and-configure an easy handle: TLS verification on (there is
** deliberately no option to turn it off), http/https only, no redirects,
** only gzip offered, timeouts, CA, user agent.
*/
static CURLcode easy_setup(CURL *c, const azb_reqspec *rs, int direct,
                           char *errbuf) {
  CURLcode rc = CURLE_OK;
  curl_easy_reset(c);      /* keeps live connections and caches */
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
  azb_header *hs;
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
    const char *drop[3] = { "Expect:", "Content-Type:", "Accept:" };
    const char *names[3] = { "Expect", "Content-Type", "Accept" };
    for (int i = 0; i < 3; i++) {
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
  link_req(&h->running, r);
  h->inflight++;
  lua_getiuservalue(L, hidx, UV_REQS);                      /* map[r] = req */
  lua_pushlightuserdata(L, r);
  lua_pushvalue(L, ri);
  lua_rawset(L, -3);
  lua_settop(L, ri);
  return 1;
}

/* }====================================================== */


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

/* Forget r in the Http's request map (Http at index hi). */
static void unmap(lua_State *L, int hi, Request *r) {
  lua_getiuservalue(L, hi, UV_REQS);
  lua_pushlightuserdata(L, r);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* }====================================================== */


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

/* Waits at most 'wait' seconds for activity on h. */
static CURLMcode poll_one(Http *h, double wait) {
  CURLMcode mc = drive(h);
  /* with nothing in flight this still waits: Lua uses poll as its timer */
  if (mc == CURLM_OK && h->finished == NULL && wait > 0) {
    int ms = wait > INT_MAX / 1000 ? INT_MAX : (int)(wait * 1000 + 0.5);
    mc = curl_multi_poll(h->multi, NULL, 0, ms, NULL);
    if (mc == CURLM_OK)
      mc = drive(h);
  }
  return mc;
}

/* Push the finished requests of the Http at 1 (oldest first), dequeued. */
static int push_finished(lua_State *L, Http *h) {
  Request *tail;
  int n = 0;
  lua_settop(L, 1);
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

static double check_wait(lua_State *L, int i) {
  double wait = luaL_optnumber(L, i, 0);
  luaL_argcheck(L, wait >= 0 && wait <= AZB_SECONDS_MAX, i,
                "wait must be a finite number of seconds >= 0");
  return wait;
}

/* http:poll([wait]) -> {Request...} finished (or cancelled) since the last call */
static int http_poll(lua_State *L) {
  Http *h = check_open_http(L, 1);
  CURLMcode mc = poll_one(h, check_wait(L, 2));
  if (mc != CURLM_OK)
    return luaL_error(L, "http:poll: %s", curl_multi_strerror(mc));
  return push_finished(L, h);
}

/*
** core.wait({http, ...}, seconds) -> true: one wait across several
** transports, until any of them has something to do or the time is up
** (closed ones are skipped). Then poll(0) each for what finished.
*/
static int http_wait_many(lua_State *L) {
  struct pollfd pfd[MAX_WAIT_FDS];
  int npfd = 0, n, busy = 0;
  long ms;
  double wait;
  luaL_checktype(L, 1, LUA_TTABLE);
  wait = check_wait(L, 2);
  ms = wait * 1000 > INT_MAX ? INT_MAX : (long)(wait * 1000 + 0.5);
  n = (int)luaL_len(L, 1);
  for (int i = 1; i <= n; i++) {
    Http *h;
    fd_set r, w, e;
    int maxfd = -1;
    long t = -1;
    lua_rawgeti(L, 1, i);
    h = (Http *)luaL_checkudata(L, -1, AZB_HTTP);
    lua_pop(L, 1);
    if (h->multi == NULL)
      continue;
    if (h->finished != NULL)
      ms = 0;
    if (drive(h) != CURLM_OK || h->finished != NULL)
      ms = 0;
    if (curl_multi_timeout(h->multi, &t) == CURLM_OK && t >= 0 && t < ms)
      ms = t;
    FD_ZERO(&r); FD_ZERO(&w); FD_ZERO(&e);
    if (curl_multi_fdset(h->multi, &r, &w, &e, &maxfd) != CURLM_OK)
      continue;
    busy |= h->inflight > 0;
    for (int fd = 0; fd <= maxfd && npfd < MAX_WAIT_FDS; fd++) {
      short ev = (short)((FD_ISSET(fd, &r) ? POLLIN : 0) |
                         (FD_ISSET(fd, &w) ? POLLOUT : 0) |
                         (FD_ISSET(fd, &e) ? POLLPRI : 0));
      if (ev != 0) {
        pfd[npfd].fd = fd;
        pfd[npfd].events = ev;
        pfd[npfd].revents = 0;
        npfd++;
      }
    }
  }
  /* transfers with no socket yet (resolving): libcurl asks for short naps */
  if (busy && npfd == 0 && ms > 50)
    ms = 50;
  if (ms > 0)
    poll(pfd, (nfds_t)npfd, (int)ms);
  lua_pushboolean(L, 1);
  return 1;
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
  stop_req(h, r, CURLE_ABORTED_BY_CALLBACK, END_CANCELLED);
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
  azb_newclass(L, AZB_REQUEST, req_meta, req_methods);
  lua_pop(L, 2);
  lua_pushcfunction(L, http_new);
  lua_setfield(L, -2, "http");
  lua_pushcfunction(L, http_wait_many);
  lua_setfield(L, -2, "wait");
}
