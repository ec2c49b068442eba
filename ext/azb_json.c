/* placeholder until the json area lands */
#include "azb.h"
void azb_json_open(lua_State *L) { (void)L; }
