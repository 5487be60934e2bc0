#!/usr/bin/env bash
# Installs what the project needs, then runs every test of the workspace.
# Test data is read from ../shared/testdata when it is there (CCTV_TESTDATA
# overrides); tests that need it say so and pass without it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --workspace --locked "$@"
