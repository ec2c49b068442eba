#!/bin/sh
# `make interop`: run the official Azure Batch clients, unchanged, against the
# emulator, as Azurite serves `az storage`.
#
#   * Debian's azure-cli (2.45.0 in bookworm; api-version 2022-10-01.16.0),
#     installed with apt-get when `az` is missing;
#   * the npm @azure/batch SDK (10.x; api-version 2022-10-01.16.0), installed
#     into build/interop with npm when it is missing.
#
# Starts the emulator on a free port, prints one TAP-style line per check
# (`ok N - ...` / `not ok N - ...`), then `N passed, N failed`, stops the
# emulator and exits non-zero when a check failed.  Never part of `make test`.
#
# Environment: INTEROP_PREFIX (npm prefix, default build/interop),
# INTEROP_SKIP_AZ=1 / INTEROP_SKIP_SDK=1 to leave one client out,
# INTEROP_KEEP=DIR to keep the clients' outputs and the emulator's log.
cd "$(dirname "$0")/../.." || exit 2
PREFIX=${INTEROP_PREFIX:-build/interop}
ACCOUNT=devbatch
KEY=YXpiYXRjaC1lbXVsYXRvci13ZWxsLWtub3duLWRldmVsb3BtZW50LWtleS1ub3QtYS1zZWNyZXQtMDEyMzQ1Ng==
WORK=$(mktemp -d)
EMU_PID=

N=0
PASSED=0
FAILED=0

cleanup() {
  if [ -n "$EMU_PID" ]; then
    kill "$EMU_PID" 2>/dev/null
    wait "$EMU_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { N=$((N + 1)); PASSED=$((PASSED + 1)); echo "ok $N - $1"; }
notok() {
  N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $1"
  if [ -n "${2:-}" ]; then printf '%s\n' "$2" | head -n 15 | sed 's/^/#   /'; fi
}
# pass_if NAME CONDITION-EXIT-STATUS DETAIL
pass_if() { if [ "$2" -eq 0 ]; then ok "$1"; else notok "$1" "$3"; fi; }

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

# {===================================================================
# Install the clients on request
# ====================================================================

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq || return 1; apt_updated=1; fi
  echo "# installing $* with apt-get (this can take minutes)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >"$WORK/apt.log" 2>&1 ||
    { tail -n 20 "$WORK/apt.log"; return 1; }
}

command -v python3 >/dev/null 2>&1 || apt_install python3 || { echo "interop: python3 is needed" >&2; exit 2; }

RUN_AZ=1
RUN_SDK=1
[ "${INTEROP_SKIP_AZ:-}" = 1 ] && RUN_AZ=
[ "${INTEROP_SKIP_SDK:-}" = 1 ] && RUN_SDK=

if [ -n "$RUN_AZ" ] && ! command -v az >/dev/null 2>&1; then
  apt_install azure-cli || notok "install azure-cli with apt-get"
fi
if [ -n "$RUN_SDK" ]; then
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm || notok "install nodejs and npm with apt-get"
  fi
  if [ ! -f "$PREFIX/node_modules/@azure/batch/package.json" ] && command -v npm >/dev/null 2>&1; then
    echo "# installing @azure/batch with npm into $PREFIX"
    mkdir -p "$PREFIX"
    npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error '@azure/batch@>=10' \
      >"$WORK/npm.log" 2>&1 || { tail -n 20 "$WORK/npm.log"; notok "install @azure/batch with npm"; }
  fi
fi

# {===================================================================
# The emulator
# ====================================================================

# --time-scale 100: a pool is steady well under a second after a resize.
python3 scripts/azbatch-emulator --port 0 --time-scale 100 --verbose \
  >"$WORK/emu.out" 2>"$WORK/emu.err" &
EMU_PID=$!
i=0
while [ $i -lt 100 ] && ! grep -q '^listening on ' "$WORK/emu.out" 2>/dev/null; do
  sleep 0.1; i=$((i + 1))
done
EP=$(sed -n '1s/^listening on //p' "$WORK/emu.out")
if [ -z "$EP" ]; then
  echo "interop: the emulator did not start" >&2
  cat "$WORK/emu.err" >&2
  exit 2
fi
echo "# emulator at $EP"

# clock JSON: change the emulator's simulated clock (control API, no auth).
clock() {
  python3 - "$EP/_emulator/clock" "$1" <<'EOF' >/dev/null
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST",
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=10).read()
EOF
}

# {===================================================================
# azure-cli
# ====================================================================

if [ -n "$RUN_AZ" ] && command -v az >/dev/null 2>&1; then
  # A throw-away az configuration: no telemetry, no login state, no survey.
  export AZURE_CONFIG_DIR="$WORK/azconfig"
  export AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_NO_COLOR=true AZURE_CORE_SURVEY_MESSAGE=false
  echo "# $(az version --query '"azure-cli"' -o tsv 2>/dev/null | sed 's/^/azure-cli /')"

  # azb OUT-NAME ARGS...: `az batch ARGS` against the emulator; stdout in
  # $WORK/OUT-NAME.out, stderr in $WORK/OUT-NAME.err; returns az's status.
  azb() {
    name=$1; shift
    az batch "$@" --account-endpoint "$EP" --account-name "$ACCOUNT" --account-key "$KEY" \
      --only-show-errors >"$WORK/$name.out" 2>"$WORK/$name.err"
  }
  out() { cat "$WORK/$1.out"; }
  err() { cat "$WORK/$1.err"; }
  # az_json NAME PYTHON-EXPR: evaluate EXPR with `d` bound to the JSON az printed.
  az_json() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' \
      "$WORK/$1.out" "$2" 2>/dev/null
  }
  wait_steady() {
    j=0
    while [ $j -lt 100 ]; do
      azb steady pool show --pool-id "$1" --query allocationState -o tsv || return 1
      [ "$(out steady)" = steady ] && return 0
      sleep 0.1; j=$((j + 1))
    done
    return 1
  }

  IMAGE=canonical:0001-com-ubuntu-server-jammy:22_04-lts
  AGENT="batch.node.ubuntu 22.04"

  azb create pool create --id azpool --vm-size Standard_A1_v2 --target-dedicated-nodes 1 \
    --image "$IMAGE" --node-agent-sku-id "$AGENT"
  pass_if "az: pool create from a marketplace image" $? "$(err create)"

  azb show pool show --pool-id azpool
  az_json show 'd["id"] == "azpool" and d["vmSize"].lower() == "standard_a1_v2" and d["state"] == "active"
    and d["virtualMachineConfiguration"]["nodeAgentSkuId"] == "batch.node.ubuntu 22.04"
    and d["virtualMachineConfiguration"]["imageReference"]["offer"] == "0001-com-ubuntu-server-jammy"
    and d["targetDedicatedNodes"] == 1 and d["eTag"] and d["url"].endswith("/pools/azpool")'
  pass_if "az: pool show" $? "$(err show; out show)"

  azb create2 pool create --id azpool --vm-size Standard_A1_v2 --target-dedicated-nodes 1 \
    --image "$IMAGE" --node-agent-sku-id "$AGENT"
  [ $? -ne 0 ] && grep -q "The specified pool already exists" "$WORK/create2.err"
  pass_if "az: pool create with an existing id surfaces PoolExists" $? "$(err create2)"

  azb list pool list
  az_json list '"azpool" in [p["id"] for p in d]'
  pass_if "az: pool list" $? "$(err list; out list)"

  azb listf pool list --filter "startswith(id,'azp') and state eq 'active'" --select "id,state"
  az_json listf '[(p["id"], p["state"], p["vmSize"]) for p in d] == [("azpool", "active", None)]'
  pass_if "az: pool list --filter --select" $? "$(err listf; out listf)"

  azb liste pool list --filter "" --select ""
  az_json liste '"azpool" in [p["id"] for p in d] and all(p["vmSize"] for p in d)'
  pass_if "az: pool list with an empty --filter and --select (blank query values in the signature)" $? \
    "$(err liste; out liste)"

  azb listr pool list --filter "id eq 'a+b&c=d%20''é'"
  az_json listr 'd == []'
  pass_if "az: pool list --filter with reserved characters (+ & = % ' é)" $? "$(err listr; out listr)"

  azb showsel pool show --pool-id azpool --select "id,allocationState"
  az_json showsel 'd["id"] == "azpool" and d["allocationState"] in ("resizing", "steady") and d["vmSize"] is None'
  pass_if "az: pool show --select" $? "$(err showsel; out showsel)"

  wait_steady azpool
  azb resize pool resize --pool-id azpool --target-dedicated-nodes 2
  rc=$?
  azb showr pool show --pool-id azpool --query targetDedicatedNodes -o tsv
  [ $rc -eq 0 ] && [ "$(out showr)" = 2 ]
  pass_if "az: pool resize" $? "$(err resize; err showr; out showr)"

  wait_steady azpool
  azb nodes node list --pool-id azpool
  az_json nodes 'len(d) == 2 and all(n["id"].startswith("tvmps_") and n["id"].endswith("_d")
    and n["state"] == "idle" and n["isDedicated"] for n in d)'
  pass_if "az: node list" $? "$(err nodes; out nodes)"

  azb nodesf node list --pool-id azpool --filter "state eq 'idle'" --select "id,state"
  az_json nodesf 'len(d) == 2 and all(n["state"] == "idle" and n["vmSize"] is None for n in d)'
  pass_if "az: node list --filter --select" $? "$(err nodesf; out nodesf)"

  NODE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["id"])' "$WORK/nodes.out" 2>/dev/null)
  azb node node show --pool-id azpool --node-id "${NODE:-none}"
  az_json node 'd["id"] == "'"$NODE"'" and d["virtualMachineInfo"]["imageReference"]["sku"] == "22_04-lts"'
  pass_if "az: node show" $? "$(err node; out node)"

  azb images pool supported-images list
  az_json images 'any(i["nodeAgentSkuId"] == "batch.node.ubuntu 22.04" and i["osType"] == "linux"
    and i["imageReference"]["offer"] == "0001-com-ubuntu-server-jammy" for i in d)'
  pass_if "az: pool supported-images list" $? "$(err images; out images)"

  azb imagesf pool supported-images list --filter "verificationType eq 'verified'"
  az_json imagesf 'd and all(i["verificationType"] == "verified" for i in d)
    and not any(i["nodeAgentSkuId"] == "batch.node.ubuntu 24.04" for i in d)'
  pass_if "az: pool supported-images list --filter" $? "$(err imagesf; out imagesf)"

  azb counts pool node-counts list
  az_json counts '[(c["dedicated"]["total"], c["dedicated"]["idle"], c["lowPriority"]["total"])
    for c in d if c["poolId"] == "azpool"] == [(2, 2, 0)]'
  pass_if "az: pool node-counts list" $? "$(err counts; out counts)"

  # Usage metrics are whole hours that have ended: two hours on, azpool's 2 nodes (1 core each)
  # filled the last one.
  clock '{"advance": 7200}'
  azb usage pool usage-metrics list
  az_json usage '[(m["totalCoreHours"], m["vmSize"].lower()) for m in d if m["poolId"] == "azpool"]
    == [(2.0, "standard_a1_v2")]'
  pass_if "az: pool usage-metrics list (the last whole hour)" $? "$(err usage; out usage)"

  HOUR_AGO=$(python3 -c 'import datetime as d; print((d.datetime.now(d.timezone.utc) - d.timedelta(hours=1)).isoformat())')
  azb usagef pool usage-metrics list --start-time "$HOUR_AGO" --filter "poolId eq 'azpool'"
  az_json usagef 'len(d) >= 1 and all(m["poolId"] == "azpool" for m in d)'
  pass_if "az: pool usage-metrics list --start-time --filter" $? "$(err usagef; out usagef)"

  azb missing pool show --pool-id no-such-pool
  [ $? -ne 0 ] && grep -q "The specified pool does not exist" "$WORK/missing.err"
  pass_if "az: pool show of a missing pool surfaces PoolNotFound" $? "$(err missing)"

  azb set pool set --pool-id azpool --metadata owner=interop stage=az
  azb showm pool show --pool-id azpool --query "metadata[?name=='stage'].value | [0]" -o tsv
  [ "$(out showm)" = az ]
  pass_if "az: pool set --metadata (PATCH)" $? "$(err set; err showm)"

  azb reset pool reset --pool-id azpool --start-task-command-line "/bin/sh -c true" --start-task-wait-for-success
  azb showst pool show --pool-id azpool --query "startTask.commandLine" -o tsv
  [ "$(out showst)" = "/bin/sh -c true" ]
  pass_if "az: pool reset (updateproperties)" $? "$(err reset; err showst)"

  ETAG=$(az batch pool show --pool-id azpool --query eTag -o tsv --account-endpoint "$EP" \
    --account-name "$ACCOUNT" --account-key "$KEY" 2>/dev/null)
  azb stale pool set --pool-id azpool --metadata a=b --if-match 0x8D0000000000000
  [ $? -ne 0 ] && grep -q "conditional header(s) is not met" "$WORK/stale.err"
  pass_if "az: pool set --if-match with a stale ETag surfaces ConditionNotMet" $? "$(err stale)"

  azb inm pool show --pool-id azpool --if-none-match "$ETAG" --query id -o tsv
  azb inm2 pool show --pool-id azpool --if-none-match '"0x8D0000000000000"' --query id -o tsv
  azb ims pool show --pool-id azpool --if-modified-since "2020-01-01T00:00:00Z" --query id -o tsv
  # 304 Not Modified is raised by azure-batch as an error without a body.
  [ -n "$ETAG" ] && [ "$(out inm)" = "" ] && [ "$(out inm2)" = azpool ] && [ "$(out ims)" = azpool ]
  pass_if "az: pool show --if-none-match / --if-modified-since" $? "$(err inm; err inm2; err ims)"

  azb eval1 pool autoscale evaluate --pool-id azpool --auto-scale-formula '$TargetDedicatedNodes=1;'
  [ $? -ne 0 ] && grep -q "automatic scaling enabled" "$WORK/eval1.err"
  pass_if "az: pool autoscale evaluate without autoscale surfaces AutoScalingNotEnabled" $? "$(err eval1)"

  wait_steady azpool
  azb ase pool autoscale enable --pool-id azpool --auto-scale-formula '$TargetDedicatedNodes=1;' \
    --auto-scale-evaluation-interval PT5M
  rc=$?
  azb eval pool autoscale evaluate --pool-id azpool --auto-scale-formula '$TargetDedicatedNodes=3;'
  az_json eval '"$TargetDedicatedNodes=3" in d["results"] and d["timestamp"]'
  rc2=$?
  azb asd pool autoscale disable --pool-id azpool
  rc3=$?
  azb showas pool show --pool-id azpool --query "[enableAutoScale,targetDedicatedNodes]" -o tsv
  [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ $rc3 -eq 0 ] && [ "$(out showas | tr '\t\n' '  ')" = "false 1 " ]
  pass_if "az: pool autoscale enable / evaluate / disable" $? "$(err ase; err eval; out eval; err asd; out showas)"

  # Freeze simulated time so that the resize is still running when it is stopped.
  wait_steady azpool
  clock '{"timeScale": 1e-9}'
  azb grow pool resize --pool-id azpool --target-dedicated-nodes 40 --resize-timeout PT10M
  rc=$?
  azb abort pool resize --pool-id azpool --abort
  rc2=$?
  clock '{"advance": 30}'
  clock '{"timeScale": 100}'
  wait_steady azpool
  azb showab pool show --pool-id azpool --query "resizeErrors[0].code" -o tsv
  [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ "$(out showab)" = ResizeStopped ]
  pass_if "az: pool resize --abort (stopresize)" $? "$(err grow; err abort; err showab; out showab)"

  azb nodes2 node list --pool-id azpool --query "[].id" -o tsv
  GONE=$(head -n 1 "$WORK/nodes2.out")
  azb rm node delete --pool-id azpool --node-list "${GONE:-none}"
  rc=$?
  wait_steady azpool
  azb nodes3 node list --pool-id azpool --query "[].id" -o tsv
  [ $rc -eq 0 ] && [ -n "$GONE" ] && ! grep -q "$GONE" "$WORK/nodes3.out" &&
    [ "$(wc -l <"$WORK/nodes3.out")" -eq $(($(wc -l <"$WORK/nodes2.out") - 1)) ]
  pass_if "az: node delete (removenodes)" $? "$(err rm; out nodes2; out nodes3)"

  GALLERY=/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers/Microsoft.Compute/galleries/devgallery/images/ubuntu2204/versions/1.0.0
  azb gal pool create --id azgallery --vm-size Standard_A1_v2 --target-dedicated-nodes 1 \
    --image "$GALLERY" --node-agent-sku-id "$AGENT"
  [ $? -ne 0 ] && grep -q "SharedKey is not allowed when external resources of type Compute" "$WORK/gal.err"
  pass_if "az: pool create from a gallery image with Shared Key surfaces AuthenticationFailed" $? "$(err gal)"

  # A REST body (2022-10-01 names: nodeAgentSKUId, targetNodeCommunicationMode, ...).
  cat >"$WORK/pool.json" <<'EOF'
{
  "id": "azjson",
  "displayName": "from a REST body",
  "vmSize": "Standard_D2s_v3",
  "virtualMachineConfiguration": {
    "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy",
                       "sku": "22_04-lts", "version": "latest"},
    "nodeAgentSKUId": "batch.node.ubuntu 22.04",
    "containerConfiguration": {"type": "dockerCompatible", "containerImageNames": ["busybox"]},
    "nodePlacementConfiguration": {"policy": "regional"}
  },
  "resizeTimeout": "PT15M",
  "targetDedicatedNodes": 1,
  "targetLowPriorityNodes": 1,
  "taskSlotsPerNode": 2,
  "taskSchedulingPolicy": {"nodeFillType": "pack"},
  "enableInterNodeCommunication": false,
  "startTask": {"commandLine": "/bin/sh -c 'echo hi'", "environmentSettings": [{"name": "A", "value": "1"}],
                "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "admin"}},
                "maxTaskRetryCount": 1, "waitForSuccess": true},
  "userAccounts": [{"name": "u1", "password": "Secret-123", "elevationLevel": "nonadmin",
                    "linuxUserConfiguration": {"uid": 1001, "gid": 1001}}],
  "metadata": [{"name": "owner", "value": "interop"}],
  "targetNodeCommunicationMode": "simplified"
}
EOF
  azb json pool create --json-file "$WORK/pool.json"
  rc=$?
  azb showj pool show --pool-id azjson
  [ $rc -eq 0 ] && az_json showj 'd["displayName"] == "from a REST body" and d["targetLowPriorityNodes"] == 1
    and d["targetNodeCommunicationMode"] == "simplified" and d["taskSlotsPerNode"] == 2
    and d["taskSchedulingPolicy"]["nodeFillType"] == "pack" and d["resizeTimeout"] == "0:15:00"
    and d["startTask"]["environmentSettings"][0]["value"] == "1"
    and d["userAccounts"][0]["name"] == "u1" and d["userAccounts"][0]["password"] is None
    and d["virtualMachineConfiguration"]["containerConfiguration"]["containerImageNames"] == ["busybox"]
    and d["virtualMachineConfiguration"]["nodePlacementConfiguration"]["policy"] == "regional"'
  pass_if "az: pool create --json-file with a REST body" $? "$(err json; err showj; out showj)"

  # node-counts asks for 10 entries a page: 11 more pools make az follow odata.nextLink.
  i=1
  rc=0
  while [ $i -le 11 ]; do
    azb page pool create --id "azpage$i" --vm-size Standard_A1_v2 --image "$IMAGE" --node-agent-sku-id "$AGENT" ||
      rc=1
    i=$((i + 1))
  done
  azb countsp pool node-counts list --query "length(@)" -o tsv
  [ $rc -eq 0 ] && [ "$(out countsp)" = 13 ] && grep -q 'GET /nodecounts?.*skiptoken' "$WORK/emu.err"
  pass_if "az: pool node-counts list follows odata.nextLink (13 pools, pages of 10)" $? "$(err page; err countsp; out countsp)"

  azb del pool delete --pool-id azpool --yes
  rc=$?
  azb showd pool show --pool-id azpool --query state -o tsv
  [ $rc -eq 0 ] && { [ "$(out showd)" = deleting ] || grep -q "does not exist" "$WORK/showd.err"; }
  pass_if "az: pool delete" $? "$(err del; err showd)"

  azb delg pool delete --pool-id azjson --yes --if-match 0x8D0000000000000
  [ $? -ne 0 ] && grep -q "conditional header(s) is not met" "$WORK/delg.err"
  pass_if "az: pool delete --if-match with a stale ETag surfaces ConditionNotMet" $? "$(err delg)"

  i=1
  while [ $i -le 11 ]; do azb delp pool delete --pool-id "azpage$i" --yes; i=$((i + 1)); done
  azb delj pool delete --pool-id azjson --yes

  az batch pool list --account-endpoint "${EP#http://}" --account-name "$ACCOUNT" --account-key "$KEY" \
    >"$WORK/noscheme.out" 2>"$WORK/noscheme.err"
  [ $? -ne 0 ] && grep -qi "ssl" "$WORK/noscheme.err"
  pass_if "az: an endpoint without a scheme means https:// (so give http:// explicitly)" $? "$(err noscheme)"
elif [ -n "$RUN_AZ" ]; then
  notok "az: azure-cli is not installed"
fi

# {===================================================================
# @azure/batch (node)
# ====================================================================

if [ -n "$RUN_SDK" ] && [ -f "$PREFIX/node_modules/@azure/batch/package.json" ] && command -v node >/dev/null 2>&1; then
  INTEROP_PREFIX="$PREFIX" BATCH_ENDPOINT="$EP" BATCH_ACCOUNT="$ACCOUNT" BATCH_KEY="$KEY" \
    node tests/interop/sdk_check.mjs >"$WORK/sdk.out" 2>"$WORK/sdk.err"
  rc=$?
  sed 's/^/# /' "$WORK/sdk.err"
  while IFS= read -r line; do
    case $line in
      "ok - "*) ok "${line#ok - }" ;;
      "not ok - "*) notok "${line#not ok - }" ;;
      *) echo "# $line" ;;
    esac
  done <"$WORK/sdk.out"
  if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$WORK/sdk.out"; then
    notok "sdk: sdk_check.mjs exited with status $rc" "$(tail -n 15 "$WORK/sdk.err")"
  fi
elif [ -n "$RUN_SDK" ]; then
  notok "sdk: @azure/batch or node is not installed"
fi

if kill -0 "$EMU_PID" 2>/dev/null; then
  ok "emulator: still running after all the checks"
else
  wait "$EMU_PID"
  notok "emulator: still running after all the checks" "it exited with status $? (a signal if > 128)"
  EMU_PID=
fi

# The emulator must have logged no 5xx: every error above was a service error.
if grep -q '" 5[0-9][0-9] ' "$WORK/emu.err"; then
  notok "emulator: no 5xx answers" "$(grep '" 5[0-9][0-9] ' "$WORK/emu.err")"
else
  ok "emulator: no 5xx answers"
fi

# INTEROP_KEEP=DIR keeps every client output and the emulator's request log.
if [ -n "${INTEROP_KEEP:-}" ]; then mkdir -p "$INTEROP_KEEP" && cp -R "$WORK"/. "$INTEROP_KEEP"/; fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
