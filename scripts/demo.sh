#!/usr/bin/env bash
# Install vo-al in .venv (first time) and run the offline demo: synthetic survey, active
# learning with a simulated oracle, candidates and a precision plot in ./demo-project.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/vo-al demo --out "${VO_AL_DEMO_DIR:-demo-project}" "$@"
