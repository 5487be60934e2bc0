#!/usr/bin/env bash
# Starts the panel under a virtual display (Xvfb) with four local agents
# (three test patterns, ../shared/testdata/video/vtest.avi and a clip whose
# lens is covered), drives it with the keyboard and mouse, and saves
# screenshots of the wall (motion, a tamper alarm), a focused camera, the
# help overlay, the history and playback to docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build -p panel -p camera-agent --features camera-agent/file
OUT=${1:-docs/screenshots}
mkdir -p "$OUT"
export OUT
# Where the playback screen's "Add a camera" list is (1280 and 800 wide).
export ADD_X=1000 ADD_X_SMALL=520 ADD_Y=62
exec xvfb-run -a -s '-screen 0 1280x800x24' bash -c '
set -euo pipefail
WORK=$(mktemp -d)
PORT=7795
cat > "$WORK/panel.toml" <<TOML
listen = "127.0.0.1:$PORT"
data_dir = "$WORK/data"
recordings_dir = "$WORK/recordings"
segment_secs = 4
TOML
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
target/debug/panel --config "$WORK/panel.toml" 2>"$WORK/panel.log" & pids+=($!)
sleep 2
A=target/debug/camera-agent
agent() { # ID NAME SOURCE [more flags]
  local id=$1 name=$2; shift 2
  target/debug/panel camera add --data "$WORK/data" --id "$id" --name "$name" --panel "127.0.0.1:$PORT" > "$WORK/$id.toml"
  $A --config "$WORK/$id.toml" --spool-dir "$WORK/spool" --source "$@" 2>/dev/null & pids+=($!)
}
# A camera whose lens is covered from 6 s to 12 s of each 12 s loop,
# started first so that the picture of the wall is taken while it is covered.
COVERED=${CCTV_TESTDATA:-../shared/testdata}/events/tamper_covered.mp4
if [ -f "$COVERED" ]; then
  agent back-door "Back door" "file:$COVERED"
  sleep 8
fi
# A camera back from an outage: its agent spools while its first panel (a
# dead address) does not answer, moves to this one after 8 s, and sends the
# outage slowly, so the wall shows it live and BACKFILLING.
target/debug/panel camera add --data "$WORK/data" --id porch --name "Porch" --panel "127.0.0.1:$PORT" > "$WORK/porch.toml"
PRINT=$(sed -n "s/^panel_fingerprint = \"\(.*\)\"/\1/p" "$WORK/porch.toml")
$A --config "$WORK/porch.toml" --source test-pattern:640x360 --fps 10 --spool-dir "$WORK/spool" \
  --panel 127.0.0.1:9 --panel "127.0.0.1:$PORT" --panel-fingerprint "$PRINT" --panel-fingerprint "$PRINT" \
  --failover 8 --backfill-rate 16K 2>/dev/null & pids+=($!)
agent front-door "Front door" test-pattern:640x360 --fps 10 --audio tone
agent yard "Yard" test-pattern:640x360 --fps 15
agent garage "Garage" test-pattern:320x240 --fps 5
GARAGE=${pids[-1]}
VIDEO=${CCTV_TESTDATA:-../shared/testdata}/video/vtest.avi
if [ -f "$VIDEO" ]; then
  agent walkway "Walkway" "file:$VIDEO" --overlay
fi

# An impostor: the yard camera id with a wrong secret, refused every time it tries.
$A --config "$WORK/yard.toml" --no-spool --secret "$(printf "0%.0s" $(seq 64))" --source test-pattern 2>/dev/null & pids+=($!)
sleep 10
# Stop the garage camera so the wall shows an offline tile.
kill -TERM "$GARAGE"
sleep 3
shot() { import -window root "$OUT/$1.png"; echo "wrote $OUT/$1.png"; }
# No window manager under Xvfb: give the panel the keyboard focus ourselves.
WIN=$(xdotool search --sync --name "CCTV panel" | head -1)
xdotool windowfocus --sync "$WIN"
xdotool mousemove 640 400
shot wall
xdotool key k; sleep 0.5
xdotool mousemove 300 200 click 1; sleep 2; shot focus
xdotool key Escape; sleep 0.5
# Front door sends the test tone: Listen (l), on a machine without a speaker.
xdotool mousemove 640 200 click 1; sleep 1; xdotool key l; sleep 1; shot focus-sound
xdotool key Escape; sleep 0.5
xdotool key h; sleep 1; shot help
xdotool key Escape; xdotool key 2; sleep 3; shot history
xdotool key Escape; xdotool key 3; sleep 2; shot settings
# Playback by time: the newest recording, a second camera beside it (the
# "Add a camera" list), then a clip marked with i and o and exported with x.
xdotool key p; sleep 3; shot playback
xdotool mousemove "$ADD_X" "$ADD_Y" click 1; sleep 1
xdotool mousemove "$ADD_X" "$((ADD_Y + 40))" click 1; sleep 3; shot playback-sync
xdotool key i; sleep 3; xdotool key o; xdotool key x; sleep 2; shot clip
# The same screens in a small window.
xdotool windowsize "$WIN" 800 600; sleep 3
small() { import -window root -crop 800x600+0+0 "$OUT/$1.png"; echo "wrote $OUT/$1.png"; }
xdotool key Escape; xdotool key p; sleep 3; small playback-800x600
xdotool mousemove "$ADD_X_SMALL" "$ADD_Y" click 1; sleep 1
xdotool mousemove "$ADD_X_SMALL" "$((ADD_Y + 40))" click 1; sleep 3; small playback-sync-800x600
xdotool key i; sleep 3; xdotool key o; xdotool key x; sleep 2; small clip-800x600
'
