/*
** azb_tokenreq.c: forming token requests. A client-credentials form
** (the secret, or the federated token file read fresh each time) written
** by the transport straight into the request's own wiped buffer; the
** managed identity's IMDS URL; and the Azure CLI's command line, run
** without a shell. cred:start hands its request to the transport;
** cred:run runs az and reads what it printed (azb_tokenans.c).
*/
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "azb_token.h"

#define MAX_FILE          (1 << 20)    /* federated token file, CLI output */
#define MAX_ANSWER        (64 * 1024)  /* a token endpoint's answer */


/*
** {======================================================
** Token requests
** =======================================================
*/

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

/*
** cred:start(http, scope) -> Request, or fail: the token request, started
** on the transport. Its answer is read by cred:finish, never by Lua.
*/
int azb_token_start(lua_State *L) {
  TokenCred *c = azb_token_check_open(L);
  size_t sn;
  const char *scope = azb_token_check_scope(L, 3, &sn);
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
    return azb_token_fail(L, c);
  return 1;
}

/*
** cred:run(scope) -> expires_on, or fail: the azure_cli credential runs
** `az account get-access-token` (without a shell). This blocks while az
** runs; it is the one token source that is a program, not a request.
*/
int azb_token_run(lua_State *L) {
  TokenCred *c = azb_token_check_open(L);
  size_t sn, rn;
  const char *scope = azb_token_check_scope(L, 2, &sn), *res;
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
    azb_token_cli_problem(&err, argv[0], &o);
  else if (o.problem[0] == '\0') {
    azb_token_take_response(c, scope, sn, &out, &o);
    if (!o.ok && o.problem[0] == '\0')
      snprintf(o.problem, sizeof o.problem, "az printed no access token");
  }
  azb_buf_wipe(&out);
  azb_buf_free(&err);
  if (!o.ok) {
    azb_token_push_failure(L, c, &o);
    return 3;
  }
  lua_pushinteger(L, (lua_Integer)o.expires_on);
  return 1;
}

/* }====================================================== */
