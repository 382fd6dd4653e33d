#!/usr/bin/env bash
# Install the Debian shared libraries the PyQt6 wheels load, where we may (root with apt-get);
# elsewhere say which are missing and carry on (a desktop usually has them).
#   scripts/qt-libs.sh offscreen   what QT_QPA_PLATFORM=offscreen needs (tests, CI)
#   scripts/qt-libs.sh x11         + Qt's xcb platform plugin (a window on an X display;
#                                  Qt >= 6.5 needs libxcb-cursor0, often absent)
#   scripts/qt-libs.sh xvfb        + Xvfb, for screenshots without a display
set -euo pipefail
kind="${1:-offscreen}"
libs="libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3"
x11="libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
     libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1
     libxkbcommon-x11-0 fonts-dejavu-core"
case "$kind" in
    offscreen) ;;
    x11) libs="$libs $x11" ;;
    xvfb) libs="$libs $x11 xvfb xauth" ;;
    *) echo "usage: $0 offscreen|x11|xvfb" >&2; exit 2 ;;
esac
command -v dpkg-query >/dev/null || exit 0          # not Debian: nothing we can check
missing=$(for p in $libs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    "$(dirname "$0")/apt-install.sh" $missing
else
    echo "vo-al: the Qt window may need these Debian packages (sudo apt-get install):" \
         $missing >&2
fi
