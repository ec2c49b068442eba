#!/bin/sh
# Rebuilds into build-asan/ with ASan and UBSan and runs the specs and the
# embedding test under them. The runtimes and the module itself are
# preloaded so leak stacks keep their symbols after Lua dlcloses it.
cd "$(dirname "$0")/.." || exit 2
FLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
make --no-print-directory BUILD=build-asan CFLAGS="$FLAGS" LDFLAGS="$FLAGS" all build-asan/embed_test >/dev/null || {
  echo "not ok 1 - asan build"; exit 1; }
ASAN_LIB=$(gcc -print-file-name=libasan.so)
UBSAN_LIB=$(gcc -print-file-name=libubsan.so)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
status=0
LD_PRELOAD="$ASAN_LIB $UBSAN_LIB $PWD/build-asan/azbatch/core.so" \
  busted -o TAP --cpath='build-asan/?.so' || status=1
# The embedding host links the sanitizers itself.
build-asan/embed_test tests/c/embed_script.lua lua || status=1
exit $status
