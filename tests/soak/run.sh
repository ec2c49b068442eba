#!/bin/sh
# make soak: starts the emulator on a free loopback port, runs the soak
# (tests/soak/soak.lua) against it for SOAK_SECONDS (default 600), stops
# the emulator, and keeps the summary in build/soak.txt. Exits non-zero
# when a check fails.
#
# The emulator gets the dev world with room for the soak: the first
# account's pool and core quotas raised (SOAK_POOLS pools of 2 nodes of 2
# cores, and the blue-green pools beside them), and without the world's own
# pool and jobs, so that every pool on the account is the soak's. Its clock
# runs SOAK_TIME_SCALE (default 50) simulated seconds per second: a resize
# to 2 nodes takes about 0.2 s, so a wait polls a few times, as on the
# service, without the soak spending its budget waiting.
cd "$(dirname "$0")/../.." || exit 2
. tests/env.sh
LUA=${LUA:-lua5.4}
export SOAK_SECONDS="${SOAK_SECONDS:-600}"
export SOAK_POOLS="${SOAK_POOLS:-200}"
TIME_SCALE=${SOAK_TIME_SCALE:-50}
SEED=${SOAK_SEED:-1}
mkdir -p build
TMP=$(mktemp -d)
EMU=
cleanup() {
  if [ -n "$EMU" ]; then
    kill "$EMU" 2>/dev/null
    wait "$EMU" 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 - scripts/emulator-world.json "$TMP/world.json" "$SOAK_POOLS" <<'EOF' || exit 2
import json, sys
src, dst, pools = sys.argv[1], sys.argv[2], int(sys.argv[3])
world = json.load(open(src))
account = world["accounts"][0]
account["poolQuota"] = max(100, 3 * pools)
account["dedicatedCoreQuota"] = max(500, 16 * pools)
for family in account.get("dedicatedCoreQuotaPerVMFamily", []):
    family["coreQuota"] = account["dedicatedCoreQuota"]
world["pools"], world["jobs"] = [], []
json.dump(world, open(dst, "w"))
EOF

env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS python3 scripts/azbatch-emulator --port 0 \
  --world "$TMP/world.json" --time-scale "$TIME_SCALE" --seed "$SEED" >"$TMP/emu.out" 2>"$TMP/emu.err" &
EMU=$!
i=0
until grep -q '^listening on ' "$TMP/emu.out" 2>/dev/null; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 "$EMU" 2>/dev/null; then
    cat "$TMP/emu.err" >&2
    echo "soak: the emulator did not start" >&2
    exit 2
  fi
  sleep 0.1
done
URL=$(sed -n 's/^listening on //p' "$TMP/emu.out" | head -1)
case "$URL" in
  http://127.0.0.1:*) ;;
  *) echo "soak: the emulator is not on 127.0.0.1: $URL" >&2; exit 2 ;;
esac
echo "soak: emulator $URL (time scale $TIME_SCALE, seed $SEED), $SOAK_POOLS pools, $SOAK_SECONDS s"

SOAK_EMULATOR=$URL SOAK_SEED=$SEED SOAK_SUMMARY=build/soak.txt $LUA tests/soak/soak.lua
rc=$?
# the emulator's CPU time (utime + stime, in clock ticks), for the record
if [ -r "/proc/$EMU/stat" ]; then
  ticks=$(sed 's/^.*) //' "/proc/$EMU/stat" | awk '{print $12 + $13}')
  echo "emulator CPU: $((ticks / $(getconf CLK_TCK))) s" | tee -a build/soak.txt
fi

# the emulator's own complaints (internal errors) fail the soak too
if [ -s "$TMP/emu.err" ]; then
  echo "soak: the emulator wrote to stderr:" >&2
  tail -20 "$TMP/emu.err" >&2
  echo "emulator stderr: $(wc -l <"$TMP/emu.err") lines (FAIL)" >>build/soak.txt
  [ "$rc" -eq 0 ] && rc=1
fi
exit $rc
