#!/bin/sh
# make bench-peers: the scenarios with a command-line tool, one process per
# call as people use it: `az batch` (Debian's azure-cli) or azbatch's CLI,
# which takes az's flags. Endpoint and Shared Key from the environment
# (AZURE_BATCH_ENDPOINT, AZURE_BATCH_ACCOUNT, AZURE_BATCH_ACCESS_KEY).
#   sh cli.sh az|azbatch SCENARIO ARGS...   (the arguments of azbatch.lua)
# The cold `pool show` is not run through this script: run.py starts the CLI
# itself, so that no shell is measured with it.
tool=$1 scenario=$2
shift 2
case $tool in
  az) cli() { az batch "$@" --only-show-errors; } ;;
  azbatch) cli() { "$AZBATCH_CLI" "$@"; } ;;
  *) echo "usage: cli.sh az|azbatch SCENARIO ARGS..." >&2; exit 2 ;;
esac
set -e
IMAGE=Canonical:0001-com-ubuntu-server-jammy:22_04-lts:latest
AGENT="batch.node.ubuntu 22.04"
# state ID: steady, error (steady with a resize error) or what else the pool is doing
state() {
  if [ "$tool" = az ]; then
    out=$(az batch pool show --pool-id "$1" --select id,allocationState,resizeErrors --only-show-errors \
      --query '[allocationState, length(resizeErrors || `[]`)]' -o tsv)
    case $out in "$(printf 'steady\n0')") echo steady ;; steady*) echo error ;; *) echo "$out" ;; esac
  else
    out=$("$AZBATCH_CLI" pool show --pool-id "$1" --select id,allocationState,resizeErrors)
    case $out in *resizeErrors*) echo error ;; *'"allocationState": "steady"'*) echo steady ;; *) echo other ;; esac
  fi
}
create() {
  cli pool create --id "$1" --vm-size Standard_A1_v2 --target-dedicated-nodes "$2" \
    --image "$IMAGE" --node-agent-sku-id "$AGENT" >/dev/null
}

case $scenario in
  crud)        # N pools: create, show, delete each in turn
    i=1
    while [ "$i" -le "$1" ]; do
      id=$(printf 'crud-%04d' "$i")
      create "$id" 0
      cli pool show --pool-id "$id" >/dev/null
      cli pool delete --pool-id "$id" --yes >/dev/null
      i=$((i + 1))
    done ;;
  list)        # every pool in one call (the page size is the CLI's own)
    test "$(cli pool list | grep -c '^    "id": ')" -eq "$1" ;;
  gets)        # N GETs of pool ID at concurrency C: xargs starts a process per GET
    n=$1 c=$2 id=$3
    if [ "$tool" = az ]; then set -- az batch pool show --only-show-errors; else set -- "$AZBATCH_CLI" pool show; fi
    seq "$n" | xargs -P "$c" -I{} "$@" --pool-id "$id" >/dev/null ;;
  audit)       # every pool, then each pool's nodes, one call after another
    [ "$tool" = az ] || exit 2
    ids=$(az batch pool list --only-show-errors --query '[].id' -o tsv)
    test "$(echo "$ids" | wc -l)" -eq "$1"
    for id in $ids; do
      test "$(az batch node list --pool-id "$id" --only-show-errors --query 'length(@)' -o tsv)" -eq "$2"
    done ;;
  bluegreen)   # BLUE GREEN NODES INTERVAL: create green, poll until steady, delete blue
    create "$2" "$3"
    polls=0
    until state=$(state "$2"); [ "$state" = steady ]; do
      [ "$state" != error ] || { echo "cli.sh: $2: resize error" >&2; exit 1; }
      polls=$((polls + 1))
      [ "$polls" -lt 600 ] || { echo "cli.sh: $2: not steady" >&2; exit 1; }
      sleep "$4"
    done
    cli pool delete --pool-id "$1" --yes >/dev/null ;;
  *) echo "cli.sh: unknown scenario $scenario" >&2; exit 2 ;;
esac
