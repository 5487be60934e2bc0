#!/usr/bin/env bash
# Debian packages of the camera agent (the lean camera-host build) and the
# panel, each with its systemd unit, default config under /etc and system
# user: target/debian/camera-agent_*.deb and target/debian/cctv-panel_*.deb.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
cargo deb -p camera-agent -- --locked
cargo deb -p panel -- --locked
ls -1 target/debian/*.deb
