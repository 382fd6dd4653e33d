#!/usr/bin/env bash
# Install vo-al with its test dependencies in .venv (first time) and run the whole test suite.
# Extra arguments go to pytest (e.g. -k session, -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
