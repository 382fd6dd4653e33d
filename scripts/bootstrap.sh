#!/usr/bin/env bash
# Create .venv in the repository and install vo-al into it (idempotent; a second run is fast).
# Usage: scripts/bootstrap.sh [extras]   e.g. scripts/bootstrap.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"

if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 10)' 2>/dev/null; then
    echo "vo-al needs Python >= 3.10 as '$PY' (set PYTHON=...)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv 2>/dev/null; then
        # Debian/Ubuntu ship venv separately; install it when we may (root, apt)
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get -o DPkg::Lock::Timeout=900 update -qq && apt-get -o DPkg::Lock::Timeout=900 install -y -qq python3-venv >/dev/null
            rm -rf .venv && "$PY" -m venv .venv
        else
            echo "cannot create a virtual environment: install python3-venv" >&2
            exit 1
        fi
    fi
fi
# An NVIDIA GPU that the driver sees: the 'gpu' extra (JAX with CUDA; VO_AL_GPU=0 to skip)
if [ "${VO_AL_GPU:-auto}" != 0 ] && command -v nvidia-smi >/dev/null \
        && nvidia-smi -L >/dev/null 2>&1 && [[ ",$extras," != *",gpu,"* ]]; then
    extras="${extras:+$extras,}gpu"
fi
stamp=".venv/.vo-al-installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    # pip's and the backend's chatter (setuptools' editable-install banner, TensorFlow's
    # start-up lines) is shown only when something fails
    log=$(mktemp)
    if ! .venv/bin/python -m pip install -q -e "$spec" >"$log" 2>&1; then
        grep -v "^WARNING: Location" "$log" >&2; rm -f "$log"; exit 1
    fi
    if ! .venv/bin/python -c "import vo_al.core.session, keras" >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"; exit 1
    fi
    rm -f "$log"
    touch "$stamp"
fi
