#!/bin/sh
# Rebuilds into build-asan/ with ASan and UBSan and runs every spec and the
# embedding test under them, with leak detection on. The example host is
# built there too, and host_spec runs that build (AZBATCH_HOST), as
# cli_launcher_spec does the native CLI (AZBATCH_CLI_BIN): a leak makes
# either exit 23, and the spec's status checks fail.
# - core.so is linked with -z nodelete so leak stacks keep their symbols
#   after Lua dlcloses it (instead of preloading it into every process,
#   which drags libcurl's gnutls/p11-kit into each child, where they hang);
# - tests/c/asan_exit.c is preloaded to run the leak check at exit() and
#   skip exit handlers that deadlock under the ASan preload.
cd "$(dirname "$0")/.." || exit 2
. tests/env.sh
FLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
make --no-print-directory BUILD=build-asan CFLAGS="$FLAGS" LDFLAGS="$FLAGS -Wl,-z,nodelete" \
  all build-asan/embed_test build-asan/azbatch-host >/dev/null || { echo "not ok 1 - asan build"; exit 1; }
cc -shared -fPIC -O1 -o build-asan/asan_exit.so tests/c/asan_exit.c || { echo "not ok 1 - asan exit shim"; exit 1; }
ASAN_LIB=$(gcc -print-file-name=libasan.so)
UBSAN_LIB=$(gcc -print-file-name=libubsan.so)
export ASAN_OPTIONS=detect_leaks=1:exitcode=23
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
status=0
export AZBATCH_HOST="$PWD/build-asan/azbatch-host"
export AZBATCH_CLI_BIN="$PWD/build-asan/bin/azbatch"
LD_PRELOAD="$ASAN_LIB $UBSAN_LIB $PWD/build-asan/asan_exit.so" \
  busted -o TAP --cpath='build-asan/?.so' || status=1
# The embedding host links the sanitizers itself.
build-asan/embed_test tests/c/embed_script.lua lua || status=1
exit $status
