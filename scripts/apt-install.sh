#!/usr/bin/env bash
# apt-get install PACKAGE..., quietly; if that fails (a fresh image's package lists are missing
# or stale), apt-get update and try once more. Waits up to 15 min for the dpkg lock (another
# set-up script may hold it). Needs root and apt-get: the callers check where they may install.
set -euo pipefail
apt_get() { apt-get -o DPkg::Lock::Timeout=900 "$@"; }
apt_get install -y -q "$@" >/dev/null \
    || { apt_get update -q >/dev/null && apt_get install -y -q "$@" >/dev/null; }
