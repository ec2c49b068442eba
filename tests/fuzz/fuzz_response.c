/*
** fuzz_response.c: libFuzzer target for what azbatch makes of a service's
** answer: the response header block (azb_push_headers), Retry-After in its
** forms (retry.retry_after), Batch and ARM error bodies (client.api_error),
** list pages (client.read_page) and operation-status answers
** (arm.operation_state). The input is "<status byte><header block>\0<body>".
** Invariants: nothing raises; every string that reaches a message or an err
** table is free of control characters; a Retry-After is nil or a number in
** [0, 3600]; an error is kind "api" with a code.
*/
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lualib.h"
#include "lauxlib.h"

#include "azb.h"

int luaopen_azbatch_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the checks in Lua: the functions under test are Lua's. */
static const char CHECKS[] =
  "local client = require 'azbatch.client'\n"
  "local retry = require 'azbatch.retry'\n"
  "local arm = require 'azbatch.arm'\n"
  "local json = require 'azbatch.json'\n"
  "local function clean(s, what)\n"
  "  assert(type(s) == 'string', what .. ': not a string')\n"
  "  assert(not s:find('[%z\\1-\\31\\127]'), what .. ': control character')\n"
  "end\n"
  "return function(status, headers, body)\n"
  "  for k, v in pairs(headers) do\n"
  "    assert(type(k) == 'string' and k == k:lower() and #k > 0, 'header name')\n"
  "    clean(v, 'header value')\n"
  "  end\n"
  "  local ra = retry.retry_after(headers)\n"
  "  assert(ra == nil or (type(ra) == 'number' and ra >= 0 and ra <= 3600), 'retry_after')\n"
  "  local ok, msg, err = client.api_error(status, headers, body, 1)\n"
  "  assert(ok == nil, 'api_error succeeded')\n"
  "  clean(msg, 'message')\n"
  "  assert(err.kind == 'api' and type(err.code) == 'string', 'err')\n"
  "  clean(err.code, 'code'); clean(err.message or '', 'err.message')\n"
  "  for _, kv in ipairs(err.values) do clean(kv.key, 'key'); clean(kv.value, 'value') end\n"
  "  if err.request_id then clean(err.request_id, 'request id') end\n"
  "  local page = json.decode(body)\n"
  "  if page ~= nil then\n"
  "    local items, link, e = client.read_page(page, 'odata.nextLink', {}, '/pools')\n"
  "    if items then assert(json.is_array(items), 'items') ; assert(link == nil or type(link) == 'string')\n"
  "    else clean(link, 'page message'); assert(e.code == 'InvalidResponse') end\n"
  "    local st, code, m = arm.operation_state(page)\n"
  "    assert(st == nil or st == 'Succeeded' or st == 'Failed' or st == 'Canceled', 'state')\n"
  "    if code then clean(code, 'op code'); clean(m, 'op message') end\n"
  "  end\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lua_State *L;
  const char *zero;
  size_t hn;
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "azbatch.core", luaopen_azbatch_core, 0);
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushliteral(L, "lua/?.lua;lua/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    if (luaL_loadstring(L, CHECKS) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
      fprintf(stderr, "fuzz_response: %s\n", lua_tostring(L, -1));
      abort();
    }
    lua_setglobal(L, "check");
  }
  if (size < 1)
    return 0;
  zero = memchr(data + 1, '\0', size - 1);
  hn = zero ? (size_t)(zero - (const char *)data) - 1 : size - 1;
  lua_getglobal(L, "check");
  lua_pushinteger(L, 100 + data[0] % 500);                  /* a status */
  azb_push_headers(L, (const char *)data + 1, hn);
  if (zero)
    lua_pushlstring(L, zero + 1, size - hn - 2);
  else
    lua_pushliteral(L, "");
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    fprintf(stderr, "invariant violated: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  return 0;
}
