"""Entry point of the desktop application: `vo-al gui [PROJECT]`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def missing_display(environ=os.environ, platform: str = sys.platform) -> str | None:
    """Why no window can open here, or None. Without it Qt aborts the process (SIGABRT, "could
    not connect to display") after a screenful of plugin messages."""
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display to open the window on ($DISPLAY and $WAYLAND_DISPLAY are unset): run it "
            "in a desktop session, over `ssh -X`, or under `xvfb-run -a vo-al gui`; every step "
            "is also a command (`vo-al --help`)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vo-al gui", description="vo-al desktop application")
    parser.add_argument("project", nargs="?", type=Path, help="project folder to open")
    args, qt_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    reason = missing_display()
    if reason is not None:
        print(f"vo-al gui: {reason}", file=sys.stderr)
        return 2

    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QApplication

    from vo_al.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("vo-al")
    window = MainWindow(args.project)
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    if not window.restore_layout():
        window.resize(1100, 850)
    window.show()
    if args.project is None:
        window.offer_demo_if_first_run(Path.home() / "vo-al-demo")
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
