#!/usr/bin/env bash
# Installs what is needed, builds, and runs the panel (its window when there
# is a display, else headless) on its embedded defaults (listening on 0.0.0.0:7700, database in data/, recordings in
# recordings/) with three local test-pattern cameras, plus one playing
# ../shared/testdata/video/vtest.avi when that file is there. Each local
# agent gets its own secret from `panel camera add` (kept in data/agents/)
# and connects over TLS, pinning the panel's certificate.
# With CCTV_MQTT_PORT=1883 (any port) it also starts a mosquitto broker
# there and has the panel publish to it (topics in the README):
# `mosquitto_sub -p 1883 -t 'cctv/#' -v` shows them.
# Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -p panel -p camera-agent --features camera-agent/file

BIN=target/release
PORT=${PANEL_PORT:-7700}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Credentials for the local agents, issued afresh each run (the panel keeps
# the secret; the agent's file gets it with the certificate's fingerprint).
mkdir -p data/agents
chmod 700 data/agents
enroll() { # ID NAME
  (umask 077 && "$BIN/panel" camera add --replace --id "$1" --name "$2" --panel "127.0.0.1:$PORT" > "data/agents/$1.toml")
}
enroll front-door "Front door"
enroll yard "Yard"
enroll garage "Garage"

CONFIG=()
if [ -n "${CCTV_MQTT_PORT:-}" ]; then
  mosquitto -p "$CCTV_MQTT_PORT" &
  pids+=($!)
  printf '[mqtt]\nbroker = "127.0.0.1:%s"\n' "$CCTV_MQTT_PORT" > data/panel-mqtt.toml
  CONFIG=(--config data/panel-mqtt.toml)
  echo "MQTT broker on port $CCTV_MQTT_PORT: mosquitto_sub -p $CCTV_MQTT_PORT -t 'cctv/#' -v"
fi

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  "$BIN/panel" --listen "0.0.0.0:$PORT" "${CONFIG[@]}" &
else
  echo "No display: running the headless panel (panel serve)."
  "$BIN/panel" serve --listen "0.0.0.0:$PORT" "${CONFIG[@]}" &
fi
PANEL_PID=$!
pids+=($PANEL_PID)
sleep 1

"$BIN/camera-agent" --config data/agents/front-door.toml --spool-dir data/spool --source test-pattern:640x360 --fps 10 --overlay --audio tone &
pids+=($!)
"$BIN/camera-agent" --config data/agents/yard.toml --spool-dir data/spool --source test-pattern:640x360 --fps 15 &
pids+=($!)
"$BIN/camera-agent" --config data/agents/garage.toml --spool-dir data/spool --source test-pattern:320x240 --fps 5 &
pids+=($!)
VIDEO=${CCTV_TESTDATA:-../shared/testdata}/video/vtest.avi
if [ -f "$VIDEO" ]; then
  enroll walkway "Walkway"
  "$BIN/camera-agent" --config data/agents/walkway.toml --spool-dir data/spool --source "file:$VIDEO" --overlay &
  pids+=($!)
fi

echo "Panel on port $PORT with ${#pids[@]} processes. In another terminal: $BIN/panel cameras; $BIN/panel recordings. Ctrl-C to stop."
wait "$PANEL_PID"
