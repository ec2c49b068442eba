/* placeholder until the plan area lands */
#include "azb.h"
void azb_plan_open(lua_State *L) { (void)L; }
lua_Integer azb_plan_replicas(lua_Integer nodes) { return nodes; }
double azb_plan_resize_timeout(lua_Integer nodes) { return (double)nodes; }
