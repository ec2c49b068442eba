/* placeholder until the schema area lands */
#include "azb.h"
void azb_schema_open(lua_State *L) { (void)L; }
