#!/bin/sh
# Builds each libFuzzer target (clang) and runs it for a bounded time.
# usage: tests/fuzz/run.sh [SECONDS] [TARGET...]   (default 60 s, all targets)
# Crashes land in build-fuzz/artifacts/; keep them as regression rows.
cd "$(dirname "$0")/../.." || exit 2
SECS=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_\(.*\)\.c|\1|')}
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found (apt-get install clang)"; exit 2; }
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_POSIX_C_SOURCE=200809L"
INC="-Iext -I$(pkg-config --variable=includedir lua5.4)/lua5.4 $(pkg-config --cflags libcurl libcrypto)"
LIBS="$(pkg-config --libs lua5.4 libcurl libcrypto) -lm -ldl"
mkdir -p build-fuzz/artifacts
status=0
for t in $TARGETS; do
  bin=build-fuzz/fuzz_$t
  $CC $FLAGS $INC -o "$bin" "tests/fuzz/fuzz_$t.c" ext/*.c $LIBS || { status=1; continue; }
  corpus=build-fuzz/corpus/$t
  mkdir -p "$corpus"
  [ -d "tests/fuzz/seeds/$t" ] && cp -n tests/fuzz/seeds/$t/* "$corpus"/ 2>/dev/null
  echo "== fuzz $t for ${SECS}s"
  # The validator and JSON targets keep one Lua state across inputs, whose
  # heap the per-input leak check would rescan each time; leaks are the ASan
  # stage's job.
  extra=""
  case $t in validate|json|response) extra="-detect_leaks=0" ;; esac
  result=ok
  "$bin" -max_total_time="$SECS" -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/$t- $extra \
    "$corpus" >build-fuzz/$t.log 2>&1 || { status=1; result=FAILED; }
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' build-fuzz/$t.log)
  echo "fuzz $t: ${runs:-?} executions in ${SECS}s, exit $result"
  grep -E 'ERROR|SUMMARY|crash-' build-fuzz/$t.log | head -5
done
exit $status
