#!/bin/sh
# Runs every test stage, keeps going after a failing stage, and ends with
# "N passed, N failed" (the line CI reads) and a non-zero status on failure.
cd "$(dirname "$0")/.." || exit 2
LUA=${LUA:-lua5.4}
. tests/env.sh
BUILD=${BUILD:-build}
TALLY=$(mktemp)
LOG=$(mktemp -d)
trap 'rm -rf "$TALLY" "$LOG"' EXIT

# stage NAME PASSED FAILED
record() { echo "$1 $2 $3" >>"$TALLY"; printf '== %s: %s passed, %s failed\n' "$1" "$2" "$3"; }

# Count TAP lines of a runner's output; a runner that died without a
# "not ok" still counts as one failure.
tap_stage() {
  name=$1; shift
  "$@" >"$LOG/$name.out" 2>&1
  rc=$?
  cat "$LOG/$name.out"
  p=$(grep -c '^ok ' "$LOG/$name.out")
  f=$(grep -c '^not ok ' "$LOG/$name.out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  record "$name" "$p" "$f"
}

echo "== lint"
if luacheck -q lua scripts/azbatch scripts/examples tests; then record lint 1 0; else record lint 0 1; fi

tap_stage busted busted -o TAP

echo "== emulator (python unittest)"
python3 -m unittest discover -s tests/emulator >"$LOG/emu.out" 2>&1
rc=$?
cat "$LOG/emu.out"
ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\}.*/\1/p' "$LOG/emu.out" | tail -1)
bad=$(sed -n 's/^FAILED (\(.*\))/\1/p' "$LOG/emu.out" | tr ',' '\n' | sed -n 's/.*=\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
ran=${ran:-0}
if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
record emulator $((ran - bad < 0 ? 0 : ran - bad)) "$bad"

tap_stage embed "$BUILD/embed_test" tests/c/embed_script.lua

# What the README promises: luarocks make builds and installs a working tree.
echo "== luarocks make"
ROCKS="$LOG/rocks"
if luarocks --lua-version=5.4 make --tree "$ROCKS" azbatch-scm-1.rockspec >"$LOG/rocks.out" 2>&1 \
   && LUA_PATH="$ROCKS/share/lua/5.4/?.lua;$ROCKS/share/lua/5.4/?/init.lua;;" LUA_CPATH="$ROCKS/lib/lua/5.4/?.so;;" \
      "$ROCKS/bin/azbatch" version | grep -q '^azbatch ' \
   && env -u LUA_PATH -u LUA_CPATH $LUA -e "package.path='$ROCKS/share/lua/5.4/?.lua;$ROCKS/share/lua/5.4/?/init.lua;'..package.path
      package.cpath='$ROCKS/lib/lua/5.4/?.so;'..package.cpath
      local a = require 'azbatch'; assert(package.searchpath('azbatch.core', package.cpath):find('$ROCKS', 1, true))
      assert(a.pool_spec and a.client)"; then
  record luarocks 1 0
else
  cat "$LOG/rocks.out"
  record luarocks 0 1
fi

echo "== asan/ubsan"
tap_stage asan sh tests/asan.sh

awk '{p+=$2; f+=$3} END {printf "%d passed, %d failed\n", p, f; exit (f > 0)}' "$TALLY"
