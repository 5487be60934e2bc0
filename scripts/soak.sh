#!/usr/bin/env bash
# The suite on a busy machine: runs every test RUNS times in a row (default
# 3) while two CPU hogs (stress-ng, or `yes` when it is missing) take both
# cores. Fails on the first run that fails. Tests must wait for conditions,
# never for luck; this is how that is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
scripts/install-deps.sh
cargo test --workspace --locked --features camera-agent/file --no-run
hogs=()
cleanup() { for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
if command -v stress-ng >/dev/null 2>&1; then
  stress-ng --cpu 2 --quiet & hogs+=($!)
else
  yes > /dev/null & hogs+=($!)
  yes > /dev/null & hogs+=($!)
fi
for i in $(seq 1 "$RUNS"); do
  echo "== run $i of $RUNS, with two CPU hogs"
  start=$(date +%s)
  scripts/test.sh
  echo "run $i passed in $(( $(date +%s) - start )) s"
done
echo "the suite passed $RUNS times in a row under two CPU hogs"
