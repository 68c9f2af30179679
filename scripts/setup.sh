#!/usr/bin/env bash
# Set up everything on a fresh Debian machine: system libraries for napari under
# Xvfb, a virtual environment in .venv with the project and its test tools, and the
# CPU build of PyTorch (pinned in the same pip command: unpinned, pip pulls CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES="xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0 \
libxcb-xinerama0 libxcb-xkb1 libxcb-shape0 libxcb-cursor0 libxkbcommon-x11-0 libgl1 libegl1 \
libgl1-mesa-dri libdbus-1-3 libfontconfig1 libglib2.0-0"

missing=""
for package in $SYSTEM_PACKAGES; do
  dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
  echo "setup: installing system packages:$missing" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -e ".[test]" "torch==2.13.0"
echo "setup: ready (.venv)" >&2
