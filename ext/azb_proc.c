/*
** azb_proc.c: the process: run a program without a shell and collect what
** it prints, with a deadline (the Azure CLI credential runs `az`); and
** keep the process's memory (keys, tokens) out of core dumps.
*/
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "azb.h"

extern char **environ;

int azb_run(const char *const argv[], double timeout, azb_buf *out,
            azb_buf *err, char *why, size_t whysz) {
  int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, st = 0, open_fds = 2, code = -1;
  posix_spawn_file_actions_t fa;
  pid_t pid;
  double t0;
  int rc;
  if (pipe(po) != 0 || pipe(pe) != 0) {
    snprintf(why, whysz, "pipe: %s", strerror(errno));
    goto closeall;
  }
  fcntl(po[0], F_SETFD, FD_CLOEXEC);
  fcntl(pe[0], F_SETFD, FD_CLOEXEC);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, po[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
  posix_spawn_file_actions_addclose(&fa, po[1]);
  posix_spawn_file_actions_addclose(&fa, pe[1]);
  {
    char *const *av = (char *const *)(void *)argv;   /* not modified */
    rc = strchr(argv[0], '/') ? posix_spawn(&pid, argv[0], &fa, NULL, av, environ)
                              : posix_spawnp(&pid, argv[0], &fa, NULL, av, environ);
  }
  posix_spawn_file_actions_destroy(&fa);
  close(po[1]);
  close(pe[1]);
  po[1] = pe[1] = -1;
  if (rc != 0) {
    snprintf(why, whysz, "cannot run '%s': %s", argv[0], strerror(rc));
    goto closeall;
  }
  t0 = azb_monotonic();
  while (open_fds > 0) {
    struct pollfd pf[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
    double left;
    int r;
    left = timeout - (azb_monotonic() - t0);
    if (left <= 0) {
      kill(pid, SIGKILL);
      snprintf(why, whysz, "'%s' timed out after %g s", argv[0], timeout);
      break;
    }
    r = poll(pf, 2, left > 60 ? 60000 : (int)(left * 1000) + 1);
    if (r < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2 && r > 0; i++) {
      if (pf[i].fd >= 0 && (pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        char chunk[4096];
        ssize_t n = read(pf[i].fd, chunk, sizeof chunk);
        azb_buf *b = i == 0 ? out : err;
        if (n > 0 && b->n < (1u << 20))   /* plenty for az output */
          azb_buf_add(b, chunk, (size_t)n);
        else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
          close(pf[i].fd);
          if (i == 0) po[0] = -1; else pe[0] = -1;
          open_fds--;
        }
        OPENSSL_cleanse(chunk, sizeof chunk);
      }
    }
  }
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(st))
    code = WEXITSTATUS(st);
  else if (why[0] == '\0')
    snprintf(why, whysz, "'%s' was killed by a signal", argv[0]);
closeall:
  for (int i = 0; i < 2; i++) {
    if (po[i] >= 0) close(po[i]);
    if (pe[i] >= 0) close(pe[i]);
  }
  return code;
}

/*
** core.disable_core_dumps() -> true, or fail: no core file, and not
** dumpable (no core via the kernel's pipe handler, no ptrace by others);
** a process holding account keys and tokens (the CLI) calls it first.
*/
static int proc_no_core(lua_State *L) {
  struct rlimit none = { 0, 0 };
  if (setrlimit(RLIMIT_CORE, &none) != 0 || prctl(PR_SET_DUMPABLE, 0) != 0)
    return azb_fail(L, "transport", NULL, "disable_core_dumps: %s",
                    strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
}

/* core.isatty(fd) -> boolean: is the descriptor a terminal? (progress
** bars and colour are for people; pipes and files get plain lines) */
static int proc_isatty(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 1, "a file descriptor expected");
  lua_pushboolean(L, isatty((int)fd) == 1);
  return 1;
}

void azb_proc_open(lua_State *L) {
  lua_pushcfunction(L, proc_no_core);
  lua_setfield(L, -2, "disable_core_dumps");
  lua_pushcfunction(L, proc_isatty);
  lua_setfield(L, -2, "isatty");
}
