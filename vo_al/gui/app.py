"""Entry point of the desktop application: `vo-al gui [PROJECT]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vo-al gui", description="vo-al desktop application")
    parser.add_argument("project", nargs="?", type=Path, help="project folder to open")
    args, qt_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)

    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("vo-al")
    window = MainWindow(args.project)
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    window.resize(1100, 850)
    window.show()
    if args.project is None:
        window.offer_demo_if_first_run(Path.home() / "vo-al-demo")
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
