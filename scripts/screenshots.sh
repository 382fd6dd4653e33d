#!/usr/bin/env bash
# Render the README's screenshots (docs/screenshots/*.png) of a demo project mid-iteration,
# under Xvfb: the real xcb platform, fonts and window decorations, no display needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/qt-libs.sh xvfb
exec xvfb-run -a -s "-screen 0 1400x1100x24" .venv/bin/python scripts/screenshots.py --demo \
    --display "$@"
