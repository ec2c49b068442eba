/*
** fuzz_token.c: libFuzzer target for what azbatch makes of a token
** endpoint's answer (azb_token_take_response: OAuth's and the Azure CLI's
** fields, expiry forms, error bodies) and of az's stderr
** (azb_token_cli_problem). The input is "<status byte><body>".
** Invariants: a token is cached only when it has no control character or
** blank and expires in [now + 60 s, now + 1 day]; the fail's message and
** every string of its err table are free of control characters and never
** hold the client secret, whatever the answer echoes.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua.h"
#include "lualib.h"
#include "lauxlib.h"

#include "azb_token.h"

int luaopen_azbatch_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-client-secret-Value~42"
#define SCOPE  "https://batch.core.windows.net//.default"

static const long STATUSES[] = { 0, 200, 200, 200, 400, 401, 403, 429, 500, 503 };

static void check_clean(const char *s, size_t n, const char *what, int secret) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F) {
      fprintf(stderr, "fuzz_token: control character in %s\n", what);
      abort();
    }
  if (secret && n >= sizeof SECRET - 1) {
    for (size_t i = 0; i + sizeof SECRET - 1 <= n; i++)
      if (memcmp(s + i, SECRET, sizeof SECRET - 1) == 0) {
        fprintf(stderr, "fuzz_token: the secret in %s\n", what);
        abort();
      }
  }
}

/* The fail triple on top of the stack: nil, message, err. */
static void check_fail(lua_State *L) {
  size_t n;
  const char *s = lua_tolstring(L, -2, &n);
  if (!lua_isnil(L, -3) || s == NULL || !lua_istable(L, -1))
    abort();
  check_clean(s, n, "message", 1);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    if (lua_type(L, -1) == LUA_TSTRING) {
      s = lua_tolstring(L, -1, &n);
      check_clean(s, n, lua_tostring(L, -2), 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lua_State *L;
  static TokenCred *cred;
  azb_buf body;
  outcome o;
  double now = (double)time(NULL);
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "azbatch.core", luaopen_azbatch_core, 0);
    lua_getfield(L, -1, "token_credential");
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "client_secret");
    lua_setfield(L, -2, "kind");
    lua_pushliteral(L, "00000000-0000-0000-0000-0000000000aa");
    lua_setfield(L, -2, "tenant");
    lua_pushliteral(L, "00000000-0000-0000-0000-0000000000c1");
    lua_setfield(L, -2, "client_id");
    lua_pushliteral(L, SECRET);
    lua_setfield(L, -2, "client_secret");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || (cred = luaL_testudata(L, -1, AZB_TOKENCRED)) == NULL) {
      fprintf(stderr, "fuzz_token: no credential: %s\n", lua_tostring(L, -1));
      abort();
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_token.cred");   /* kept alive */
    lua_settop(L, 0);
  }
  if (size < 1)
    return 0;
  azb_buf_init(&body);
  azb_buf_add(&body, data + 1, size - 1);
  memset(&o, 0, sizeof o);
  o.status = STATUSES[data[0] % (sizeof STATUSES / sizeof STATUSES[0])];
  azb_token_take_response(cred, SCOPE, sizeof SCOPE - 1, &body, &o);
  if (o.ok) {
    const tcache *e = cred->cache;
    if (e == NULL || e->toklen == 0 || o.expires_on < now + 59 || o.expires_on > now + 86401)
      abort();
    for (size_t i = 0; i < e->toklen; i++)
      if ((unsigned char)e->token[i] <= ' ' || e->token[i] == 0x7F)
        abort();
  } else {
    if (o.problem[0] == '\0' && o.error[0] == '\0')
      snprintf(o.problem, sizeof o.problem, "HTTP %ld from the token endpoint", o.status);
    azb_token_push_failure(L, cred, &o);
    check_fail(L);
  }
  /* the same bytes as az's stderr (an azure_cli credential has no secret) */
  memset(&o, 0, sizeof o);
  o.exit_code = 1;
  azb_token_cli_problem(&body, "az", &o);
  check_clean(o.problem, strlen(o.problem), "az problem", 0);
  azb_buf_wipe(&body);
  return 0;
}
