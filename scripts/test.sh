#!/usr/bin/env bash
# Installs what the project needs, then runs every test of the workspace.
# Test data is read from ../shared/testdata when it is there (CCTV_TESTDATA
# overrides); tests that need it say so and pass without it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --features camera-agent/file "$@" 2>&1 | tee "$log" || status=$?
passed=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | paste -sd+ - | bc)
failed=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | paste -sd+ - | bc)
echo
echo "all tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
