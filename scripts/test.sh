#!/usr/bin/env bash
# Install vo-al with its test dependencies in .venv (first time) and run the whole test suite.
# Extra arguments go to pytest (e.g. -k session, -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test

# The real VO server (DaCHS + PostgreSQL on 127.0.0.1) for the tests: set it up where we may
# (root with apt-get, e.g. CI); idempotent, ~0.5 s when already set up.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ "${VO_AL_NO_DACHS:-0}" != 1 ]; then
    scripts/dachs.sh install
    scripts/dachs.sh start
    [ -f /var/gavo/inputs/lamost/imported.json ] || scripts/dachs.sh import 1000 1
    [ -f /var/gavo/inputs/ccd700/imported.json ] || scripts/dachs.sh import-ccd700 300 1
fi
# Shared libraries the PyQt6 wheels load even offscreen (present on most desktops; not always
# on a minimal server image)
scripts/qt-libs.sh offscreen

# The desktop SAMP stack (JSAMP, TOPCAT, Aladin, Xvfb) for tests/test_samp*.py (idempotent)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ "${VO_AL_NO_SAMP_APPS:-0}" != 1 ]; then
    scripts/samp-stack.sh install
fi
# The validators of packaging/'s desktop entry and AppStream metadata (tests/test_packaging.py)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
        && ! { command -v desktop-file-validate && command -v appstreamcli; } >/dev/null; then
    scripts/apt-install.sh desktop-file-utils appstream
fi
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
