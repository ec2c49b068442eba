/*
** azb_clock.c: a monotonic clock for deadlines, retries and the scheduler
** (os.time has whole seconds, os.clock measures CPU, neither will do).
*/
#include <time.h>

#include "azb.h"

double azb_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* core.now() -> seconds (float) on a monotonic clock */
static int clock_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)azb_monotonic());
  return 1;
}

/* core.time() -> seconds since the epoch (float), for token expiry and dates */
static int clock_time(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* core.sleep(seconds) -> true: blocks the process (the scheduler's nap) */
static int clock_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  struct timespec ts;
  luaL_argcheck(L, s >= 0 && s <= 86400.0 * 365, 1,
                "must be a finite number of seconds >= 0");
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0)
    ;   /* EINTR: sleep the rest */
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg clock_funcs[] = {
  {"now", clock_now},
  {"time", clock_time},
  {"sleep", clock_sleep},
  {NULL, NULL}
};

void azb_clock_open(lua_State *L) {
  luaL_setfuncs(L, clock_funcs, 0);
}
