/*
** fuzz_preflight.c: libFuzzer target for core.preflight and
** core.choose_node_agent. Each input is decoded with core.json_decode into a
** facts table; the top-level facts, whose wrong types are misuse and
** raise by contract, are put right (now a number, credential and
** image.kind valid values, pool and image tables, optional facts tables
** or absent); everything below them is the fuzzer's. Neither function
** may then raise, and every answer must be well formed (checked by the
** Lua below). Each input runs in a fresh lua_State that is closed after
** it, so ASan's leak check covers the C code per input.
**
** clang -g -O1 -fsanitize=fuzzer,address,undefined -Iext -I/usr/include/lua5.4 \
**   tests/fuzz/fuzz_preflight.c ext/[all].c -llua5.4 -lcurl -lcrypto -ldl -lm
*/
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lua.h"
#include "lualib.h"
#include "lauxlib.h"

int luaopen_azbatch_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* prepare(facts, byte): the top-level facts as the contract wants them */
static const char PREPARE[] =
  "local KINDS = { 'marketplace', 'gallery_version', 'gallery_latest',\n"
  "  'managed_image', 'shared_gallery', 'community_gallery', 'vhd' }\n"
  "local OPTIONAL = { 'account', 'usage', 'image_definition', 'image_version',\n"
  "  'image_versions', 'managed_image', 'vm_size', 'supported_images',\n"
  "  'storage_account', 'unread' }\n"
  "return function(f, b)\n"
  "  if math.type(f.now) == nil or f.now ~= f.now or math.abs(f.now) >= 1e13 then\n"
  "    f.now = 1767225600\n"
  "  end\n"
  "  if f.credential ~= 'entra' and f.credential ~= 'shared_key' then\n"
  "    f.credential = b % 2 == 0 and 'entra' or 'shared_key'\n"
  "  end\n"
  "  if type(f.pool) ~= 'table' then f.pool = {} end\n"
  "  if type(f.image) ~= 'table' then f.image = {} end\n"
  "  local known = false\n"
  "  for _, k in ipairs(KINDS) do known = known or f.image.kind == k end\n"
  "  if not known then f.image.kind = KINDS[b % #KINDS + 1] end\n"
  "  for _, k in ipairs(OPTIONAL) do\n"
  "    local t = type(f[k])\n"
  "    if t ~= 'nil' and t ~= 'table' and t ~= 'userdata' then f[k] = nil end\n"
  "  end\n"
  "end\n";

/* check_preflight(findings, derived), check_choice(sku, msg, err) */
static const char CHECK[] =
  "local RANK = { error = 1, warning = 2, info = 3 }\n"
  "local function line(s, what)\n"
  "  assert(type(s) == 'string' and #s > 0, what .. ' is not a string')\n"
  "  assert(not s:find('[\\r\\n]'), what .. ' is not one line: ' .. s)\n"
  "  assert(utf8.len(s), what .. ' is not UTF-8: ' .. s)\n"
  "end\n"
  "local function preflight(findings, derived)\n"
  "  assert(type(findings) == 'table' and type(derived) == 'table', 'two tables')\n"
  "  local last = 1\n"
  "  for i = 1, #findings do\n"
  "    local x = findings[i]\n"
  "    assert(type(x) == 'table', 'finding ' .. i)\n"
  "    local r = RANK[x.severity]\n"
  "    assert(r, 'severity ' .. tostring(x.severity))\n"
  "    assert(r >= last, 'findings out of order')\n"
  "    last = r\n"
  "    assert(type(x.code) == 'string' and x.code:match('^[A-Z][A-Z_]+$'), 'code')\n"
  "    line(x.message, 'message')\n"
  "    if x.fix ~= nil then line(x.fix, 'fix') end\n"
  "    assert(x.field == nil or (type(x.field) == 'string' and x.field:match('^pool')),\n"
  "      'field')\n"
  "    assert(x.code ~= 'CHECK_SKIPPED' or (x.severity == 'warning' and\n"
  "      type(x.group) == 'string'), 'skipped checks are warnings with a group')\n"
  "  end\n"
  "  for k in pairs(findings) do\n"
  "    assert(math.type(k) == 'integer' and k >= 1 and k <= #findings, 'an array')\n"
  "  end\n"
  "  assert(math.type(derived.nodes) == 'integer' and derived.nodes >= 0, 'nodes')\n"
  "  assert(math.type(derived.replicas_needed) == 'integer' and\n"
  "    derived.replicas_needed >= 1, 'replicas_needed')\n"
  "  local t = derived.resize_timeout_needed\n"
  "  assert(t == nil or (type(t) == 'string' and t:match('^P')), 'resize timeout')\n"
  "  for _, k in ipairs { 'image_os', 'hyperv_generation', 'latest_version',\n"
  "                       'node_agent' } do\n"
  "    assert(derived[k] == nil or type(derived[k]) == 'string', k)\n"
  "  end\n"
  "  assert(derived.cores_needed == nil or math.type(derived.cores_needed) ==\n"
  "    'integer', 'cores_needed')\n"
  "end\n"
  "local function choice(sku, msg, err)\n"
  "  if sku ~= nil then\n"
  "    assert(type(sku) == 'string' and #sku > 0, 'sku')\n"
  "    line(msg, 'reason')\n"
  "    return\n"
  "  end\n"
  "  line(msg, 'message')\n"
  "  assert(type(err) == 'table' and err.kind == 'validation', 'err.kind')\n"
  "  assert(type(err.candidates) == 'table', 'err.candidates')\n"
  "  for i, c in ipairs(err.candidates) do\n"
  "    assert(type(c) == 'string', 'candidate ' .. i)\n"
  "  end\n"
  "end\n"
  "return preflight, choice\n";

static void die(lua_State *L, const char *what) {
  fprintf(stderr, "%s: %s\n", what, lua_tostring(L, -1));
  abort();
}

static lua_State *setup(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "azbatch.core", luaopen_azbatch_core, 0);
  lua_setglobal(L, "core");
  if (luaL_loadstring(L, PREPARE) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
    die(L, "prepare");
  lua_setglobal(L, "prepare");
  if (luaL_loadstring(L, CHECK) != LUA_OK || lua_pcall(L, 0, 2, 0) != LUA_OK)
    die(L, "check");
  lua_setglobal(L, "check_choice");
  lua_setglobal(L, "check_preflight");
  return L;
}

/* Call global fn(facts) (must not raise), then check(results...). */
static void run(lua_State *L, const char *fn, int facts, const char *check,
                int nres) {
  int top = lua_gettop(L);
  lua_getglobal(L, "core");
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  lua_pushvalue(L, facts);
  if (lua_pcall(L, 1, nres, 0) != LUA_OK)
    die(L, fn);   /* facts of the right top-level shape never raise */
  lua_getglobal(L, check);
  lua_insert(L, top + 1);
  if (lua_pcall(L, nres, 0, 0) != LUA_OK)
    die(L, check);
  lua_settop(L, top);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L;
  int facts;
  L = setup();
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "json_decode");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    facts = lua_gettop(L);
    lua_getglobal(L, "prepare");
    lua_pushvalue(L, facts);
    lua_pushinteger(L, size > 0 ? data[size - 1] : 0);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK)
      die(L, "prepare");
    run(L, "preflight", facts, "check_preflight", 2);
    run(L, "choose_node_agent", facts, "check_choice", 3);
  }
  lua_close(L);
  return 0;
}
