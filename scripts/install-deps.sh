#!/usr/bin/env bash
# Installs what building and testing need on Debian/Ubuntu: system packages
# through apt (as root, or with sudo), and checks for the Rust toolchain.
set -euo pipefail

PACKAGES=(
  # opencv crate: bindings are generated against the system OpenCV with libclang
  libopencv-dev clang libclang-dev pkg-config
  # turbojpeg crate builds libjpeg-turbo 3 with SIMD (and opus, libopus)
  cmake nasm
  # cpal (the agent's microphones): ALSA's headers
  libasound2-dev
  # ffprobe, used by tests to check recordings; bc sums test counts
  ffmpeg bc
  # the GUI under a virtual display, and screenshots
  xvfb x11-apps imagemagick xdotool
  # two CPU hogs for scripts/soak.sh
  stress-ng
  # the MQTT broker the tests (and scripts/run.sh, when asked) start
  mosquitto mosquitto-clients
  # PostgreSQL: tests start throwaway servers for the shared catalog of
  # several recording servers (initdb and pg_ctl, no system service)
  postgresql
  # the package test: dpkg makes and installs .deb files; the users the
  # packages add
  dpkg-dev adduser
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "Rust is not installed: install it from https://rustup.rs (stable, 1.95 or newer), then run this again." >&2
  exit 1
fi

# Debian packages (scripts/package.sh, and the package test).
if ! cargo deb --version >/dev/null 2>&1; then
  echo "Installing cargo-deb"
  cargo install cargo-deb --locked --version 3.8.0
fi
