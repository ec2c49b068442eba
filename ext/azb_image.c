/* placeholder until the image area lands */
#include "azb.h"
void azb_image_open(lua_State *L) { (void)L; }
void azb_image_check(azb_vctx *v, int idx) { (void)idx; lua_pushnil(v->L); }
void azb_image_check_agent(azb_vctx *v, int imgidx, const char *agent) { (void)v; (void)imgidx; (void)agent; }
