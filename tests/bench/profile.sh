#!/bin/sh
# Profile the request path in instructions (valgrind --tool=callgrind), which
# a loaded machine does not disturb. Against the emulator on loopback:
#   - per signed GET over keep-alive: azbatch (bench.lua seq) and the C
#     libcurl loop (curl_loop.c), sending azbatch's request and the bare
#     one, each as the difference between a run of LO and one of HI
#     requests, so start-up cancels out;
#   - azbatch's top functions per request, from the same pair run by
#     lua_named (liblua5.4.a linked in, so Lua's own functions have names);
#   - one CLI `pool show` from a cold process, against one `curl` of the
#     same signed request (whole process, start-up included).
# usage: tests/bench/profile.sh [TOP]      (PROFILE_LO=20 PROFILE_HI=220)
# Writes build/profile/*.out (callgrind files: callgrind_annotate them).
cd "$(dirname "$0")/../.." || exit 2
TOP=${1:-25}
LO=${PROFILE_LO:-20}
HI=${PROFILE_HI:-220}
ACCOUNT=devbatch
KEY=YXpiYXRjaC1lbXVsYXRvci13ZWxsLWtub3duLWRldmVsb3BtZW50LWtleS1ub3QtYS1zZWNyZXQtMDEyMzQ1Ng==
command -v valgrind >/dev/null || { echo "profile: valgrind not found (apt-get install valgrind)"; exit 2; }
make --no-print-directory all >/dev/null || exit 1
OUT=build/profile
mkdir -p "$OUT"
cc -O2 -g -o build/curl_loop tests/bench/curl_loop.c $(pkg-config --cflags --libs libcurl libcrypto) || exit 1
LUA_A=$(pkg-config --variable=libdir lua5.4)/liblua5.4.a
cc -O2 -g -Wl,-E $(pkg-config --cflags lua5.4) -o build/lua_named tests/bench/lua_named.c "$LUA_A" -lm -ldl || exit 1
LOG=$(mktemp)
python3 scripts/azbatch-emulator --port 0 >"$LOG" 2>/dev/null &
EMU=$!
trap 'kill $EMU 2>/dev/null; rm -f "$LOG"' EXIT
until grep -q '^listening on ' "$LOG"; do sleep 0.05; done
URL=$(sed -n 's/^listening on //p' "$LOG")
# the modules as make install installs them: precompiled (make all)
export LUA_PATH="build/lua/?.lua;build/lua/?/init.lua;;" LUA_CPATH="build/?.so;;"
scripts/azbatch pool create --id bench --vm-size Standard_A1_v2 --target-dedicated-nodes 0 \
  --image Canonical:0001-com-ubuntu-server-jammy:22_04-lts --node-agent-sku-id "batch.node.ubuntu 22.04" \
  --account-name $ACCOUNT --account-key $KEY --account-endpoint "$URL" --output json >/dev/null || exit 1

# cg NAME CMD...: run under callgrind into $OUT/NAME.out; prints total instructions
cg() {
  name=$1; shift
  valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.out" "$@" >/dev/null 2>"$OUT/$name.log" \
    || { echo "profile: $name failed (see $OUT/$name.log)" >&2; exit 1; }
  sed -n 's/^summary: *//p' "$OUT/$name.out"
}

L_LO=$(cg lua-lo lua5.4 tests/bench/bench.lua seq "$URL" "$LO")
L_HI=$(cg lua-hi lua5.4 tests/bench/bench.lua seq "$URL" "$HI")
cg named-lo build/lua_named tests/bench/bench.lua seq "$URL" "$LO" >/dev/null
cg named-hi build/lua_named tests/bench/bench.lua seq "$URL" "$HI" >/dev/null
C_LO=$(cg curl-lo build/curl_loop "$URL" $ACCOUNT $KEY /pools/bench "$LO" same)
C_HI=$(cg curl-hi build/curl_loop "$URL" $ACCOUNT $KEY /pools/bench "$HI" same)
B_LO=$(cg bare-lo build/curl_loop "$URL" $ACCOUNT $KEY /pools/bench "$LO")
B_HI=$(cg bare-hi build/curl_loop "$URL" $ACCOUNT $KEY /pools/bench "$HI")

# one CLI call against one curl of the same signed request
HDRS=$(python3 tests/bench/shared_key_get.py "$ACCOUNT" "$KEY") || exit 1
DATE=$(echo "$HDRS" | sed -n 1p)
AUTH=$(echo "$HDRS" | sed -n 2p)
CLI=$(cg cli build/bin/azbatch pool show --pool-id bench --account-name $ACCOUNT --account-key $KEY \
  --account-endpoint "$URL")
CLI_LUA=$(cg cli-lua scripts/azbatch pool show --pool-id bench --account-name $ACCOUNT --account-key $KEY \
  --account-endpoint "$URL")
CURL=$(cg curl curl -sf -o /dev/null -H "ocp-date: $DATE" -H "Authorization: $AUTH" \
  "$URL/pools/bench?api-version=2025-06-01")
LUA0=$(cg lua-bare lua5.4 -e "")
REQ=$(cg require lua5.4 -e 'require "azbatch"')

python3 - "$OUT" "$TOP" "$LO" "$HI" "$L_LO" "$L_HI" "$C_LO" "$C_HI" "$CLI" "$CURL" "$LUA0" "$REQ" "$CLI_LUA" "$B_LO" "$B_HI" <<'PY'
import subprocess, sys, re
out, top, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
l_lo, l_hi, c_lo, c_hi, cli, curl, lua0, req, cli_lua, b_lo, b_hi = map(int, sys.argv[5:16])
n = hi - lo
lua, c, bare = (l_hi - l_lo) / n, (c_hi - c_lo) / n, (b_hi - b_lo) / n
print("instructions per signed GET (callgrind, %d-%d requests):" % (hi, lo))
print("  azbatch (bench.lua seq)  %8.0f" % lua)
print("  C libcurl loop           %8.0f   (azbatch's request, byte for byte)" % c)
print("  ratio                    %8.2fx   (target <= 1.3x)" % (lua / c))
print("  bare C loop              %8.0f   (ocp-date and Authorization only)" % bare)
print("  ratio                    %8.2fx" % (lua / bare))
print("one cold process, whole (start-up included):")
print("  azbatch pool show        %8.2fM   (build/bin/azbatch, as installed)" % (cli / 1e6))
print("  curl                     %8.2fM" % (curl / 1e6))
print("  ratio                    %8.2fx" % (cli / curl))
print("  scripts/azbatch          %8.2fM   (lua5.4: dlopen, RTLD_NOW)" % (cli_lua / 1e6))
print("  of which lua5.4 itself %.2fM, require 'azbatch' %.2fM more" % (lua0 / 1e6, (req - lua0) / 1e6))

def table(name, inclusive):
    txt = subprocess.run(["callgrind_annotate", "--inclusive=" + ("yes" if inclusive else "no"),
                          "--threshold=100", "%s/%s.out" % (out, name)], capture_output=True, text=True).stdout
    fns = {}
    for line in txt.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S*?):(\S+)(?:\s+\[(.*)\])?$", line)
        if not m or "(below main)" in line:
            continue
        fn = m.group(3).split("'")[0]                 # f'2: a recursive call of f
        obj = (m.group(4) or "").rsplit("/", 1)[-1]
        key = "%s [%s]" % (fn, obj) if obj else fn
        fns[key] = max(fns.get(key, 0), int(m.group(1).replace(",", "")))
    return fns
SKIP = ("_dl_catch", "lua_pcallk", "__libc_start", "lua_callk", "luaD_", "main", "luaV_execute", "luaL_dofilex",
        "docall", "ccall", "f_call", "0x")
for inclusive in (True, False):
    a, b = table("named-lo", inclusive), table("named-hi", inclusive)
    rows = sorted((((b[k] - a.get(k, 0)) / n, k) for k in b), reverse=True)
    print("azbatch, %s instructions per request (top %d):"
          % ("inclusive" if inclusive else "exclusive", top))
    shown = 0
    for v, k in rows:
        if shown >= top or v < 300:
            break
        if inclusive and k.startswith(SKIP) or k.startswith("0x"):
            continue
        print("  %8.0f  %s" % (v, k[:100]))
        shown += 1
PY
