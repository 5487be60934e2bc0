#!/usr/bin/env bash
# The camera agent's footprint, builds side by side: the lean camera-host
# build (default features), the file-playing build (--features file, with
# OpenCV), and the agent as it was before the lean build (commit
# dac8d33, OpenCV for everything), each streaming 1280x720@15.
# Prints resident memory, shared libraries and CPU per frame.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${BEFORE:-dac8d33}
out="$PWD/target/footprint"
mkdir -p "$out"
cargo build --release --locked -p camera-agent
cp target/release/camera-agent "$out/lean"
cargo build --release --locked -p camera-agent --features file
cp target/release/camera-agent "$out/file"
if [ ! -x "$out/before" ]; then
  tree=$(mktemp -d)
  before_target="$PWD/target/footprint-before"
  git worktree add --detach "$tree" "$BEFORE" >/dev/null
  (cd "$tree" && CARGO_TARGET_DIR="$before_target" cargo build --release --locked -p camera-agent)
  cp "$before_target/release/camera-agent" "$out/before"
  git worktree remove --force "$tree"
fi
cargo bench --locked -p camera-agent --bench footprint -- \
  "before=$out/before" "lean=$out/lean" "file=$out/file"
