/*
** azb_token.c: Microsoft Entra ID credentials (client secret, workload
** identity, managed identity, Azure CLI) with a per-scope token cache.
** Token requests are blocking on the credential's own easy handle
** (tokens are rare). Secrets, assertions and tokens live in C memory
** that is wiped (OPENSSL_cleanse) when dropped; every Lua call that could
** raise happens after the temporary C buffers are released.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "azb.h"

enum { K_SECRET, K_WORKLOAD, K_MI, K_CLI };
static const char *const kinds[] =
  { "client_secret", "workload", "managed_identity", "azure_cli", NULL };

#define DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define DEFAULT_IMDS      "http://169.254.169.254/metadata/identity/oauth2/token"
#define MAX_FILE          (1 << 20)    /* federated token file, CLI output */
#define TEXT_MAX          400          /* error text kept for messages */

typedef struct tcache {
  struct tcache *next;
  char *scope, *token;
  size_t scopelen, toklen;
  double expires_on;
} tcache;

typedef struct TokenCred {
  int kind, closed;
  CURL *easy;               /* created on the first request */
  char *secret;             /* client_secret only; wiped */
  size_t secretlen;
  tcache *cache;
  double refresh_before, timeout, connect_timeout;
  char errbuf[CURL_ERROR_SIZE];
} TokenCred;

/* User value 1: a table of the non-secret settings (strings). */
#define UV_CFG 1


/*
** {======================================================
** Cache (pure C)
** =======================================================
*/

static void entry_free(tcache *e) {
  OPENSSL_cleanse(e->token, e->toklen);
  free(e->token);
  free(e->scope);
  free(e);
}

static void cache_clear(TokenCred *c) {
  while (c->cache != NULL) {
    tcache *e = c->cache;
    c->cache = e->next;
    entry_free(e);
  }
}

static tcache *cache_find(TokenCred *c, const char *scope, size_t n) {
  for (tcache *e = c->cache; e != NULL; e = e->next)
    if (e->scopelen == n && memcmp(e->scope, scope, n) == 0)
      return e;
  return NULL;
}

/* Store a token (copied); returns the entry or NULL (out of memory). */
static tcache *cache_put(TokenCred *c, const char *scope, size_t sn,
                         const char *tok, size_t tn, double exp) {
  tcache *e = cache_find(c, scope, sn);
  char *t = (char *)malloc(tn + 1);
  if (t == NULL)
    return NULL;
  memcpy(t, tok, tn);
  t[tn] = '\0';
  if (e == NULL) {
    e = (tcache *)calloc(1, sizeof *e);
    if (e == NULL || (e->scope = (char *)malloc(sn + 1)) == NULL) {
      free(e);
      OPENSSL_cleanse(t, tn);
      free(t);
      return NULL;
    }
    memcpy(e->scope, scope, sn);
    e->scope[sn] = '\0';
    e->scopelen = sn;
    e->next = c->cache;
    c->cache = e;
  }
  else {
    OPENSSL_cleanse(e->token, e->toklen);
    free(e->token);
  }
  e->token = t;
  e->toklen = tn;
  e->expires_on = exp;
  return e;
}

static void cred_release(TokenCred *c) {
  cache_clear(c);
  if (c->secret != NULL) {
    OPENSSL_cleanse(c->secret, c->secretlen);
    free(c->secret);
    c->secret = NULL;
  }
  if (c->easy != NULL)
    curl_easy_cleanup(c->easy);
  c->easy = NULL;
  c->closed = 1;
}

/* }====================================================== */


/*
** {======================================================
** One token request, in C only
** =======================================================
*/

/* What a fetch found out; all fixed-size, so no Lua call needs a free. */
typedef struct outcome {
  int ok;                  /* token cached */
  int curl_code;           /* != 0: transport failure */
  long os_errno;
  long status;
  int exit_code;           /* azure_cli */
  char error[128], desc[TEXT_MAX], request_id[128], problem[TEXT_MAX];
} outcome;

static void copy_text(char *dst, size_t dsz, const char *s, size_t n) {
  size_t i = 0;
  /* one line: Entra appends "\r\nTrace ID: ..." */
  while (i < n && i + 1 < dsz && s[i] != '\r' && s[i] != '\n') {
    dst[i] = s[i];
    i++;
  }
  while (i > 0 && (dst[i - 1] == ' ' || dst[i - 1] == '.'))
    i--;
  dst[i] = '\0';
}

static double num_field(const azb_jfield *f) {
  if (f->type == AZB_JNUMBER)
    return f->num;
  if (f->type == AZB_JSTRING && f->str.p != NULL && f->str.n > 0 &&
      f->str.n < 32 && strspn(f->str.p, "0123456789.") == f->str.n)
    return strtod(f->str.p, NULL);   /* IMDS sends numbers as strings */
  return -1;
}

/* "2024-01-01 12:00:00.000000" in local time (old az CLI's expiresOn). */
static double local_time(const char *s) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  if (sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
             &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_isdst = -1;
  return (double)mktime(&tm);
}

/*
** Read a token response body: cache the token, or fill the error fields.
** Field names: OAuth's, then the Azure CLI's.
*/
static void take_response(TokenCred *c, const char *scope, size_t sn,
                          const azb_buf *resp, outcome *o) {
  enum { F_TOK, F_IN, F_ON, F_ERR, F_DESC, F_TRACE, F_CTOK, F_CON, F_NF };
  azb_jfield f[F_NF] = {
    { "access_token", 0, { 0 }, 0 }, { "expires_in", 0, { 0 }, 0 },
    { "expires_on", 0, { 0 }, 0 }, { "error", 0, { 0 }, 0 },
    { "error_description", 0, { 0 }, 0 }, { "trace_id", 0, { 0 }, 0 },
    { "accessToken", 0, { 0 }, 0 }, { "expiresOn", 0, { 0 }, 0 }
  };
  double now = (double)time(NULL), exp = -1;
  const azb_jfield *tok;
  if (azb_json_fields(resp->p ? resp->p : "", resp->n, f, F_NF) != 0) {
    if (o->status != 0 && (o->status < 200 || o->status > 299))
      snprintf(o->problem, sizeof o->problem, "HTTP %ld from the token "
               "endpoint", o->status);
    else
      snprintf(o->problem, sizeof o->problem, "malformed token response");
    goto done;
  }
  if (f[F_ERR].type == AZB_JSTRING)
    copy_text(o->error, sizeof o->error, f[F_ERR].str.p, f[F_ERR].str.n);
  if (f[F_DESC].type == AZB_JSTRING)
    copy_text(o->desc, sizeof o->desc, f[F_DESC].str.p, f[F_DESC].str.n);
  if (o->request_id[0] == '\0' && f[F_TRACE].type == AZB_JSTRING)
    copy_text(o->request_id, sizeof o->request_id, f[F_TRACE].str.p,
              f[F_TRACE].str.n);
  if (o->error[0] != '\0' || (o->status != 0 && (o->status < 200 || o->status > 299)))
    goto done;
  tok = f[F_TOK].type == AZB_JSTRING ? &f[F_TOK] : &f[F_CTOK];
  if (tok->type != AZB_JSTRING || tok->str.n == 0) {
    snprintf(o->problem, sizeof o->problem, "token response has no access token");
    goto done;
  }
  if (num_field(&f[F_ON]) > now)
    exp = num_field(&f[F_ON]);
  else if (num_field(&f[F_IN]) >= 0)
    exp = now + num_field(&f[F_IN]);
  else if (f[F_CON].type == AZB_JSTRING)
    exp = local_time(f[F_CON].str.p);
  if (exp < 0)
    exp = now + 600;   /* no usable expiry: keep it briefly */
  if (cache_put(c, scope, sn, tok->str.p, tok->str.n, exp) == NULL)
    snprintf(o->problem, sizeof o->problem, "out of memory");
  else
    o->ok = 1;
done:
  for (int i = 0; i < F_NF; i++)
    azb_buf_wipe(&f[i].str);
}

/* Find "x-ms-request-id" among raw response header lines. */
static void take_request_id(const azb_buf *h, outcome *o) {
  static const char name[] = "x-ms-request-id:";
  const char *p = h->p, *e = h->p + h->n;
  while (p != NULL && p < e) {
    const char *eol = memchr(p, '\n', (size_t)(e - p));
    size_t len = (size_t)((eol ? eol : e) - p);
    if (len > sizeof name - 1 && azb_strnieq(p, name, sizeof name - 1)) {
      const char *v = p + sizeof name - 1;
      while (*v == ' ' || *v == '\t')
        v++;
      copy_text(o->request_id, sizeof o->request_id, v, len - (size_t)(v - p));
    }
    p = eol ? eol + 1 : NULL;
  }
}

/* Read the federated token file fresh (it rotates), trimmed. */
static int read_file(const char *path, azb_buf *out, char *why, size_t wsz) {
  char chunk[4096];
  size_t n;
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) {
    snprintf(why, wsz, "cannot read the federated token file '%s': %s", path,
             strerror(errno));
    return -1;
  }
  while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0 && out->n < MAX_FILE)
    azb_buf_add(out, chunk, n);
  OPENSSL_cleanse(chunk, sizeof chunk);
  fclose(fp);
  while (out->n > 0 && strchr(" \t\r\n", out->p[out->n - 1]) != NULL)
    out->p[--out->n] = '\0';
  if (out->oom || out->n == 0) {
    snprintf(why, wsz, "the federated token file '%s' is %s", path,
             out->oom ? "too large" : "empty");
    return -1;
  }
  return 0;
}

typedef struct reqspec {
  const char *url;          /* full request URL */
  const char *body;         /* NULL: GET */
  size_t bodylen;
  int direct, mi;
} reqspec;

/* Perform one token request on c->easy and interpret the answer. */
static void http_fetch(TokenCred *c, const azb_netopts *no, const reqspec *rq,
                       const char *scope, size_t sn, outcome *o) {
  struct curl_slist *hl = NULL, *t;
  azb_buf resp, hdrs;
  CURLcode rc;
  azb_buf_init(&resp);
  azb_buf_init(&hdrs);
  if (c->easy == NULL && (c->easy = curl_easy_init()) == NULL) {
    snprintf(o->problem, sizeof o->problem, "curl_easy_init failed");
    return;
  }
  t = curl_slist_append(hl, "Accept: application/json");
  if (t != NULL) t = curl_slist_append(hl = t, "Expect:");
  if (t != NULL) t = curl_slist_append(hl = t, rq->mi ? "Metadata: true"
                          : "Content-Type: application/x-www-form-urlencoded");
  if (t == NULL) {
    curl_slist_free_all(hl);
    snprintf(o->problem, sizeof o->problem, "out of memory");
    return;
  }
  hl = t;
  rc = (CURLcode)azb_easy_setup(c->easy, no, rq->direct, c->errbuf);
#define SET(opt, v) if (rc == CURLE_OK) rc = curl_easy_setopt(c->easy, opt, v)
  SET(CURLOPT_URL, rq->url);
  SET(CURLOPT_HTTPHEADER, hl);
  SET(CURLOPT_WRITEFUNCTION, azb_buf_write);
  SET(CURLOPT_WRITEDATA, (void *)&resp);
  SET(CURLOPT_HEADERFUNCTION, azb_buf_write);
  SET(CURLOPT_HEADERDATA, (void *)&hdrs);
  if (rq->body != NULL) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->bodylen);
    SET(CURLOPT_POSTFIELDS, rq->body);
  }
  else
    SET(CURLOPT_HTTPGET, 1L);
#undef SET
  if (rc == CURLE_OK)
    rc = curl_easy_perform(c->easy);
  curl_slist_free_all(hl);
  /* the body buffer pointer dies with the caller: forget it now */
  curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, NULL);
  if (rc != CURLE_OK) {
    o->curl_code = (int)rc;
    curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &o->os_errno);
  }
  else {
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &o->status);
    take_request_id(&hdrs, o);
    take_response(c, scope, sn, &resp, o);
    if (!o->ok && o->problem[0] == '\0' && o->error[0] == '\0')
      snprintf(o->problem, sizeof o->problem, "HTTP %ld from the token endpoint",
               o->status);
  }
  azb_buf_wipe(&resp);
  azb_buf_free(&hdrs);
}

/* }====================================================== */


/*
** {======================================================
** Lua side
** =======================================================
*/

static TokenCred *check_open_cred(lua_State *L) {
  TokenCred *c = (TokenCred *)luaL_checkudata(L, 1, AZB_TOKENCRED);
  if (c->closed)
    luaL_error(L, "attempt to use a closed " AZB_TOKENCRED);
  return c;
}

static int in_list(const char *k, const char *const *l) {
  for (; *l != NULL; l++)
    if (strcmp(k, *l) == 0)
      return 1;
  return 0;
}

static const char *const common_keys[] = { "kind", "refresh_before",
  "timeout", "connect_timeout", "ca_file", "ca_path", "user_agent", NULL };
static const char *const kind_keys[4][5] = {
  { "tenant", "client_id", "client_secret", "authority", NULL },
  { "tenant", "client_id", "token_file", "authority", NULL },
  { "client_id", "endpoint", NULL },
  { "command", "tenant", NULL }
};
static const char *const required[4][4] = {
  { "tenant", "client_id", "client_secret", NULL },
  { "tenant", "client_id", "token_file", NULL },
  { NULL }, { NULL }
};
/* string options copied into the settings table */
static const char *const copied[] = { "tenant", "client_id", "token_file",
  "command", "ca_file", "ca_path", "user_agent", NULL };

/* core.token_credential(opts) -> TokenCredential, or fail (kind "validation") */
static int token_new(lua_State *L) {
  int kind, cfg, direct = 0;
  TokenCred *c;
  size_t slen = 0;
  const char *secret = NULL;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "kind");
  kind = luaL_checkoption(L, -1, NULL, kinds);
  lua_pop(L, 1);
  lua_pushnil(L);                    /* every key must apply to this kind */
  while (lua_next(L, 1) != 0) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (k == NULL)
      return luaL_error(L, "token_credential: unexpected %s key",
                        luaL_typename(L, -2));
    if (!in_list(k, common_keys) && !in_list(k, kind_keys[kind]))
      return luaL_error(L, "token_credential: option '%s' does not apply to "
                        "kind '%s'", k, kinds[kind]);
    if (strcmp(k, "kind") != 0 && strcmp(k, "refresh_before") != 0 &&
        strcmp(k, "timeout") != 0 && strcmp(k, "connect_timeout") != 0 &&
        lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "token_credential: option '%s': string expected, "
                        "got %s", k, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  for (int i = 0; required[kind][i] != NULL; i++)
    if (lua_getfield(L, 1, required[kind][i]) == LUA_TNIL)
      return luaL_error(L, "token_credential: option '%s' is required for "
                        "kind '%s'", required[kind][i], kinds[kind]);
    else
      lua_pop(L, 1);
  lua_newtable(L);
  cfg = lua_gettop(L);
  for (int i = 0; copied[i] != NULL; i++) {
    lua_getfield(L, 1, copied[i]);
    lua_setfield(L, cfg, copied[i]);
  }
  if (lua_getfield(L, cfg, "user_agent") == LUA_TNIL) {
    azb_push_useragent(L);
    lua_setfield(L, cfg, "user_agent");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, cfg, "tenant") == LUA_TSTRING) {
    size_t n;
    const char *t = lua_tolstring(L, -1, &n);
    if (n == 0 || strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789.-_") != n)
      return azb_fail(L, "validation", "tenant", "token_credential: tenant "
                      "must be a directory id or domain name");
  }
  lua_pop(L, 1);
  if (kind == K_SECRET || kind == K_WORKLOAD) {
    size_t n;
    const char *a;
    if (lua_getfield(L, 1, "authority") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushliteral(L, DEFAULT_AUTHORITY);
    }
    a = lua_tolstring(L, -1, &n);
    while (n > 0 && a[n - 1] == '/')
      n--;
    lua_getfield(L, cfg, "tenant");
    lua_pushfstring(L, "%s/%s/oauth2/v2.0/token",
                    lua_pushlstring(L, a, n), lua_tostring(L, -1));
    if (!azb_url_check(L, lua_tostring(L, -1), 0, &direct))
      return azb_fail(L, "validation", "authority", "token_credential: "
                      "authority: %s", lua_tostring(L, -1));
    lua_setfield(L, cfg, "where");
    lua_setfield(L, cfg, "url");
    lua_pop(L, 3);
  }
  else if (kind == K_MI) {
    if (lua_getfield(L, 1, "endpoint") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushliteral(L, DEFAULT_IMDS);
    }
    if (strchr(lua_tostring(L, -1), '?') != NULL)
      return azb_fail(L, "validation", "endpoint", "token_credential: "
                      "endpoint: must not have a query");
    if (!azb_url_check(L, lua_tostring(L, -1), AZB_URL_IMDS, &direct))
      return azb_fail(L, "validation", "endpoint", "token_credential: "
                      "endpoint: %s", lua_tostring(L, -1));
    lua_setfield(L, cfg, "where");
    lua_setfield(L, cfg, "url");
  }
  lua_pushboolean(L, direct);
  lua_setfield(L, cfg, "direct");
  /* the handle: empty, metatable, settings; then the secret */
  c = (TokenCred *)lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  c->closed = 1;
  luaL_setmetatable(L, AZB_TOKENCRED);
  lua_pushvalue(L, cfg);
  lua_setiuservalue(L, -2, UV_CFG);
  c->kind = kind;
  c->refresh_before = azb_opt_number(L, 1, "refresh_before", 300, 0);
  c->timeout = azb_opt_number(L, 1, "timeout", 30, 0.001);
  c->connect_timeout = azb_opt_number(L, 1, "connect_timeout", 10, 0.001);
  if (kind == K_SECRET) {
    lua_getfield(L, 1, "client_secret");
    secret = lua_tolstring(L, -1, &slen);
    lua_pop(L, 1);   /* still referenced by opts */
    c->secret = (char *)malloc(slen + 1);
    if (c->secret == NULL)
      return luaL_error(L, "not enough memory");
    memcpy(c->secret, secret, slen + 1);
    c->secretlen = slen;
  }
  c->closed = 0;
  return 1;
}

/* Push nil, message, err for a failed outcome; returns 3. */
static int push_failure(lua_State *L, TokenCred *c, int cfg,
                        const outcome *o) {
  const char *aad;
  if (o->curl_code != 0) {
    lua_getfield(L, cfg, "where");
    lua_pushfstring(L, "auth: %s credential: %s %s", kinds[c->kind],
                    c->kind == K_MI ? "GET" : "POST", lua_tostring(L, -1));
    return azb_curl_fail(L, lua_tostring(L, -1), o->curl_code, c->errbuf,
                         o->os_errno);
  }
  luaL_pushfail(L);
  if (o->error[0] != '\0')
    lua_pushfstring(L, "auth: %s credential: %s%s%s", kinds[c->kind],
                    o->error, o->desc[0] ? ": " : "", o->desc);
  else
    lua_pushfstring(L, "auth: %s credential: %s", kinds[c->kind], o->problem);
  lua_createtable(L, 0, 5);
  lua_pushliteral(L, "auth");
  lua_setfield(L, -2, "kind");
  if (o->status > 0) {
    lua_pushinteger(L, o->status);
    lua_setfield(L, -2, "status");
  }
  if (o->error[0] != '\0') {
    lua_pushstring(L, o->error);
    lua_setfield(L, -2, "code");
  }
  if (o->request_id[0] != '\0') {
    lua_pushstring(L, o->request_id);
    lua_setfield(L, -2, "request_id");
  }
  if ((aad = strstr(o->desc, "AADSTS")) != NULL) {
    size_t n = 6 + strspn(aad + 6, "0123456789");
    lua_pushlstring(L, aad, n);
    lua_setfield(L, -2, "aadsts");
  }
  if (c->kind == K_CLI && o->exit_code != 0) {
    lua_pushinteger(L, o->exit_code);
    lua_setfield(L, -2, "exit_code");
  }
  return 3;
}

/* A message from az's stderr: its "ERROR:" line, else the first line. */
static void cli_problem(const azb_buf *err, const char *prog, outcome *o) {
  const char *p = err->p, *e = err->p + err->n, *pick = NULL;
  while (p != NULL && p < e) {
    const char *eol = memchr(p, '\n', (size_t)(e - p));
    size_t n = (size_t)((eol ? eol : e) - p);
    if (n > 0 && pick == NULL)
      pick = p;
    if (n >= 6 && memcmp(p, "ERROR:", 6) == 0) {
      pick = p;
      break;
    }
    p = eol ? eol + 1 : NULL;
  }
  if (pick != NULL)
    copy_text(o->problem, sizeof o->problem, pick, (size_t)(e - pick));
  if (o->problem[0] == '\0' && o->exit_code == 127)   /* exec failed late */
    snprintf(o->problem, sizeof o->problem, "cannot run '%s' (exit status 127)",
             prog);
  else if (o->problem[0] == '\0')
    snprintf(o->problem, sizeof o->problem, "az exited with status %d",
             o->exit_code);
}

/* cred:token(scope [, {force=bool}]) -> token, expires_on; or fail */
static int cred_token(lua_State *L) {
  TokenCred *c = check_open_cred(L);
  size_t sn;
  const char *scope = luaL_checklstring(L, 2, &sn);
  int force = 0, cfg;
  double now = (double)time(NULL);
  tcache *e;
  outcome o;
  azb_netopts no;
  luaL_argcheck(L, sn > 0, 2, "scope is empty");
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 3) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "force") != 0)
        return luaL_error(L, "token: unknown option '%s'", lua_type(L, -2) ==
                          LUA_TSTRING ? lua_tostring(L, -2) : "?");
      force = lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 3);
  lua_getiuservalue(L, 1, UV_CFG);
  cfg = 4;
  e = cache_find(c, scope, sn);
  if (e != NULL && !force && now < e->expires_on - c->refresh_before) {
    lua_pushlstring(L, e->token, e->toklen);
    lua_pushinteger(L, (lua_Integer)e->expires_on);
    return 2;
  }
  memset(&o, 0, sizeof o);
  /* every Lua value needed below is fetched (and anchored) first */
  lua_getfield(L, cfg, "user_agent");                     /* 5 */
  lua_getfield(L, cfg, "ca_file");                        /* 6 */
  lua_getfield(L, cfg, "ca_path");                        /* 7 */
  lua_getfield(L, cfg, "url");                            /* 8 */
  lua_getfield(L, cfg, "client_id");                      /* 9 */
  lua_getfield(L, cfg, "token_file");                     /* 10 */
  lua_getfield(L, cfg, "command");                        /* 11 */
  lua_getfield(L, cfg, "tenant");                         /* 12 */
  lua_getfield(L, cfg, "direct");                         /* 13 */
  if (sn > 9 && memcmp(scope + sn - 9, "/.default", 9) == 0)
    lua_pushlstring(L, scope, sn - 9);                    /* 14: resource */
  else
    lua_pushvalue(L, 2);
  no.user_agent = lua_tostring(L, 5);
  no.ca_file = lua_tostring(L, 6);
  no.ca_path = lua_tostring(L, 7);
  no.timeout = c->timeout;
  no.connect_timeout = c->connect_timeout;
  if (c->kind == K_CLI) {
    size_t rn;
    const char *res = lua_tolstring(L, 14, &rn);
    const char *argv[10];
    int n = 0;
    azb_buf out, err;
    if (rn == 0 || res[0] == '-' ||
        strspn(res, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789:/._-") != rn)
      return azb_fail(L, "validation", "scope", "auth: azure_cli credential: "
                      "scope must be a URL of [A-Za-z0-9:/._-]");
    argv[n++] = lua_isstring(L, 11) ? lua_tostring(L, 11) : "az";
    argv[n++] = "account";
    argv[n++] = "get-access-token";
    argv[n++] = "--output";
    argv[n++] = "json";
    argv[n++] = "--resource";
    argv[n++] = res;
    if (lua_isstring(L, 12)) {
      argv[n++] = "--tenant";
      argv[n++] = lua_tostring(L, 12);
    }
    argv[n] = NULL;
    azb_buf_init(&out);
    azb_buf_init(&err);
    o.exit_code = azb_run(argv, c->timeout, &out, &err, o.problem,
                         sizeof o.problem);
    if (o.exit_code < 0)
      o.exit_code = 0;   /* o.problem says why */
    if (o.problem[0] == '\0' && o.exit_code != 0)
      cli_problem(&err, argv[0], &o);
    else if (o.problem[0] == '\0') {
      take_response(c, scope, sn, &out, &o);
      if (!o.ok && o.problem[0] == '\0')
        snprintf(o.problem, sizeof o.problem, "az printed no access token");
    }
    azb_buf_wipe(&out);
    azb_buf_free(&err);
  }
  else {
    azb_buf url, body;
    reqspec rq;
    size_t cn;
    const char *cid = lua_tolstring(L, 9, &cn);
    memset(&rq, 0, sizeof rq);
    rq.direct = lua_toboolean(L, 13);
    azb_buf_init(&url);
    azb_buf_init(&body);
    azb_buf_adds(&url, lua_tostring(L, 8));
    if (c->kind == K_MI) {
      size_t rn;
      const char *res = lua_tolstring(L, 14, &rn);
      rq.mi = 1;
      azb_buf_adds(&url, "?api-version=2018-02-01&resource=");
      azb_url_encode(&url, res, rn);
      if (cid != NULL) {
        azb_buf_adds(&url, "&client_id=");
        azb_url_encode(&url, cid, cn);
      }
    }
    else {
      azb_buf_adds(&body, "grant_type=client_credentials&client_id=");
      azb_url_encode(&body, cid, cn);
      if (c->kind == K_SECRET) {
        azb_buf_adds(&body, "&client_secret=");
        azb_url_encode(&body, c->secret, c->secretlen);
      }
      else {
        azb_buf assertion;
        azb_buf_init(&assertion);
        if (read_file(lua_tostring(L, 10), &assertion, o.problem,
                      sizeof o.problem) == 0) {
          azb_buf_adds(&body, "&client_assertion_type=urn%3Aietf%3Aparams%3A"
                       "oauth%3Aclient-assertion-type%3Ajwt-bearer"
                       "&client_assertion=");
          azb_url_encode(&body, assertion.p, assertion.n);
        }
        azb_buf_wipe(&assertion);
      }
      azb_buf_adds(&body, "&scope=");
      azb_url_encode(&body, scope, sn);
      rq.body = body.p;
      rq.bodylen = body.n;
    }
    if (url.oom || body.oom)
      snprintf(o.problem, sizeof o.problem, "out of memory");
    if (o.problem[0] == '\0') {
      rq.url = url.p;
      http_fetch(c, &no, &rq, scope, sn, &o);
    }
    azb_buf_free(&url);
    azb_buf_wipe(&body);
  }
  if (!o.ok)
    return push_failure(L, c, cfg, &o);
  e = cache_find(c, scope, sn);
  lua_pushlstring(L, e->token, e->toklen);
  lua_pushinteger(L, (lua_Integer)e->expires_on);
  return 2;
}

/* cred:kind() -> "client_secret" | "workload" | "managed_identity" | "azure_cli" */
static int cred_kind(lua_State *L) {
  lua_pushstring(L, kinds[check_open_cred(L)->kind]);
  return 1;
}

/* cred:clear() -> true; drops (and wipes) cached tokens */
static int cred_clear(lua_State *L) {
  cache_clear(check_open_cred(L));
  lua_pushboolean(L, 1);
  return 1;
}

/* cred:close() -> true; also __gc and __close (idempotent) */
static int cred_close(lua_State *L) {
  cred_release((TokenCred *)luaL_checkudata(L, 1, AZB_TOKENCRED));
  lua_pushboolean(L, 1);
  return 1;
}

/* tostring(cred) -> "azbatch.TokenCredential(client_secret, tenant=..., client=...)" */
static int cred_tostring(lua_State *L) {
  TokenCred *c = (TokenCred *)luaL_checkudata(L, 1, AZB_TOKENCRED);
  const char *t, *id;
  if (c->closed) {
    lua_pushliteral(L, AZB_TOKENCRED " (closed)");
    return 1;
  }
  lua_getiuservalue(L, 1, UV_CFG);
  lua_getfield(L, -1, "tenant");
  lua_getfield(L, -2, "client_id");
  t = lua_tostring(L, -2);
  id = lua_tostring(L, -1);
  lua_pushfstring(L, AZB_TOKENCRED "(%s%s%s%s%s)", kinds[c->kind],
                  t ? ", tenant=" : "", t ? t : "", id ? ", client=" : "",
                  id ? id : "");
  return 1;
}

static const luaL_Reg cred_methods[] = {
  { "token", cred_token },
  { "kind", cred_kind },
  { "clear", cred_clear },
  { "close", cred_close },
  { NULL, NULL }
};

static const luaL_Reg cred_meta[] = {
  { "__gc", cred_close },
  { "__close", cred_close },
  { "__tostring", cred_tostring },
  { NULL, NULL }
};

void azb_token_open(lua_State *L) {
  azb_newclass(L, AZB_TOKENCRED, cred_meta, cred_methods);
  lua_pop(L, 1);
  lua_pushcfunction(L, token_new);
  lua_setfield(L, -2, "token_credential");
}

/* }====================================================== */
