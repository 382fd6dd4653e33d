#!/usr/bin/env python
"""Render screenshots of the vo-al main window into docs/screenshots/ (PNG).

    xvfb-run -a .venv/bin/python scripts/screenshots.py --demo --display
    .venv/bin/python scripts/screenshots.py [PROJECT] [--out docs/screenshots] [--copy]

--demo builds the state worth showing in a temporary folder, through the core: a small synthetic
demo project, one whole iteration answered by the simulated oracle (so the dashboard has an
estimate), then the next iteration trained, scored and queried with a few spectra labelled (so
the labelling view has a spectrum waiting); the cross-match runs on the shipped offline
catalogues. With PROJECT the window opens it (a copy with --copy); without either, the empty
window is captured. Runs offscreen unless --display is given (a real or Xvfb X server: the
xcb platform, real fonts and window decorations drawn by Qt).
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


def build_demo_state(workdir: Path) -> Path:
    """A demo project in the middle of its second iteration (core calls only)."""
    sys.path.insert(0, str(REPO))
    from vo_al.core.base.progress import run_job
    from vo_al.core.session.loop import ActiveLearningSession
    from vo_al.core.demo.simulate import advance_iteration, demo_config, demo_settings, prepare

    settings = demo_settings()
    settings.method.batch_size = 30
    settings.method.precision_sample = 20
    settings.method.max_epochs = 6
    project, oracle = run_job(prepare(workdir, demo_config(n_train=600, n_pool=3000, workers=1),
                                      settings))
    session = ActiveLearningSession(project)
    run_job(advance_iteration(session, oracle))          # train, score, query, label, estimate
    run_job(session.train())
    run_job(session.score())
    session.query()
    for item in session.pending()[:3]:
        session.label(item.pool_index, oracle(item.pool_index))
    project.close()
    return workdir / "project"


def _wait(app, done, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError("the window did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def shoot_label_grid(app, window, out: Path, settle: float) -> Path:
    """The Label tab in grid mode: a page of the batch's windows, the current one framed."""
    window.tabs.setCurrentWidget(window.labelling)
    window.label_grid.set_on(True)
    _settle(app, settle)
    path = out / "label-grid.png"
    window.grab().save(str(path), "PNG")
    window.label_grid.set_on(False)
    return path


def shoot_row_spectrum(app, window, out: Path, settle: float) -> Path:
    """The spectrum window of a candidates row (what a double-click opens): the candidate most
    likely double-peaked, its lines marked, its metadata beside it."""
    import numpy as np

    table = window.dashboard.model.table
    pool_index = int(table["pool_index"][int(np.argmax(table["p_double"]))])
    window.tabs.setCurrentWidget(window.dashboard)
    window.dashboard.select_pool_index(pool_index)
    view = window.spectrum_window
    window.show_spectrum(pool_index)
    _wait(app, lambda: view.whole.spectrum is not None or view.whole.reason)
    _settle(app, settle)
    path = out / "row-spectrum.png"
    view.grab().save(str(path), "PNG")
    view.close()
    return path


def shoot_sexagesimal_table(app, window, out: Path, settle: float) -> Path:
    """The candidates table with RA/Dec in sexagesimal and a numeric filter typed."""
    window.tabs.setCurrentWidget(window.dashboard)
    window.sexagesimal_action.setChecked(True)
    window.dashboard.filter.setText("p_double > 0.5 and snr > 20")
    window.dashboard.table.scrollToTop()
    _settle(app, settle)
    path = out / "dashboard-sexagesimal-filtered.png"
    window.grab().save(str(path), "PNG")
    window.dashboard.filter.clear()
    window.sexagesimal_action.setChecked(False)
    return path


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
        _wait(app, lambda: not window.dashboard.is_refreshing)
        panel = window.crossmatch               # the demo's own catalogues (offline)
        if panel.run() is not None:
            _wait(app, lambda: not panel.is_running)
        window.labelling.setFocus()
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            _settle(app, settle)
            if window.tabs.currentWidget() is window.labelling:
                _wait(app, lambda: "loading" not in window.labelling.full_plot.plotItem.titleLabel.text)
            path = out / f"main-window-{_slug(window.tabs.tabText(index))}.png"
            window.grab().save(str(path), "PNG")
            written.append(path)
        written.append(shoot_label_grid(app, window, out, settle))
        written.append(shoot_row_spectrum(app, window, out, settle))
        written.append(shoot_sexagesimal_table(app, window, out, settle))
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
    parser.add_argument("--demo", action="store_true",
                        help="build a demo project mid-iteration in a temporary folder and open it")
    parser.add_argument("--copy", action="store_true",
                        help="open a temporary copy of PROJECT (the original is not touched)")
    parser.add_argument("--display", action="store_true",
                        help="use the current $DISPLAY (e.g. under xvfb-run) instead of offscreen")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args(argv)

    if not args.display:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    project = args.project
    if project is not None and not (project / "project.json").is_file():
        print(f"no vo-al project at {project}: capturing the empty window", file=sys.stderr)
        project = None
    with tempfile.TemporaryDirectory(prefix="vo-al-shots-") as tmp:
        if args.demo:
            project = build_demo_state(Path(tmp) / "demo")
        elif project is not None and args.copy:
            copy = Path(tmp) / project.name
            shutil.copytree(project, copy)
            project = copy
        written = render(project, args.out, (args.width, args.height))
    for path in written:
        print(f"{path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
