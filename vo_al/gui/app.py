"""Entry point of the desktop application: `vo-al gui [PROJECT]`."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path


def preload_backend() -> threading.Thread:
    """Import Keras, its backend and imbalanced-learn on a background thread, once, at start-up.

    Importing TensorFlow holds the GIL for ~0.5 s in stretches of C code; when the first Train
    did that import, the event loop stalled that long (benchmarks/bench_gui_stall.py). At start-up
    the same pause happens while the window is still being looked at, not during a job.
    """
    def load():
        import imblearn.over_sampling  # noqa: F401  (scikit-learn: another long import)

        from vo_al.core.model import _keras

        _keras()

    thread = threading.Thread(target=load, name="vo-al-preload-keras", daemon=True)
    thread.start()
    return thread


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
    preload_backend()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
