"""Longest event-loop stall of the desktop app while it trains and scores (target < 50 ms).

A 5 ms QTimer runs on the GUI thread and records the gap between ticks: first with the window
idle (the baseline, measured in the same run), then while the main window trains the CNN and
scores the pool on its worker thread. Offscreen Qt platform.

Usage: python benchmarks/bench_gui_stall.py [N_POOL=50000] [--write]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]


def main(argv):
    n_pool = int(argv[0]) if argv and argv[0].isdigit() else 50_000
    from PyQt6.QtCore import QEventLoop, QTimer
    from PyQt6.QtWidgets import QApplication

    from session_fixtures import fill_project
    from vo_al.core.project import Project
    from vo_al.core.settings import ProjectSettings
    from vo_al.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)

    def measure(seconds=None, step=None, window=None):
        gaps.clear()
        loop = QEventLoop()
        if step:
            window.job_done.connect(loop.quit)
            window.run_step(step)
        else:
            QTimer.singleShot(int(seconds * 1000), loop.quit)
        last[0] = time.perf_counter()
        timer.start()
        loop.exec()
        timer.stop()
        if step:
            window.job_done.disconnect(loop.quit)
        g = np.array(gaps) * 1e3
        return {"max_ms": float(g.max()), "p99_ms": float(np.percentile(g, 99)), "ticks": len(g),
                "at_s": float(np.cumsum(g)[int(np.argmax(g))] / 1e3), "total_s": float(g.sum() / 1e3)}

    with tempfile.TemporaryDirectory() as tmp:
        s = ProjectSettings.default()
        s.method.max_epochs = 3
        folder = Path(tmp) / "proj"
        project = Project.create(folder, folder / "pool", s)
        fill_project(project, n_train=2000, n_pool=n_pool)
        project.close()
        window = MainWindow(folder)
        window.show()
        if "--preload" in argv:      # what `vo-al gui` does at start-up
            from vo_al.gui.app import preload_backend

            preload_backend().join()
        idle = measure(seconds=3)
        train = measure(step="train", window=window)
        score = measure(step="score", window=window)
        window.close()
    result = {"idle": idle, "train": train, "score": score, "n_pool": n_pool}
    mode = "backend preloaded at start-up (as `vo-al gui` does)" if "--preload" in argv else \
        "cold: the first Train imports TensorFlow"
    for k in ("idle", "train", "score"):
        print(f"{k:6s} longest gap {result[k]['max_ms']:7.1f} ms  p99 {result[k]['p99_ms']:6.1f} ms "
              f" ({result[k]['ticks']} ticks; longest at {result[k]['at_s']:.1f} of "
              f"{result[k]['total_s']:.1f} s)")
    if "--write" in argv:
        sys.path.insert(0, str(HERE))
        from results import replace_section

        replace_section(f"GUI responsiveness, {mode.split(':')[0].split(' (')[0]}", [
            f"Main window offscreen; a 5 ms QTimer on the GUI thread records the gaps between its "
            f"ticks. Training: 2 000 labelled spectra, 3 epochs; scoring: a pool of {n_pool:,}. "
            f"Mode: {mode}.",
            "",
            "| phase | longest gap (ms) | p99 gap (ms) | ratio of longest gap to idle |",
            "|---|---:|---:|---:|",
            *[f"| {k} | {result[k]['max_ms']:.1f} | {result[k]['p99_ms']:.1f} | "
              f"{result[k]['max_ms'] / idle['max_ms']:.1f} |" for k in ("idle", "train", "score")],
            "",
            "Target: the longest stall under 50 ms.",
        ])


if __name__ == "__main__":
    main(sys.argv[1:])
