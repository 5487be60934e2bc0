#!/usr/bin/env bash
# Installs what is needed, builds, and runs the panel (its window when there
# is a display, else headless) on its embedded defaults (listening on 0.0.0.0:7700, database in data/, recordings in
# recordings/) with three local test-pattern cameras, plus one playing
# ../shared/testdata/video/vtest.avi when that file is there.
# Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -p panel -p camera-agent

BIN=target/release
PORT=${PANEL_PORT:-7700}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  "$BIN/panel" --listen "0.0.0.0:$PORT" &
else
  echo "No display: running the headless panel (panel serve)."
  "$BIN/panel" serve --listen "0.0.0.0:$PORT" &
fi
pids+=($!)
sleep 1

"$BIN/camera-agent" --panel "127.0.0.1:$PORT" --camera-id front-door --name "Front door" --source test-pattern:640x360 --fps 10 --overlay &
pids+=($!)
"$BIN/camera-agent" --panel "127.0.0.1:$PORT" --camera-id yard --name "Yard" --source test-pattern:640x360 --fps 15 &
pids+=($!)
"$BIN/camera-agent" --panel "127.0.0.1:$PORT" --camera-id garage --name "Garage" --source test-pattern:320x240 --fps 5 &
pids+=($!)
VIDEO=${CCTV_TESTDATA:-../shared/testdata}/video/vtest.avi
if [ -f "$VIDEO" ]; then
  "$BIN/camera-agent" --panel "127.0.0.1:$PORT" --camera-id walkway --name "Walkway" --source "file:$VIDEO" --overlay &
  pids+=($!)
fi

echo "Panel on port $PORT with ${#pids[@]} processes. In another terminal: $BIN/panel cameras; $BIN/panel recordings. Ctrl-C to stop."
wait "${pids[0]}"
