#!/usr/bin/env bash
# Several recording servers on one PostgreSQL catalog, seen from a third
# panel's window under a virtual display (Xvfb): servers "hall" and "gate"
# (`panel serve`) record two cameras each; the window of server "desk"
# shows all four live. Then "hall" is killed and its cameras show why they
# are offline. Saves servers-wall.png and servers-down.png to
# docs/screenshots/ (or the folder given).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build -p panel -p camera-agent
OUT=${1:-docs/screenshots}
mkdir -p "$OUT"
export OUT
exec xvfb-run -a -s '-screen 0 1280x800x24' bash -c '
set -euo pipefail
WORK=$(mktemp -d)
chmod 755 "$WORK"
pids=()
PG=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_pg "$PG/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/pg"
as_pg "$PG/initdb" -D "$WORK/pg" -A trust -U cctv >/dev/null
as_pg "$PG/pg_ctl" -D "$WORK/pg" -o "-p 7796 -k $WORK/pg -c listen_addresses=127.0.0.1" -l "$WORK/pg/log" -w start >/dev/null
"$PG/createdb" -h 127.0.0.1 -p 7796 -U cctv cctv
URL=postgres://cctv@127.0.0.1:7796/cctv
server() { # ID PORT
  mkdir -p "$WORK/$1"
  cat > "$WORK/$1/panel.toml" <<TOML
listen = "127.0.0.1:$2"
data_dir = "$WORK/$1/data"
recordings_dir = "$WORK/$1/recordings"
database = "$URL"
server_id = "$1"
segment_secs = 10
TOML
}
server hall 7797
server gate 7798
server desk 7799
target/debug/panel serve --config "$WORK/hall/panel.toml" 2>"$WORK/hall.log" & pids+=($!)
HALL=${pids[-1]}
target/debug/panel serve --config "$WORK/gate/panel.toml" 2>"$WORK/gate.log" & pids+=($!)
sleep 3
agent() { # SERVER PORT ID NAME SOURCE
  target/debug/panel camera add --config "$WORK/$1/panel.toml" --id "$3" --name "$4" --panel "127.0.0.1:$2" > "$WORK/$3.toml"
  target/debug/camera-agent --config "$WORK/$3.toml" --spool-dir "$WORK/spool-$3" --source "$5" --fps 10 2>/dev/null & pids+=($!)
}
agent hall 7797 lobby "Lobby" test-pattern:640x360
agent hall 7797 stairs "Stairs" test-pattern:640x360
agent gate 7798 north-gate "North gate" test-pattern:640x360
agent gate 7798 loading "Loading bay" test-pattern:640x360
target/debug/panel --config "$WORK/desk/panel.toml" 2>"$WORK/desk.log" & pids+=($!)
sleep 15
import -window root "$OUT/servers-wall.png"; echo "wrote $OUT/servers-wall.png"
kill -KILL "$HALL"
sleep 25
import -window root "$OUT/servers-down.png"; echo "wrote $OUT/servers-down.png"
'
