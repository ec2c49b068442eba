/*
** azb_clock.c: a monotonic clock for deadlines, retries and the scheduler
** (os.time has whole seconds, os.clock measures CPU, neither will do).
*/
#include <time.h>

#include "azb.h"

/* core.now() -> seconds (float) on a monotonic clock */
static int clock_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* core.time() -> seconds since the epoch (float), for token expiry and dates */
static int clock_time(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

static const luaL_Reg clock_funcs[] = {
  {"now", clock_now},
  {"time", clock_time},
  {NULL, NULL}
};

void azb_clock_open(lua_State *L) {
  luaL_setfuncs(L, clock_funcs, 0);
}
