/*
** azb_core.c: luaopen_azbatch_core builds the module table and lets each
** area register its functions into it.
*/
#include "azb.h"

__attribute__((visibility("default")))
int luaopen_azbatch_core(lua_State *L);

int luaopen_azbatch_core(lua_State *L) {
  luaL_checkversion(L);
  lua_newtable(L);
  lua_pushliteral(L, AZB_VERSION);
  lua_setfield(L, -2, "_VERSION");
  lua_pushliteral(L, AZB_API_VERSION);
  lua_setfield(L, -2, "API_VERSION");
  azb_text_open(L);
  azb_json_open(L);
  azb_image_open(L);
  azb_agent_open(L);
  azb_agentpick_open(L);
  azb_schema_open(L);
  azb_plan_open(L);
  azb_preflight_open(L);
  azb_clock_open(L);
  azb_codec_open(L);
  azb_url_open(L);
  azb_opts_open(L);
  azb_proc_open(L);
  azb_http_open(L);
  azb_auth_open(L);
  azb_token_open(L);
  return 1;
}
