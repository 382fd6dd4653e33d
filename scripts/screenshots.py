#!/usr/bin/env python
"""Render screenshots of the vo-al main window into docs/screenshots/ (PNG).

    .venv/bin/python scripts/screenshots.py [PROJECT] [--out docs/screenshots] [--copy]

With PROJECT (e.g. a demo project made by `vo-al demo`, or `vo-al simulate`'s
simulation/project) the window opens it and each tab is captured; without it, or when the
folder is not there, the empty window is captured. Runs offscreen (QT_QPA_PLATFORM=offscreen)
unless a display is set and --display is given, e.g. under `xvfb-run -a`.
--copy opens a temporary copy of the project so that the original is left untouched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _settle(app, seconds: float) -> None:
    """Let the event loop lay out, paint and finish quick refreshes."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.replace("&", "").lower()).strip("-")


def render(project: Path | None, out: Path, size=(1100, 850), settle: float = 1.5) -> list[Path]:
    from PyQt6.QtWidgets import QApplication

    sys.path.insert(0, str(REPO))
    from vo_al.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("vo-al")
    window = MainWindow(project)
    window.resize(*size)
    window.show()
    _settle(app, settle)

    out.mkdir(parents=True, exist_ok=True)
    written = []
    if window.project is None:
        path = out / "main-window-empty.png"
        window.grab().save(str(path), "PNG")
        written.append(path)
    else:
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            _settle(app, settle)
            path = out / f"main-window-{_slug(window.tabs.tabText(index))}.png"
            window.grab().save(str(path), "PNG")
            written.append(path)
        window.tabs.setCurrentIndex(0)
    window.close()
    if window.project is not None:
        window.project.close()
    _settle(app, 0.1)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", nargs="?", type=Path, help="project folder to open")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--copy", action="store_true",
                        help="open a temporary copy of PROJECT (the original is not touched)")
    parser.add_argument("--display", action="store_true",
                        help="use the current $DISPLAY (e.g. under xvfb-run) instead of offscreen")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=850)
    args = parser.parse_args(argv)

    if not args.display:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    project = args.project
    if project is not None and not (project / "project.json").is_file():
        print(f"no vo-al project at {project}: capturing the empty window", file=sys.stderr)
        project = None
    with tempfile.TemporaryDirectory(prefix="vo-al-shots-") as tmp:
        if project is not None and args.copy:
            copy = Path(tmp) / project.name
            shutil.copytree(project, copy)
            project = copy
        written = render(project, args.out, (args.width, args.height))
    for path in written:
        print(f"{path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
