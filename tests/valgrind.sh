#!/bin/sh
# The whole suite (every spec and the embedding test) under valgrind
# memcheck: any memory error or definite leak fails it. Busted runs in the
# traced process itself (a config without the 'lua' key, so it does not
# re-exec), and so do the CLI processes the specs start; the emulator
# (Python), the peers' tools, make, make demo's script and the shell tools (dash,
# mktemp and sed leak at exit by design) are not ours and are not traced.
cd "$(dirname "$0")/.." || exit 2
. tests/env.sh
BUILD=${BUILD:-build}
make --no-print-directory all "$BUILD/embed_test" "$BUILD/azbatch-host" >/dev/null || { echo "valgrind: build failed"; exit 1; }
# absolute: some specs run the CLI from a directory of their own
case $BUILD in /*) OUT=$BUILD/valgrind ;; *) OUT=$PWD/$BUILD/valgrind ;; esac
mkdir -p "$OUT"
rm -f "$OUT"/*.log
cat >"$OUT/busted.lua" <<CONF
return { default = { lpath = "lua/?.lua;lua/?/init.lua;tests/?.lua", cpath = "$BUILD/?.so", helper = "tests/helper.lua",
  ROOT = { "tests/unit", "tests/integration" }, pattern = "_spec" } }
CONF
VG="valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite
  --errors-for-leak-kinds=definite --num-callers=30 --trace-children=yes
  --trace-children-skip=*python3*,*/sleep,*/kill,*tmux*,*/curl,*/az,*/node,*/luarocks,*/make,*/ldd,*/cc,*/gcc,*/mktemp,*/sed,*/grep,*/head,*/ps
  --trace-children-skip-by-arg=*demo.sh*"
status=0
# shellcheck disable=SC2086
$VG --log-file="$OUT/%p.log" ${LUA:-lua5.4} "$(command -v busted)" -f "$OUT/busted.lua" -o TAP "$@" \
  >"$OUT/busted.tap" 2>&1 || status=1
# shellcheck disable=SC2086
$VG --log-file="$OUT/%p.log" "$BUILD/embed_test" tests/c/embed_script.lua >"$OUT/embed.tap" 2>&1 || status=1
passed=$(grep -c '^ok ' "$OUT/busted.tap" "$OUT/embed.tap" | awk -F: '{s+=$2} END {print s}')
failed=$(grep -c '^not ok ' "$OUT/busted.tap" "$OUT/embed.tap" | awk -F: '{s+=$2} END {print s}')
grep '^not ok ' "$OUT/busted.tap" "$OUT/embed.tap"
# a fork that went on to exec an untraced program leaves a log with no summary
logs=$(grep -l 'ERROR SUMMARY' "$OUT"/*.log)
lua=$(grep -l 'Command: .*lua' $logs | wc -l)
errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' $logs | awk '{s+=$1} END {print s+0}')
lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' $logs | tr -d , | awk '{s+=$1} END {print s+0}')
echo "valgrind: $passed tests passed, $failed failed; $errors memcheck errors; $lost bytes definitely lost" \
  "($(echo "$logs" | wc -l) processes traced, $lua of them Lua; logs in $OUT)"
[ "$errors" -eq 0 ] || grep -l 'ERROR SUMMARY: [1-9]' $logs
[ "$errors" -eq 0 ] && [ "$lost" -eq 0 ] && [ "$failed" -eq 0 ] || status=1
exit $status
