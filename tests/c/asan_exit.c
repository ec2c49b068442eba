/*
** asan_exit.c: preloaded (after libasan) by tests/asan.sh.
** Under the ASan preload, a process that loaded libcurl (gnutls, p11-kit)
** can deadlock in its exit handlers. Lua's os.exit calls exit() through
** the PLT, so this exit() runs first: flush stdio, run LeakSanitizer's
** check now (it exits with ASAN_OPTIONS' exitcode on a leak), and leave
** with the real status without running the handlers that hang.
*/
#include <stdio.h>
#include <unistd.h>

void __lsan_do_leak_check(void);
void exit(int status);

void exit(int status) {
  fflush(NULL);
  __lsan_do_leak_check();
  _exit(status);
}
