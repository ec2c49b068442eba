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
# create ID NODES [VM-SIZE]
create() {
  cli pool create --id "$1" --vm-size "${3:-Standard_A1_v2}" --target-dedicated-nodes "$2" \
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
  bluegreen)   # BLUE GREEN POLL: azbatch.rollout's blue-green, step by step (see node.mjs)
    [ "$tool" = az ] || exit 2
    blue=$1 green=$2 poll=$3 polls=0
    # poll CMD...: run CMD every POLL seconds until it succeeds, at most 600 times
    poll() {
      until "$@"; do
        polls=$((polls + 1))
        [ "$polls" -lt 600 ] || { echo "cli.sh: $*: timed out" >&2; exit 1; }
        sleep "$poll"
      done
    }
    steady() {
      state=$(cli pool show --pool-id "$1" --select id,allocationState,resizeErrors \
        --query '[allocationState, length(resizeErrors || `[]`)]' -o tsv)
      case $state in "$(printf 'steady\n0')") return 0 ;; steady*) echo "cli.sh: $1: resize error" >&2; exit 1 ;; esac
      return 1
    }
    gone() { [ "$(cli pool list --filter "id eq '$1'" --query 'length(@)' -o tsv)" = 0 ]; }
    old=$(cli pool show --pool-id "$blue" --select id,vmSize,targetDedicatedNodes \
      --query "join(' ', [vmSize, to_string(targetDedicatedNodes)])" -o tsv)
    create "$green" "${old#* }" "${old% *}"
    poll steady "$green"
    test "$(cli node list --pool-id "$green" --query "length([?state!='idle' && state!='running'])" -o tsv)" = 0
    test "$(cli job list --query "length([?poolInfo.poolId=='$blue'])" -o tsv)" = 0
    cli pool resize --pool-id "$blue" --target-dedicated-nodes 0 --target-low-priority-nodes 0 \
      --node-deallocation-option taskcompletion >/dev/null
    poll steady "$blue"
    cli pool delete --pool-id "$blue" --yes
    poll gone "$blue" ;;
  *) echo "cli.sh: unknown scenario $scenario" >&2; exit 2 ;;
esac
