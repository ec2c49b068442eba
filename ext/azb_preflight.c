/*
** azb_preflight.c: core.preflight, the pure preflight rules. Facts in
** (the pool body, and the ARM and data-plane resources the Lua layer
** read, as they were read), findings out, each with a stable code, the
** pool field it concerns, a one-line message and a fix. Reading turns
** the facts into C structs (azb_pffacts.c), the rules judge those
** (azb_pfimage.c, azb_pfagent.c, azb_pfsize.c), and only the emitting of
** findings builds Lua values (azb_pfemit.c). A check that cannot run
** says so in a CHECK_SKIPPED warning and never makes an error on its own.
*/
#include <string.h>

#include "azb_preflight.h"

/*
** {======================================================
** core.preflight
** =======================================================
*/

static void set_int(lua_State *L, int t, const char *k, long long v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, t, k);
}

static void set_span(lua_State *L, int t, const char *k, azb_span s) {
  if (s.p == NULL)
    return;
  lua_pushlstring(L, s.p, s.n);
  lua_setfield(L, t, k);
}

/* Ask core.choose_node_agent (upvalue 1); leaves its three results. */
static void ask_chooser(pf *c) {
  lua_State *L = c->L;
  luaL_checkstack(L, 8, NULL);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_call(L, 1, 3);
  c->chose = 1;
  c->chosen = lua_gettop(L) - 2;
  c->reason = c->chosen + 1;
  if (lua_type(L, c->chosen) == LUA_TSTRING)
    c->chosen_sku.p = lua_tolstring(L, c->chosen, &c->chosen_sku.n);
}

/*
** core.preflight(facts) -> findings, derived
** (raises only on misuse: facts not a table, or a top-level fact of the
** wrong Lua type)
*/
static int preflight(lua_State *L) {
  pf c;
  int result, d;
  long long bd, bl;
  memset(&c, 0, sizeof c);
  c.L = L;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_checkstack(L, 64, NULL);
  azb_pf_read(&c);
  if (c.kind != K_VHD && (c.si_t != 0 || c.agent.p == NULL))
    ask_chooser(&c);
  azb_pf_read_supported(&c);

  /* the findings, by severity */
  for (int s = 0; s < NSEV; s++) {
    lua_newtable(L);
    c.list[s] = lua_gettop(L);
  }
  azb_pf_rule_kind(&c);
  azb_pf_rule_vhd(&c);
  azb_pf_rule_credential(&c);
  azb_pf_rule_access(&c);
  azb_pf_rule_subscription(&c);
  azb_pf_rule_size(&c, &bd, &bl);
  c.nodes = bd + bl;
  c.replicas_needed = (long long)azb_plan_replicas((lua_Integer)c.nodes);
  azb_pf_rule_latest(&c);
  azb_pf_rule_region(&c);
  azb_pf_rule_definition(&c);
  azb_pf_rule_agent(&c);
  azb_pf_rule_hyperv(&c);
  azb_pf_rule_resize(&c);
  azb_pf_rule_quota(&c, bd, bl);
  azb_pf_rule_eol(&c);

  lua_createtable(L, 0, 0);
  result = lua_gettop(L);
  if (luaL_getmetatable(L, AZB_ARRAY) == LUA_TTABLE)
    lua_setmetatable(L, result);
  else
    lua_pop(L, 1);
  for (int s = 0; s < NSEV; s++) {
    size_t n = lua_rawlen(L, c.list[s]);
    for (size_t i = 1; i <= n; i++) {
      lua_rawgeti(L, c.list[s], (lua_Integer)i);
      lua_rawseti(L, result, (lua_Integer)lua_rawlen(L, result) + 1);
    }
  }

  /* derived */
  lua_createtable(L, 0, 9);
  d = lua_gettop(L);
  set_int(L, d, "nodes", c.nodes);
  set_int(L, d, "replicas_needed", c.replicas_needed);
  if (!c.autoscale) {
    azb_pf_push_duration(L, azb_plan_resize_timeout((lua_Integer)c.nodes));
    lua_setfield(L, d, "resize_timeout_needed");
  }
  if (c.kind == K_GLATEST)
    set_span(L, d, "latest_version", c.latest);
  if (azb_pf_image_os(&c) != OS_UNKNOWN) {
    lua_pushstring(L, azb_pf_image_os(&c) == OS_WINDOWS ? "windows" : "linux");
    lua_setfield(L, d, "image_os");
  }
  if (azb_pf_image_generation(&c) != NULL) {
    lua_pushstring(L, azb_pf_image_generation(&c));
    lua_setfield(L, d, "hyperv_generation");
  }
  if (azb_pf_vmsize_usable(&c) && c.vcpus > 0)
    set_int(L, d, "cores_needed", (bd + bl) * c.vcpus);
  set_span(L, d, "node_agent", azb_pf_pool_agent(&c));
  return 2;
}

/* }====================================================== */


void azb_preflight_open(lua_State *L) {
  lua_getfield(L, -1, "choose_node_agent");
  if (!lua_isfunction(L, -1))
    luaL_error(L, "azbatch.core: the preflight needs choose_node_agent "
               "registered first");
  lua_pushcclosure(L, preflight, 1);
  lua_setfield(L, -2, "preflight");
}
