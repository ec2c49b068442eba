/*
** azb_token.c: Microsoft Entra ID credentials (client secret, workload
** identity, managed identity, Azure CLI) with a per-scope token cache:
** the azbatch.TokenCredential object. Sans-I/O: C builds each token
** request (cred:start, azb_tokenreq.c, which hands it to the transport)
** and reads its answer (cred:finish, azb_tokenans.c); the transport sends
** it like any other request, so it yields inside azbatch.parallel.
** Secrets, assertions, token answers and tokens stay in C memory that is
** wiped (OPENSSL_cleanse) when dropped; the transport puts the token into
** the Authorization header itself (azb_token_authorize).
*/
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "azb_token.h"

#define DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define DEFAULT_IMDS      "http://169.254.169.254/metadata/identity/oauth2/token"

const char *const azb_token_kinds[] =
  { "client_secret", "workload", "managed_identity", "azure_cli", NULL };


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
tcache *azb_token_cache_put(TokenCred *c, const char *scope, size_t sn,
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
** Lua side
** =======================================================
*/

TokenCred *azb_token_check_open(lua_State *L) {
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
                     "kind '%s'", k, azb_token_kinds[kind]);
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
  kind = luaL_checkoption(L, -1, NULL, azb_token_kinds);
  lua_pop(L, 1);
  check_cred_keys(L, kind);
  for (int i = 0; required[kind][i] != NULL; i++)
    if (lua_getfield(L, 1, required[kind][i]) == LUA_TNIL)
      return luaL_error(L, "token_credential: option '%s' is required for "
                        "kind '%s'", required[kind][i], azb_token_kinds[kind]);
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
const char *azb_token_check_scope(lua_State *L, int i, size_t *sn) {
  const char *scope = luaL_checklstring(L, i, sn);
  luaL_argcheck(L, *sn > 0 && strlen(scope) == *sn, i,
                "scope is empty or holds a NUL");
  return scope;
}

/* cred:expires(scope) -> expires_on of a cached token still fresh, or nil */
static int cred_expires(lua_State *L) {
  TokenCred *c = azb_token_check_open(L);
  size_t sn;
  const char *scope = azb_token_check_scope(L, 2, &sn);
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
  TokenCred *c = azb_token_check_open(L);
  size_t sn;
  const char *scope = azb_token_check_scope(L, 2, &sn);
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
  lua_pushstring(L, azb_token_kinds[azb_token_check_open(L)->kind]);
  return 1;
}

/* cred:clear() -> true; drops (and wipes) cached tokens */
static int cred_clear(lua_State *L) {
  cache_clear(azb_token_check_open(L));
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
  lua_pushfstring(L, AZB_TOKENCRED "(%s%s%s%s%s)", azb_token_kinds[c->kind],
                  t ? ", tenant=" : "", t ? t : "", id ? ", client=" : "",
                  id ? id : "");
  return 1;
}

static const luaL_Reg cred_methods[] = {
  { "start", azb_token_start },
  { "finish", azb_token_finish },
  { "run", azb_token_run },
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
