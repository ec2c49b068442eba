#!/bin/sh
# make demo: the whole story against the local emulator, with no Azure
# account: a mistake caught before sending, the planner, then the world's
# pool workers-v1 (gallery image ubuntu2204 1.0.0, three jobs on it) moved
# to 1.1.0 by a canary and then blue-green, with its live progress, the
# audit of which pools run what before and after, and where to go next.
# Nothing leaves this machine: every Azure variable of the caller is unset
# and the emulator listens on 127.0.0.1.
cd "$(dirname "$0")/.." || exit 2
set -e
. tests/env.sh
AZ=scripts/azbatch
GALLERY=/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/azbatch-dev/providers/Microsoft.Compute/galleries/devgallery
NEW=$GALLERY/images/ubuntu2204/versions/1.1.0
SCALE=${DEMO_TIME_SCALE:-4}      # simulated seconds per real second: a node takes 8 s to be ready

if [ -t 1 ]; then B=$(printf '\033[1m'); N=$(printf '\033[0m'); else B=; N=; fi
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
show() { printf '$ %s\n' "$*"; }

step "1. A mistake caught before anything is sent: a Windows node agent for a Linux image"
show "azbatch pool create --id render --vm-size Standard_D2s_v3 --image Canonical:ubuntu-24_04-lts:server \\"
show "    --node-agent-sku-id 'batch.node.windows amd64' --dry-run"
$AZ pool create --id render --vm-size Standard_D2s_v3 --target-dedicated-nodes 2 \
  --image Canonical:ubuntu-24_04-lts:server --node-agent-sku-id "batch.node.windows amd64" --dry-run || true

step "2. A 3000-VM custom-image pool, planned offline"
show "azbatch plan --nodes 3000"
$AZ plan --nodes 3000

step "3. The local emulator: a Batch account, Entra ID, ARM and a Compute Gallery on 127.0.0.1"
LOG=$(mktemp)
python3 scripts/azbatch-emulator --host 127.0.0.1 --port 0 --time-scale "$SCALE" >"$LOG" 2>"$LOG.err" &
EMU=$!
trap 'kill $EMU 2>/dev/null; wait $EMU 2>/dev/null; rm -f "$LOG" "$LOG.err"' EXIT INT TERM
i=0
until grep -q '^listening on ' "$LOG" 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && { cat "$LOG.err"; echo "the emulator did not start"; exit 1; }
  sleep 0.1
done
URL=$(sed -n 's/^listening on //p' "$LOG" | head -1)
echo "emulator at $URL: account devbatch, gallery devgallery (ubuntu2204 1.0.0 and 1.1.0), pool workers-v1 with jobs"
# The development tenant's service principal (docs/emulator.md); ARM on the same port.
export AZURE_BATCH_ENDPOINT="$URL" AZURE_BATCH_ACCOUNT=devbatch AZURE_RESOURCE_MANAGER_ENDPOINT="$URL" \
  AZURE_AUTHORITY_HOST="$URL" AZURE_TENANT_ID=00000000-0000-0000-0000-0000000000aa \
  AZURE_CLIENT_ID=00000000-0000-0000-0000-0000000000c1 AZURE_CLIENT_SECRET=dev-client-secret

step "4. Before: which image each pool's nodes run, and where the jobs are"
show "azbatch pool images -o table"
$AZ pool images -o table
show "azbatch run scripts/examples/jobs.lua"
$AZ run scripts/examples/jobs.lua

step "5. Canary, then blue-green, to ubuntu2204 1.1.0 (preflight first; jobs handed over; rolled back on failure)"
show "azbatch rollout start --strategy canary --then blue-green --pool workers-v1 \\"
show "    --image $NEW --svg build/demo-rollout.svg -o table"
mkdir -p build
$AZ rollout start --strategy canary --then blue-green --pool workers-v1 --image "$NEW" --poll 1 \
  --svg build/demo-rollout.svg -o table

step "6. After: the nodes on 1.1.0, the jobs on the new pool, the rollout recorded on the service"
show "azbatch pool images -o table"
$AZ pool images -o table
show "azbatch run scripts/examples/jobs.lua"
$AZ run scripts/examples/jobs.lua
show "azbatch rollout status -o table"
$AZ rollout status -o table

step "Where to go next"
cat <<EOF
- The rollout's timeline (node counts by state, each step): build/demo-rollout.svg
- The policy as a Lua script you own: scripts/examples/rollout_canary_blue_green.lua
  (rolling, in-place and a canary that fails and rolls back beside it), run with
  azbatch run SCRIPT.lua; the rollout library: docs/rollouts.md
- Against your account: set AZURE_BATCH_ENDPOINT and an Entra ID credential (README, "Credentials"),
  then azbatch preflight and azbatch rollout start --dry-run before anything real
- The emulator for your own experiments: python3 scripts/azbatch-emulator --help (docs/emulator.md)
- make test runs every test; README.md has the Lua API, the CLI and troubleshooting
EOF
