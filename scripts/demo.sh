#!/bin/sh
# make demo: the offline part (a dry run of the seed documents' gallery pool
# and the planner for 3000 VMs), then a blue-green rollout script against
# the local emulator, or against Azure when AZURE_BATCH_ENDPOINT is set.
cd "$(dirname "$0")/.." || exit 2
set -e
GALLERY=/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers/Microsoft.Compute/galleries/devgallery/images/ubuntu2204/versions/1.0.0

echo "== 1. Dry run: the seed documents' pool from a gallery image version (nothing is sent)"
echo "\$ azbatch pool create --id mypool --vm-size Standard_A1_v2 --target-dedicated-nodes 2 \\"
echo "      --image $GALLERY --node-agent-sku-id 'batch.node.ubuntu 22.04' --dry-run"
scripts/azbatch pool create --id mypool --vm-size Standard_A1_v2 --target-dedicated-nodes 2 \
  --image "$GALLERY" --node-agent-sku-id "batch.node.ubuntu 22.04" --dry-run
echo
echo "== 2. A mistake caught before sending: a Windows node agent for a Linux image"
echo "\$ azbatch pool create --id mypool --vm-size Standard_A1_v2 --image Canonical:ubuntu-24_04-lts:server \\"
echo "      --node-agent-sku-id 'batch.node.windows amd64' --dry-run"
scripts/azbatch pool create --id mypool --vm-size Standard_A1_v2 --target-dedicated-nodes 2 \
  --image Canonical:ubuntu-24_04-lts:server --node-agent-sku-id "batch.node.windows amd64" --dry-run || true
echo
echo "== 3. Planner: a 3000-VM custom-image pool"
echo "\$ azbatch plan --nodes 3000 --resize-timeout PT15M"
scripts/azbatch plan --nodes 3000 --resize-timeout PT15M
echo

if [ -n "${AZURE_BATCH_ENDPOINT:-}" ]; then
  echo "== 4. Rollout against $AZURE_BATCH_ENDPOINT (your Azure credentials)"
  exec lua5.4 scripts/examples/rollout.lua
fi

echo "== 4. Blue-green rollout against the local emulator (no Azure account needed)"
LOG=$(mktemp)
python3 scripts/azbatch-emulator --port 0 --time-scale 20 >"$LOG" 2>"$LOG.err" &
EMU=$!
trap 'kill $EMU 2>/dev/null; wait $EMU 2>/dev/null; rm -f "$LOG" "$LOG.err"' EXIT
i=0
until grep -q '^listening on ' "$LOG" 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && { cat "$LOG.err"; echo "emulator did not start"; exit 1; }
  sleep 0.1
done
URL=$(sed -n 's/^listening on //p' "$LOG" | head -1)
echo "emulator: $URL (development account devbatch; Entra ID tenant and client from docs/emulator.md)"
AZURE_BATCH_ENDPOINT=$URL \
AZURE_AUTHORITY_HOST=$URL \
AZURE_TENANT_ID=00000000-0000-0000-0000-0000000000aa \
AZURE_CLIENT_ID=00000000-0000-0000-0000-0000000000c1 \
AZURE_CLIENT_SECRET=dev-client-secret \
  lua5.4 scripts/examples/rollout.lua
