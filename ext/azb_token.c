/*
** azb_token.c: Microsoft Entra ID credentials (client secret, workload
** identity, managed identity, Azure CLI) with a per-scope token cache.
** Sans-I/O: C builds each token request (cred:start, which hands it to
** the transport) and reads its answer (cred:finish); the transport sends
** it like any other request, so it yields inside azbatch.parallel.
** Secrets, assertions, token answers and tokens stay in C memory that is
** wiped (OPENSSL_cleanse) when dropped; the transport puts the token into
** the Authorization header itself (azb_token_authorize).
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "azb.h"

enum { K_SECRET, K_WORKLOAD, K_MI, K_CLI };
static const char *const kinds[] =
  { "client_secret", "workload", "managed_identity", "azure_cli", NULL };

#define DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define DEFAULT_IMDS      "http://169.254.169.254/metadata/identity/oauth2/token"
#define MAX_FILE          (1 << 20)    /* federated token file, CLI output */
#define MAX_ANSWER        (64 * 1024)  /* a token endpoint's answer */
#define TEXT_MAX          400          /* error text kept for messages */
/* a token is trusted to live between a minute and a day, whatever it says */
#define LIFETIME_MIN      60.0
#define LIFETIME_MAX      86400.0

typedef struct tcache {
  struct tcache *next;
  char *scope, *token;
  size_t scopelen, toklen;
  double obtained, expires_on;
} tcache;

typedef struct TokenCred {
  int kind, closed;
  char *secret;             /* client_secret; wiped */
  size_t secretlen;
  azb_buf sent;             /* workload: the assertion last sent, for redaction */
  tcache *cache;
  double refresh_before, timeout, connect_timeout;
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

/*
** A cached token still good for use: not within the refresh window,
** which is at most half its life (a short-lived token is still used).
*/
static tcache *cache_fresh(TokenCred *c, const char *scope, size_t n) {
  tcache *e = cache_find(c, scope, n);
  double now = (double)time(NULL), before;
  if (e == NULL)
    return NULL;
  before = c->refresh_before;
  if (before > (e->expires_on - e->obtained) / 2)
    before = (e->expires_on - e->obtained) / 2;
  return now < e->expires_on - before ? e : NULL;
}

/* Store a token (copied); returns the entry or NULL (out of memory). */
static tcache *cache_put(TokenCred *c, const char *scope, size_t sn,
                         const char *tok, size_t tn, double now, double exp) {
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
  e->obtained = now;
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
  azb_buf_wipe(&c->sent);
  c->closed = 1;
}

/* }====================================================== */


/*
** {======================================================
** Reading an answer (pure C)
** =======================================================
*/

/* What a fetch found out; all fixed-size, so no Lua call needs a free. */
typedef struct outcome {
  int ok;                  /* token cached */
  long status;
  int exit_code;           /* azure_cli */
  double expires_on;
  char error[128], desc[TEXT_MAX], request_id[128], problem[TEXT_MAX];
} outcome;

/* One line of text from the network, cleaned for a message. */
static void copy_text(char *dst, size_t dsz, const char *s, size_t n) {
  size_t i = 0, k;
  /* the first line only: Entra appends "\r\nTrace ID: ..." */
  while (i < n && s[i] != '\r' && s[i] != '\n')
    i++;
  k = azb_text_clean(s, i, dst, dsz - 1);
  while (k > 0 && (dst[k - 1] == ' ' || dst[k - 1] == '.'))
    k--;
  dst[k] = '\0';
}

#define REDACTED "<redacted>"

/*
** Rewrite text (NUL-terminated, 'cap' bytes of room) with every copy of
** s[0..n) replaced by REDACTED; with n == 0, the value after each 'key'
** up to '&', a blank or a quote.
*/
static void redact(char *text, size_t cap, const char *key, const char *s,
                   size_t n) {
  char out[3 * TEXT_MAX];
  size_t len = strlen(text), o = 0, kl = key ? strlen(key) : 0;
  size_t i = 0;
  if (key == NULL && n < 4)   /* a short secret would redact ordinary words */
    return;
  while (i < len && o + 32 + sizeof REDACTED < sizeof out) {
    if (key == NULL && i + n <= len && memcmp(text + i, s, n) == 0) {
      memcpy(out + o, REDACTED, sizeof REDACTED - 1);
      o += sizeof REDACTED - 1;
      i += n;
    }
    else if (key != NULL && i + kl <= len && memcmp(text + i, key, kl) == 0) {
      size_t v = strcspn(text + i + kl, "& \t\"'");
      memcpy(out + o, key, kl);
      o += kl;
      i += kl;
      if (v > 0) {
        memcpy(out + o, REDACTED, sizeof REDACTED - 1);
        o += sizeof REDACTED - 1;
        i += v;
      }
    }
    else
      out[o++] = text[i++];
  }
  if (o >= cap)
    o = cap - 1;
  memcpy(text, out, o);
  text[o] = '\0';
}

/*
** An endpoint that echoes the request must not put what was sent into
** our messages: the secret or assertion, raw or URL-encoded, and
** anything after a "client_secret=" or "client_assertion=".
*/
static void redact_sent(const TokenCred *c, char *text, size_t cap) {
  const char *val[2] = { c->secret, c->sent.p };
  size_t len[2] = { c->secretlen, c->sent.n };
  for (int i = 0; i < 2; i++) {
    azb_buf enc;
    if (val[i] == NULL || len[i] == 0)
      continue;
    azb_buf_init(&enc);
    redact(text, cap, NULL, val[i], len[i]);
    if (azb_url_encode(&enc, val[i], len[i]) == 0)
      redact(text, cap, NULL, enc.p, enc.n);
    azb_buf_wipe(&enc);
  }
  redact(text, cap, "client_secret=", NULL, 0);
  redact(text, cap, "client_assertion=", NULL, 0);
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
** Read a token answer: cache the token, or fill the error fields.
** Field names: OAuth's, then the Azure CLI's. The expiry is clamped to
** [now + LIFETIME_MIN, now + LIFETIME_MAX]: a bad clock or a hostile
** answer can neither pin a token for years nor force a fetch per call.
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
  redact_sent(c, o->error, sizeof o->error);
  redact_sent(c, o->desc, sizeof o->desc);
  if (o->error[0] != '\0' || (o->status != 0 && (o->status < 200 || o->status > 299)))
    goto done;
  tok = f[F_TOK].type == AZB_JSTRING ? &f[F_TOK] : &f[F_CTOK];
  if (tok->type != AZB_JSTRING || tok->str.n == 0) {
    snprintf(o->problem, sizeof o->problem, "token response has no access token");
    goto done;
  }
  for (size_t i = 0; i < tok->str.n; i++)
    if ((unsigned char)tok->str.p[i] <= ' ' || tok->str.p[i] == 0x7F) {
      /* it goes into a header line */
      snprintf(o->problem, sizeof o->problem, "the access token holds "
               "control characters or spaces");
      goto done;
    }
  if (num_field(&f[F_ON]) > 0)
    exp = num_field(&f[F_ON]);
  else if (num_field(&f[F_IN]) >= 0)
    exp = now + num_field(&f[F_IN]);
  else if (f[F_CON].type == AZB_JSTRING)
    exp = local_time(f[F_CON].str.p);
  if (exp < 0)
    exp = now + 600;   /* no usable expiry: keep it briefly */
  if (!(exp >= now + LIFETIME_MIN))
    exp = now + LIFETIME_MIN;
  else if (exp > now + LIFETIME_MAX)
    exp = now + LIFETIME_MAX;
  if (cache_put(c, scope, sn, tok->str.p, tok->str.n, now, exp) == NULL)
    snprintf(o->problem, sizeof o->problem, "out of memory");
  else {
    o->ok = 1;
    o->expires_on = exp;
  }
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
  if (out->oom || out->n == 0 || out->n >= MAX_FILE) {
    snprintf(why, wsz, "the federated token file '%s' is %s", path,
             out->n == 0 && !out->oom ? "empty" : "too large");
    return -1;
  }
  return 0;
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

/* Every key must apply to this kind; strings where strings are due. */
static void check_cred_keys(lua_State *L, int kind) {
  const char *all[16];
  int n = 0;
  for (int i = 0; common_keys[i] != NULL; i++)
    all[n++] = common_keys[i];
  for (int i = 0; kind_keys[kind][i] != NULL; i++)
    all[n++] = kind_keys[kind][i];
  all[n] = NULL;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (k != NULL && !in_list(k, all)) {
      for (int j = 0; j < 4; j++)
        if (in_list(k, kind_keys[j]))
          luaL_error(L, "token_credential: option '%s' does not apply to "
                     "kind '%s'", k, kinds[kind]);
    }
    lua_pop(L, 1);
  }
  azb_check_options(L, 1, 1, "token_credential", all);
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    const char *k = lua_tostring(L, -2);
    if (strcmp(k, "kind") != 0 && strcmp(k, "refresh_before") != 0 &&
        strcmp(k, "timeout") != 0 && strcmp(k, "connect_timeout") != 0 &&
        lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "token_credential: option '%s': string expected, got %s",
                 k, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
}

/* core.token_credential(opts) -> TokenCredential, or fail (kind "validation") */
static int token_new(lua_State *L) {
  int kind, cfg;
  TokenCred *c;
  size_t slen = 0;
  const char *secret = NULL;
  char why[320];
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "kind");
  kind = luaL_checkoption(L, -1, NULL, kinds);
  lua_pop(L, 1);
  check_cred_keys(L, kind);
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
    azb_url u;
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
    if (azb_url_parse(lua_tostring(L, -1), 0, &u, why, sizeof why) != NULL)
      return azb_fail(L, "validation", "authority", "token_credential: "
                      "authority: %s", why);
    azb_url_free(&u);
    lua_setfield(L, cfg, "url");
    lua_pop(L, 3);
  }
  else if (kind == K_MI) {
    azb_url u;
    if (lua_getfield(L, 1, "endpoint") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushliteral(L, DEFAULT_IMDS);
    }
    if (strchr(lua_tostring(L, -1), '?') != NULL)
      return azb_fail(L, "validation", "endpoint", "token_credential: "
                      "endpoint: must not have a query");
    if (azb_url_parse(lua_tostring(L, -1), AZB_URL_IMDS, &u, why,
                      sizeof why) != NULL)
      return azb_fail(L, "validation", "endpoint", "token_credential: "
                      "endpoint: %s", why);
    azb_url_free(&u);
    lua_setfield(L, cfg, "url");
  }
  /* the handle: empty, metatable, settings; then the secret */
  c = (TokenCred *)lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  azb_buf_init(&c->sent);
  c->closed = 1;
  luaL_setmetatable(L, AZB_TOKENCRED);
  lua_pushvalue(L, cfg);
  lua_setiuservalue(L, -2, UV_CFG);
  c->kind = kind;
  c->refresh_before = azb_opt_seconds(L, 1, "refresh_before", 300, 0);
  c->timeout = azb_opt_seconds(L, 1, "timeout", 30, 0.001);
  c->connect_timeout = azb_opt_seconds(L, 1, "connect_timeout", 10, 0.001);
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

static void push_failure(lua_State *L, TokenCred *c, const outcome *o) {
  const char *aad;
  luaL_pushfail(L);
  if (o->error[0] != '\0')
    lua_pushfstring(L, "auth: %s credential: %s%s%s", kinds[c->kind],
                    o->error, o->desc[0] ? ": " : "", o->desc);
  else
    lua_pushfstring(L, "auth: %s credential: %s", kinds[c->kind], o->problem);
  lua_createtable(L, 0, 6);
  lua_pushliteral(L, "auth");
  lua_setfield(L, -2, "kind");
  if (o->status > 0) {
    lua_pushinteger(L, o->status);
    lua_setfield(L, -2, "status");
    /* an endpoint that is busy or broken may answer the next time */
    if (o->status == 429 || o->status >= 500) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "retryable");
    }
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
}

static const char *check_scope(lua_State *L, int i, size_t *sn) {
  const char *scope = luaL_checklstring(L, i, sn);
  luaL_argcheck(L, *sn > 0 && strlen(scope) == *sn, i,
                "scope is empty or holds a NUL");
  return scope;
}

/* The resource of a "/.default" scope (IMDS and az take a resource). */
static void push_resource(lua_State *L, const char *scope, size_t sn) {
  if (sn > 9 && memcmp(scope + sn - 9, "/.default", 9) == 0)
    lua_pushlstring(L, scope, sn - 9);
  else
    lua_pushlstring(L, scope, sn);
}

/* The form body of a client-credentials request, filled by the transport
** straight into the request's own wiped buffer. */
typedef struct formspec {
  TokenCred *c;
  const char *client_id, *token_file, *scope;
  size_t cidlen, sn;
  char *why;
  size_t whysz;
} formspec;

static const char *fill_form(void *ud, azb_buf *body) {
  formspec *f = (formspec *)ud;
  TokenCred *c = f->c;
  azb_buf_adds(body, "grant_type=client_credentials&client_id=");
  azb_url_encode(body, f->client_id, f->cidlen);
  if (c->kind == K_SECRET) {
    azb_buf_adds(body, "&client_secret=");
    azb_url_encode(body, c->secret, c->secretlen);
  }
  else {
    azb_buf_wipe(&c->sent);
    if (read_file(f->token_file, &c->sent, f->why, f->whysz) != 0)
      return f->why;
    azb_buf_adds(body, "&client_assertion_type=urn%3Aietf%3Aparams%3A"
                 "oauth%3Aclient-assertion-type%3Ajwt-bearer"
                 "&client_assertion=");
    azb_url_encode(body, c->sent.p, c->sent.n);
  }
  azb_buf_adds(body, "&scope=");
  azb_url_encode(body, f->scope, f->sn);
  return body->oom ? "out of memory" : NULL;
}

/* The fail triple on top, its message said as the credential's. */
static int credential_fail(lua_State *L, TokenCred *c) {
  const char *m = lua_tostring(L, -2);
  if (m != NULL && strncmp(m, "transport: ", 11) == 0)
    m += 11;
  lua_pushfstring(L, "auth: %s credential: %s", kinds[c->kind], m ? m : "?");
  lua_replace(L, -3);
  return 3;
}

/*
** cred:start(http, scope) -> Request, or fail: the token request, started
** on the transport. Its answer is read by cred:finish, never by Lua.
*/
static int cred_start(lua_State *L) {
  TokenCred *c = check_open_cred(L);
  size_t sn;
  const char *scope = check_scope(L, 3, &sn);
  azb_reqspec rs;
  azb_header hs[3];
  formspec form;
  char why[TEXT_MAX];
  int n = 0;
  luaL_checkudata(L, 2, AZB_HTTP);
  luaL_argcheck(L, c->kind != K_CLI, 1, "the azure_cli credential runs az: "
                "use cred:run(scope)");
  lua_settop(L, 3);
  lua_getiuservalue(L, 1, UV_CFG);                         /* 4 */
  memset(&rs, 0, sizeof rs);
  azb_http_defaults(L, 2, 0, &rs);
  rs.timeout = c->timeout;
  rs.connect_timeout = c->connect_timeout;
  rs.max_response = MAX_ANSWER;
  rs.verbose = 0;                   /* a token answer is never logged */
  rs.secret = 1;
  if (lua_getfield(L, 4, "user_agent") == LUA_TSTRING)
    rs.user_agent = lua_tostring(L, -1);
  if (lua_getfield(L, 4, "ca_file") == LUA_TSTRING)
    rs.ca_file = lua_tostring(L, -1);
  if (lua_getfield(L, 4, "ca_path") == LUA_TSTRING)
    rs.ca_path = lua_tostring(L, -1);
  lua_getfield(L, 4, "url");
  lua_getfield(L, 4, "client_id");
  hs[n].name = "Accept";
  hs[n].nlen = 6;
  hs[n].value = "application/json";
  hs[n++].vlen = 16;
  if (c->kind == K_MI) {
    size_t cn, un, rn;
    const char *cid = lua_tolstring(L, -1, &cn), *base = lua_tolstring(L, -2, &un);
    const char *res;
    char *p;
    luaL_Buffer b;
    push_resource(L, scope, sn);
    res = lua_tolstring(L, -1, &rn);
    p = luaL_buffinitsize(L, &b, un + 48 + 3 * rn + 11 + 3 * cn);
    memcpy(p, base, un);
    p += un;
    memcpy(p, "?api-version=2018-02-01&resource=", 33);
    p += 33;
    p += azb_url_encode_to(res, rn, p);
    if (cid != NULL) {
      memcpy(p, "&client_id=", 11);
      p += 11;
      p += azb_url_encode_to(cid, cn, p);
    }
    luaL_pushresultsize(&b, (size_t)(p - luaL_buffaddr(&b)));
    rs.method = "GET";
    rs.url_flags = AZB_URL_IMDS;
    hs[n].name = "Metadata";
    hs[n].nlen = 8;
    hs[n].value = "true";
    hs[n++].vlen = 4;
  }
  else {
    rs.method = "POST";
    rs.fill = fill_form;
    rs.fill_ud = &form;
    form.c = c;
    form.client_id = lua_tolstring(L, -1, &form.cidlen);
    form.scope = scope;
    form.sn = sn;
    form.why = why;
    form.whysz = sizeof why;
    lua_getfield(L, 4, "token_file");
    form.token_file = lua_tostring(L, -1);
    lua_pop(L, 1);
    hs[n].name = "Content-Type";
    hs[n].nlen = 12;
    hs[n].value = "application/x-www-form-urlencoded";
    hs[n++].vlen = 33;
    lua_pushvalue(L, -2);   /* the URL on top */
  }
  rs.url = lua_tostring(L, -1);
  rs.headers = hs;
  rs.nheaders = n;
  if (azb_http_start(L, 2, 0, &rs) != 1)
    return credential_fail(L, c);
  return 1;
}

/*
** cred:finish(scope, req) -> expires_on, or fail: reads the answer of a
** request from cred:start, caches the token and wipes the answer.
*/
static int cred_finish(lua_State *L) {
  TokenCred *c = check_open_cred(L);
  size_t sn;
  const char *scope = check_scope(L, 2, &sn);
  azb_response resp;
  outcome o;
  lua_settop(L, 3);
  memset(&o, 0, sizeof o);
  if (!azb_http_response(L, 3, &resp)) {
    /* the transport's fail, said as the credential's */
    lua_getfield(L, 3, "result");
    lua_pushvalue(L, 3);
    lua_call(L, 1, 3);
    azb_http_wipe(L, 3);
    azb_buf_wipe(&c->sent);
    if (!lua_isnil(L, -3)) {   /* an answer after all: cannot happen */
      lua_settop(L, 3);
      luaL_pushfail(L);
      lua_pushfstring(L, "auth: %s credential: no answer", kinds[c->kind]);
      lua_createtable(L, 0, 1);
      lua_pushliteral(L, "auth");
      lua_setfield(L, -2, "kind");
      return 3;
    }
    return credential_fail(L, c);
  }
  o.status = resp.status;
  take_request_id(resp.hdrs, &o);
  take_response(c, scope, sn, resp.body, &o);
  if (!o.ok && o.problem[0] == '\0' && o.error[0] == '\0')
    snprintf(o.problem, sizeof o.problem, "HTTP %ld from the token endpoint",
             o.status);
  azb_http_wipe(L, 3);
  azb_buf_wipe(&c->sent);
  if (!o.ok) {
    push_failure(L, c, &o);
    return 3;
  }
  lua_pushinteger(L, (lua_Integer)o.expires_on);
  return 1;
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

/*
** cred:run(scope) -> expires_on, or fail: the azure_cli credential runs
** `az account get-access-token` (without a shell). This blocks while az
** runs; it is the one token source that is a program, not a request.
*/
static int cred_run(lua_State *L) {
  TokenCred *c = check_open_cred(L);
  size_t sn, rn;
  const char *scope = check_scope(L, 2, &sn), *res;
  const char *argv[10];
  int n = 0;
  azb_buf out, err;
  outcome o;
  luaL_argcheck(L, c->kind == K_CLI, 1, "only the azure_cli credential "
                "runs a program: use cred:start(http, scope)");
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, UV_CFG);                        /* 3 */
  lua_getfield(L, 3, "command");                          /* 4 */
  lua_getfield(L, 3, "tenant");                           /* 5 */
  push_resource(L, scope, sn);                            /* 6 */
  res = lua_tolstring(L, 6, &rn);
  if (rn == 0 || res[0] == '-' ||
      strspn(res, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789:/._-") != rn)
    return azb_fail(L, "validation", "scope", "auth: azure_cli credential: "
                    "scope must be a URL of [A-Za-z0-9:/._-]");
  memset(&o, 0, sizeof o);
  argv[n++] = lua_isstring(L, 4) ? lua_tostring(L, 4) : "az";
  argv[n++] = "account";
  argv[n++] = "get-access-token";
  argv[n++] = "--output";
  argv[n++] = "json";
  argv[n++] = "--resource";
  argv[n++] = res;
  if (lua_isstring(L, 5)) {
    argv[n++] = "--tenant";
    argv[n++] = lua_tostring(L, 5);
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
  if (!o.ok) {
    push_failure(L, c, &o);
    return 3;
  }
  lua_pushinteger(L, (lua_Integer)o.expires_on);
  return 1;
}

/* cred:expires(scope) -> expires_on of a cached token still fresh, or nil */
static int cred_expires(lua_State *L) {
  TokenCred *c = check_open_cred(L);
  size_t sn;
  const char *scope = check_scope(L, 2, &sn);
  tcache *e = cache_fresh(c, scope, sn);
  if (e == NULL)
    lua_pushnil(L);
  else
    lua_pushinteger(L, (lua_Integer)e->expires_on);
  return 1;
}

/*
** cred:peek(scope) -> token, expires_on of a fresh cached token, or nil.
** For callers that need the token itself; azbatch's own requests never
** take it out of C (the transport writes the header).
*/
static int cred_peek(lua_State *L) {
  TokenCred *c = check_open_cred(L);
  size_t sn;
  const char *scope = check_scope(L, 2, &sn);
  tcache *e = cache_fresh(c, scope, sn);
  if (e == NULL) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, e->token, e->toklen);
  lua_pushinteger(L, (lua_Integer)e->expires_on);
  return 2;
}

const char *azb_token_authorize(lua_State *L, int idx, const char *scope,
                                size_t sn, azb_buf *out) {
  TokenCred *c = (TokenCred *)luaL_checkudata(L, idx, AZB_TOKENCRED);
  tcache *e;
  if (c->closed)
    return "the " AZB_TOKENCRED " is closed";
  /* an expired token is refused here; a fresh one is fetched by Lua */
  e = cache_find(c, scope, sn);
  if (e == NULL || (double)time(NULL) >= e->expires_on)
    return "no unexpired token for this scope (fetch one first)";
  azb_buf_adds(out, "Bearer ");
  azb_buf_add(out, e->token, e->toklen);
  return out->oom ? "out of memory" : NULL;
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
  { "start", cred_start },
  { "finish", cred_finish },
  { "run", cred_run },
  { "expires", cred_expires },
  { "peek", cred_peek },
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
