/*
** azbatch.c: the native CLI launcher. It runs azbatch.cli exactly as
** scripts/azbatch does under lua5.4, with the core linked in: the dynamic
** loader binds libcurl and its dependencies at exec time, lazily, where
** lua5.4's require dlopens them with RTLD_NOW. That and no dlopen scope
** make a cold `pool show` 25M instructions instead of 31M (make profile).
**
** The Lua modules come from AZBATCH_LUA_DIR, fixed at build time: the
** precompiled build/lua in a checkout, INST_LUADIR when installed; LUA_PATH
** still applies after it.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#ifndef AZBATCH_LUA_DIR
#error "AZBATCH_LUA_DIR must name the directory of the azbatch Lua modules"
#endif

int luaopen_azbatch_core(lua_State *L);

static lua_State *running = NULL;   /* while the CLI runs: the SIGINT hook's */
static lua_State *volatile state = NULL;   /* kept to exit: reachable for leak checkers */

/* As lua5.4 does: SIGINT raises "interrupted!" at the next Lua
** instruction (the CLI's own handler closes what it opened); a second
** SIGINT kills. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void on_sigint(int sig) {
  signal(sig, SIG_DFL);
  if (running != NULL)   /* lua_sethook is safe in a handler (ldebug.c) */
    lua_sethook(running, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* Is the error (its first line) the SIGINT hook's? */
static int interrupted(const char *msg) {
  static const char word[] = "interrupted!";
  size_t n = strcspn(msg, "\n"), w = sizeof word - 1;
  return n >= w && memcmp(msg + n - w, word, w) == 0;
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg != NULL ? msg : "(error object is not a string)", 1);
  return 1;
}

/* package.path = AZBATCH_LUA_DIR/?.lua;AZBATCH_LUA_DIR/?/init.lua;<default> */
static void set_path(lua_State *L) {
  lua_getglobal(L, "package");
  lua_pushliteral(L, AZBATCH_LUA_DIR "/?.lua;" AZBATCH_LUA_DIR "/?/init.lua;");
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
}

/* The CLI's status; raises if azbatch.cli cannot be loaded or main() fails. */
static int run(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  lua_settop(L, 0);
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_azbatch_core);
  lua_setfield(L, -2, "azbatch.core");
  lua_pop(L, 1);
  set_path(L);
  lua_createtable(L, argc > 1 ? argc - 1 : 0, 1);   /* arg, as lua5.4 builds it */
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_pushvalue(L, -1);
  lua_setglobal(L, "arg");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "azbatch.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = state = luaL_newstate();
  int status;
  if (L == NULL) {
    fputs("azbatch: not enough memory\n", stderr);
    return 1;
  }
  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, run);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  running = L;
  signal(SIGINT, on_sigint);
  if (lua_pcall(L, 2, 1, 1) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (interrupted(msg)) {   /* before the CLI's own handler was in place */
      fputs("error: interrupted\n", stderr);
      return 130;
    }
    fprintf(stderr, "azbatch: %s\n", msg);
    return 1;
  }
  signal(SIGINT, SIG_DFL);
  running = NULL;
  status = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : (lua_toboolean(L, -1) ? 0 : 1);
  /* no lua_close, as scripts/azbatch's os.exit: the CLI closed its clients,
  ** and freeing every object would cost more than the call's request */
  return status;
}
