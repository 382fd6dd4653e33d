#!/usr/bin/env bash
# Install vo-al in .venv (first time) and run the offline demo: synthetic survey, active
# learning with a simulated oracle, candidates and a precision plot in ./demo-project.
# With a display, the desktop app then opens on the demo project (VO_AL_DEMO_NO_GUI=1: not).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
out="${VO_AL_DEMO_DIR:-demo-project}"
.venv/bin/vo-al demo --out "$out" "$@"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "${VO_AL_DEMO_NO_GUI:-0}" != 1 ]; then
    scripts/qt-libs.sh x11
    echo "opening the desktop app on $out/project"
    exec .venv/bin/vo-al gui "$out/project"
fi
echo "no display: open the app later with  .venv/bin/vo-al gui $out/project"
