#!/usr/bin/env bash
# The desktop SAMP stack vo-al's SAMP tests talk to: JSAMP (hub + snooper), TOPCAT, Aladin, Xvfb.
#
#   scripts/samp-stack.sh install          apt: jsamp topcat aladin xvfb x11-utils (idempotent)
#   scripts/samp-stack.sh check            exit 0 when everything is installed
#   scripts/samp-stack.sh xvfb start [:N]  start Xvfb on display :N (default :97), print DISPLAY
#   scripts/samp-stack.sh xvfb stop  [:N]  stop the Xvfb this script started on :N
#
# install needs root and apt-get (CI; Debian/Ubuntu). Another process may hold the dpkg lock:
# we wait for it (up to 15 minutes) instead of failing.
set -euo pipefail
PKGS=(jsamp topcat aladin xvfb x11-utils)
CMDS=(jsamp topcat aladin Xvfb xdpyinfo)
STATE=${VO_AL_SAMP_STATE:-/tmp/vo-al-samp-stack}

have_all() {
    local c
    for c in "${CMDS[@]}"; do command -v "$c" >/dev/null 2>&1 || return 1; done
}

install() {
    if have_all; then echo "samp-stack: already installed"; return 0; fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "samp-stack: need root and apt-get to install ${PKGS[*]}" >&2; return 2
    fi
    export DEBIAN_FRONTEND=noninteractive
    local t0=$SECONDS
    if ! apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "${PKGS[@]}"; then
        apt-get -o DPkg::Lock::Timeout=900 update
        apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "${PKGS[@]}"
    fi
    have_all
    echo "samp-stack: installed ${PKGS[*]} in $((SECONDS - t0)) s"
}

xvfb() {
    local action=${1:?start|stop} disp=${2:-:97}
    local pidf="$STATE/xvfb${disp#:}.pid"
    mkdir -p "$STATE"
    case $action in
    start)
        if xdpyinfo -display "$disp" >/dev/null 2>&1; then echo "DISPLAY=$disp"; return 0; fi
        setsid Xvfb "$disp" -screen 0 1600x1000x24 -nolisten tcp >"$STATE/xvfb${disp#:}.log" 2>&1 </dev/null &
        echo $! >"$pidf"
        for _ in $(seq 100); do
            xdpyinfo -display "$disp" >/dev/null 2>&1 && { echo "DISPLAY=$disp"; return 0; }
            sleep 0.1
        done
        echo "samp-stack: Xvfb did not start on $disp (see $STATE/xvfb${disp#:}.log)" >&2; return 1 ;;
    stop)
        if [ -f "$pidf" ]; then kill "$(cat "$pidf")" 2>/dev/null || true; rm -f "$pidf"; fi ;;
    *) echo "usage: $0 xvfb start|stop [:N]" >&2; return 2 ;;
    esac
}

case ${1:-} in
install) install ;;
check) have_all ;;
xvfb) shift; xvfb "$@" ;;
*) echo "usage: $0 install | check | xvfb start|stop [:N]" >&2; exit 2 ;;
esac
