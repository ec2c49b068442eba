/*
** azb_util.c: helpers shared by the network areas that need Lua or
** libcurl: request and response headers, the URL rules, easy-handle
** setup and curl failures, the User-Agent, option checks, running a
** program without a shell; and the small Lua functions
** (uuid, rfc1123, url and base64 coding).
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "azb.h"

extern char **environ;


/*
** {======================================================
** Request headers and URL rules
** =======================================================
*/

static int tchar(int c) {   /* RFC 9110 token characters */
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

static int blank(int c) { return c == ' ' || c == '\t'; }

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
      return "invalid character in header name";
  while (vlen > 0 && blank((unsigned char)value[0])) {
    value++;
    vlen--;
  }
  while (vlen > 0 && blank((unsigned char)value[vlen - 1]))
    vlen--;
  for (size_t i = 0; i < vlen; i++)
    if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
      return "CR, LF or NUL in header value";
  h->name = name;
  h->nlen = nlen;
  h->value = value;
  h->vlen = vlen;
  return NULL;
}

int azb_headers_collect(lua_State *L, int idx, azb_header **out) {
  int n = 0, i = 0;
  azb_header *hs;
  idx = lua_absindex(L, idx);
  if (lua_isnoneornil(L, idx)) {
    *out = (azb_header *)lua_newuserdatauv(L, 0, 0);
    return 0;
  }
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "headers: table expected, got %s", luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    n++;
    lua_pop(L, 1);
  }
  hs = (azb_header *)lua_newuserdatauv(L, sizeof(azb_header) * (size_t)n, 0);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {   /* strings stay anchored in the table */
    size_t nl, vl;
    const char *name, *value, *why;
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "headers: string value expected, got %s",
                 luaL_typename(L, -1));
    value = lua_tolstring(L, -1, &vl);
    if (lua_type(L, -2) == LUA_TSTRING) {   /* name -> value */
      name = lua_tolstring(L, -2, &nl);
      why = header_set(&hs[i], name, nl, value, vl);
      if (why != NULL) {
        lua_pushfstring(L, "headers: %s", why);
        return -1;
      }
    }
    else if (lua_isinteger(L, -2)) {        /* "Name: value" */
      const char *colon = memchr(value, ':', vl);
      if (colon == NULL) {
        lua_pushfstring(L, "headers[%I]: expected \"Name: value\"",
                        (LUAI_UACINT)lua_tointeger(L, -2));
        return -1;
      }
      why = header_set(&hs[i], value, (size_t)(colon - value), colon + 1,
                       vl - (size_t)(colon - value) - 1);
      if (why != NULL) {
        lua_pushfstring(L, "headers[%I]: %s",
                        (LUAI_UACINT)lua_tointeger(L, -2), why);
        return -1;
      }
    }
    else
      luaL_error(L, "headers: unexpected %s key", luaL_typename(L, -2));
    i++;
    lua_pop(L, 1);
  }
  *out = hs;
  return n;
}

/* 127.0.0.0/8 as a strict dotted quad (libcurl normalises other forms). */
static int ipv4_loopback(const char *h) {
  int parts = 0, first = -1;
  while (*h) {
    int v = 0, digits = 0;
    while (*h >= '0' && *h <= '9' && digits < 4) {
      v = v * 10 + (*h++ - '0');
      digits++;
    }
    if (digits == 0 || digits > 3 || v > 255)
      return 0;
    if (parts == 0)
      first = v;
    parts++;
    if (*h == '.')
      h++;
    else if (*h != '\0')
      return 0;
  }
  return parts == 4 && first == 127;
}

static int is_loopback(const char *host) {
  return azb_strieq(host, "localhost") || azb_strieq(host, "[::1]") ||
         ipv4_loopback(host);
}

/*
** libcurl's own parser decides scheme, host and path, so what is checked
** (and signed) is what libcurl will send. Everything is copied to the C
** stack and the CURLU freed before any Lua call that could raise.
*/
int azb_url_check(lua_State *L, const char *url, int flags, int *direct) {
  char where[512], host[256], why[128];
  char *scheme = NULL, *h = NULL, *port = NULL, *path = NULL, *user = NULL;
  int ok = 0;
  CURLUcode rc;
  CURLU *u = curl_url();
  why[0] = host[0] = where[0] = '\0';
  *direct = 0;
  if (u == NULL)
    snprintf(why, sizeof why, "out of memory");
  else if ((rc = curl_url_set(u, CURLUPART_URL, url, 0)) != CURLUE_OK)
    snprintf(why, sizeof why, "malformed URL (%s)", curl_url_strerror(rc));
  else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
           curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
           curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLENCODE) != CURLUE_OK)
    snprintf(why, sizeof why, "malformed URL");
  else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
    snprintf(why, sizeof why, "credentials in the URL are not allowed");
  else {
    int loop = is_loopback(h);
    int imds = (flags & AZB_URL_IMDS) && strcmp(h, "169.254.169.254") == 0;
    curl_url_get(u, CURLUPART_PORT, &port, 0);   /* only when explicit */
    snprintf(host, sizeof host, "%s", h);
    snprintf(where, sizeof where, "%s://%s%s%s%s", scheme, h,
             port ? ":" : "", port ? port : "", path);
    if (strcmp(scheme, "https") == 0)
      ok = 1;
    else if (strcmp(scheme, "http") != 0)
      snprintf(why, sizeof why, "unsupported scheme");
    else if (!loop && !imds)
      ok = -1;
    else
      ok = 1;
    *direct = loop || imds;
  }
  curl_free(scheme);
  curl_free(h);
  curl_free(port);
  curl_free(path);
  curl_free(user);
  curl_url_cleanup(u);
  if (ok == 1)
    lua_pushstring(L, where);
  else if (ok == -1)
    lua_pushfstring(L, "http:// is only allowed to loopback addresses "
                    "(got host \"%s\"); use https://", host);
  else if (strcmp(why, "unsupported scheme") == 0)
    lua_pushliteral(L, "unsupported scheme (expected https://)");
  else
    lua_pushstring(L, why);
  return ok == 1;
}

void azb_push_useragent(lua_State *L) {
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  lua_pushfstring(L, "azbatch/%s Lua/%s.%s libcurl/%s", AZB_VERSION,
                  LUA_VERSION_MAJOR, LUA_VERSION_MINOR, v->version);
}

/* Lower-cased names -> values; repeats joined with ", ". */
void azb_push_headers(lua_State *L, const char *p, size_t n) {
  const char *e = p + n;
  int t, last;
  lua_newtable(L);
  t = lua_gettop(L);
  lua_pushnil(L);                 /* slot: the last name seen */
  last = lua_gettop(L);
  while (p < e) {
    const char *eol = memchr(p, '\n', (size_t)(e - p));
    const char *le, *v, *ve;
    if (eol == NULL)
      eol = e;
    le = (eol > p && eol[-1] == '\r') ? eol - 1 : eol;
    if (le > p && (*p == ' ' || *p == '\t') && !lua_isnil(L, last)) {
      v = p;                      /* obsolete line folding */
      ve = le;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      lua_pushvalue(L, last);
      lua_pushvalue(L, last);
      lua_rawget(L, t);
      lua_pushliteral(L, " ");
      lua_pushlstring(L, v, (size_t)(ve - v));
      lua_concat(L, 3);
      lua_rawset(L, t);
    }
    else if (le > p && !(le - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
      const char *colon = memchr(p, ':', (size_t)(le - p));
      if (colon != NULL && colon > p) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (const char *c = p; c < colon; c++)
          luaL_addchar(&b, (char)((*c >= 'A' && *c <= 'Z') ? *c - 'A' + 'a' : *c));
        luaL_pushresult(&b);
        lua_replace(L, last);
        v = colon + 1;
        ve = le;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        lua_pushvalue(L, last);
        lua_pushvalue(L, last);
        if (lua_rawget(L, t) == LUA_TSTRING) {
          lua_pushliteral(L, ", ");
          lua_pushlstring(L, v, (size_t)(ve - v));
          lua_concat(L, 3);
        }
        else {
          lua_pop(L, 1);
          lua_pushlstring(L, v, (size_t)(ve - v));
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
** Easy handles and curl failures
** =======================================================
*/

static long to_ms(double s) {
  double ms = s * 1000.0 + 0.5;
  return ms < 1 ? 1 : ms > (double)LONG_MAX / 2 ? LONG_MAX / 2 : (long)ms;
}

int azb_easy_setup(void *easy, const azb_netopts *o, int direct,
                   char *errbuf) {
  CURL *c = (CURL *)easy;
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
  /* always on; there is deliberately no option to turn them off */
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  SET(CURLOPT_TIMEOUT_MS, to_ms(o->timeout));
  SET(CURLOPT_CONNECTTIMEOUT_MS, to_ms(o->connect_timeout));
  SET(CURLOPT_USERAGENT, o->user_agent);
  if (o->ca_file != NULL)
    SET(CURLOPT_CAINFO, o->ca_file);
  if (o->ca_path != NULL)
    SET(CURLOPT_CAPATH, o->ca_path);
  SET(CURLOPT_ACCEPT_ENCODING, "");   /* gzip/deflate list responses */
  SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  /* loopback (emulator) and IMDS must never go through a proxy; other
  ** hosts follow http_proxy/https_proxy/no_proxy as libcurl reads them */
  if (direct)
    SET(CURLOPT_NOPROXY, "*");
#undef SET
  return (int)rc;
}

static int retryable(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
      return 1;
    default:
      return 0;
  }
}

int azb_curl_fail(lua_State *L, const char *where, int code,
                  const char *errbuf, long os_errno) {
  char msg[CURL_ERROR_SIZE + 80], os[64];
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
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", where, msg);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, code == CURLE_OPERATION_TIMEDOUT ? "timeout" : "transport");
  lua_setfield(L, -2, "kind");
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "curl_code");
  lua_pushboolean(L, retryable((CURLcode)code));
  lua_setfield(L, -2, "retryable");
  return 3;
}

/* }====================================================== */


/*
** {======================================================
** Options and processes
** =======================================================
*/

void azb_check_keys(lua_State *L, int t, const char *what,
                    const char *const *known) {
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    int ok = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int i = 0; known[i] != NULL && !ok; i++)
        ok = strcmp(lua_tostring(L, -2), known[i]) == 0;
    if (!ok)
      luaL_error(L, "%s: unknown option '%s'", what,
                 lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
}

double azb_opt_number(lua_State *L, int t, const char *k, double d,
                      double min) {
  double v;
  if (lua_getfield(L, t, k) == LUA_TNIL) {
    lua_pop(L, 1);
    return d;
  }
  if (!lua_isnumber(L, -1))
    luaL_error(L, "option '%s': number expected, got %s", k,
               luaL_typename(L, -1));
  v = lua_tonumber(L, -1);
  if (!(v >= min && v <= 86400.0 * 365))
    luaL_error(L, "option '%s': must be a number of seconds >= %f", k, min);
  lua_pop(L, 1);
  return v;
}

int azb_run(const char *const argv[], double timeout, azb_buf *out,
            azb_buf *err, char *why, size_t whysz) {
  int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, st = 0, open_fds = 2, code = -1;
  posix_spawn_file_actions_t fa;
  pid_t pid;
  struct timespec t0, t1;
  int rc;
  if (pipe(po) != 0 || pipe(pe) != 0) {
    snprintf(why, whysz, "pipe: %s", strerror(errno));
    goto closeall;
  }
  fcntl(po[0], F_SETFD, FD_CLOEXEC);
  fcntl(pe[0], F_SETFD, FD_CLOEXEC);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, po[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
  posix_spawn_file_actions_addclose(&fa, po[1]);
  posix_spawn_file_actions_addclose(&fa, pe[1]);
  {
    char *const *av = (char *const *)(void *)argv;   /* not modified */
    rc = strchr(argv[0], '/') ? posix_spawn(&pid, argv[0], &fa, NULL, av, environ)
                              : posix_spawnp(&pid, argv[0], &fa, NULL, av, environ);
  }
  posix_spawn_file_actions_destroy(&fa);
  close(po[1]);
  close(pe[1]);
  po[1] = pe[1] = -1;
  if (rc != 0) {
    snprintf(why, whysz, "cannot run '%s': %s", argv[0], strerror(rc));
    goto closeall;
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (open_fds > 0) {
    struct pollfd pf[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
    double left;
    int r;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    left = timeout - ((double)(t1.tv_sec - t0.tv_sec) +
                      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (left <= 0) {
      kill(pid, SIGKILL);
      snprintf(why, whysz, "'%s' timed out after %g s", argv[0], timeout);
      break;
    }
    r = poll(pf, 2, left > 60 ? 60000 : (int)(left * 1000) + 1);
    if (r < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2 && r > 0; i++) {
      if (pf[i].fd >= 0 && (pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        char chunk[4096];
        ssize_t n = read(pf[i].fd, chunk, sizeof chunk);
        azb_buf *b = i == 0 ? out : err;
        if (n > 0 && b->n < (1u << 20))   /* plenty for az output */
          azb_buf_add(b, chunk, (size_t)n);
        else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
          close(pf[i].fd);
          if (i == 0) po[0] = -1; else pe[0] = -1;
          open_fds--;
        }
        OPENSSL_cleanse(chunk, sizeof chunk);
      }
    }
  }
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(st))
    code = WEXITSTATUS(st);
  else if (why[0] == '\0')
    snprintf(why, whysz, "'%s' was killed by a signal", argv[0]);
closeall:
  for (int i = 0; i < 2; i++) {
    if (po[i] >= 0) close(po[i]);
    if (pe[i] >= 0) close(pe[i]);
  }
  return code;
}

/* }====================================================== */


/*
** {======================================================
** Lua functions
** =======================================================
*/

/* core.uuid() -> "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (RFC 4122 v4) */
static int util_uuid(lua_State *L) {
  static const char hex[] = "0123456789abcdef";
  unsigned char r[16];
  char s[37];
  int o = 0;
  if (RAND_bytes(r, sizeof r) != 1)
    return luaL_error(L, "uuid: the random generator failed");
  r[6] = (unsigned char)((r[6] & 0x0F) | 0x40);   /* version 4 */
  r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);   /* RFC 4122 variant */
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      s[o++] = '-';
    s[o++] = hex[r[i] >> 4];
    s[o++] = hex[r[i] & 15];
  }
  lua_pushlstring(L, s, 36);
  return 1;
}

/* core.rfc1123([t]) -> "Mon, 01 Jan 2024 00:00:00 GMT" (t: epoch, default now) */
static int util_rfc1123(lua_State *L) {
  char buf[32];
  double t = luaL_optnumber(L, 1, (double)time(NULL));
  /* years 0000..9999 keep the fixed-width format */
  luaL_argcheck(L, t >= -62167219200.0 && t < 253402300800.0, 1,
                "time out of range");
  azb_rfc1123(t, buf);
  lua_pushstring(L, buf);
  return 1;
}

static int unreserved(int c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

/* core.url_encode(s) -> s with all but RFC 3986 unreserved bytes as %XX */
static int util_url_encode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  static const char hex[] = "0123456789ABCDEF";
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c))
      luaL_addchar(&b, (char)c);
    else {
      luaL_addchar(&b, '%');
      luaL_addchar(&b, hex[c >> 4]);
      luaL_addchar(&b, hex[c & 15]);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

/* core.url_decode(s [, plus]) -> decoded s ('+' as space when plus) */
static int util_url_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  int plus = lua_toboolean(L, 2);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, n);
  luaL_pushresultsize(&b, azb_url_decode(s, n, out, plus));
  return 1;
}

/* core.base64_encode(s) -> base64 text */
static int util_b64_encode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *out;
  luaL_argcheck(L, n < (size_t)INT32_MAX / 2, 1, "string too long");
  out = luaL_buffinitsize(L, &b, AZB_B64LEN(n) + 1);
  luaL_pushresultsize(&b, azb_b64_encode((const unsigned char *)s, n, out));
  return 1;
}

/* core.base64_decode(s) -> bytes, or fail (kind "validation") */
static int util_b64_decode(lua_State *L) {
  size_t n, outn;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n / 4 * 3 + 1);
  if (azb_b64_decode(s, n, out, &outn) != 0)
    return azb_fail(L, "validation", NULL, "base64: not valid base64");
  luaL_pushresultsize(&b, outn);
  return 1;
}

static const luaL_Reg util_funcs[] = {
  { "uuid", util_uuid },
  { "rfc1123", util_rfc1123 },
  { "url_encode", util_url_encode },
  { "url_decode", util_url_decode },
  { "base64_encode", util_b64_encode },
  { "base64_decode", util_b64_decode },
  { NULL, NULL }
};

void azb_util_open(lua_State *L) {
  luaL_setfuncs(L, util_funcs, 0);
}

/* }====================================================== */
