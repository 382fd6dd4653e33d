"""Longest event-loop stall of the desktop app while it trains and scores (target < 50 ms).

A 5 ms QTimer runs on the GUI thread and records the gap between ticks: first with the window
idle (the baseline, measured in the same run), then while the main window trains the CNN and
scores the pool. Offscreen Qt platform.

Each way of running the steps is measured in a fresh Python process of its own, on the same data:
  thread    baseline: train and score on the window's worker thread, Keras imported at start-up
            (the app before child processes; Keras's tracing of the train step and a model's
            first prediction hold the GIL for 90-350 ms)
  process   the app (vo_al/gui/step_jobs.py): train and score in child processes; the window's
            process never imports TensorFlow
`--only=MODE` measures one mode in this process.

Usage: python benchmarks/bench_gui_stall.py [N_POOL=50000] [--only=MODE] [--write]
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

MODES = {"thread": "train and score on the worker thread (the app before child processes)",
         "process": "train and score in child processes (the app: vo_al/gui/step_jobs.py)"}


def in_thread_factory(window, name):
    """The baseline: every long step on the worker thread, the device reported first."""
    from vo_al.core.base.progress import Progress
    from vo_al.gui.step_jobs import step_job_factory

    if name not in ("train", "score", "finish"):
        return step_job_factory(window.session, name)
    job_method = getattr(window.session, name)

    def factory(token):
        from vo_al.core.learning.model import describe_device

        device = describe_device()
        yield Progress("device", 1, 1, device, {"device": device})
        return (yield from job_method(token))

    return factory


def app_factory(window, name):
    from vo_al.gui.step_jobs import step_job_factory

    return step_job_factory(window.session, name)


FACTORIES = {"thread": in_thread_factory, "process": app_factory}


def preload_backend() -> None:
    """What the app did at start-up while it trained on a thread: import Keras (and
    imbalanced-learn) once, so that the first Train did not pay the import's GIL stalls."""
    import imblearn.over_sampling  # noqa: F401  (scikit-learn: another long import)

    from vo_al.core.learning.model import _keras

    _keras()


def run_modes(argv, modes) -> dict:
    """Each mode in a fresh interpreter (`--only=MODE`); returns {mode: its measurements}."""
    import json
    import subprocess

    options = [a for a in argv if a.isdigit()]
    out = {}
    for mode in modes:
        run = subprocess.run([sys.executable, __file__, *options, f"--only={mode}", "--json"],
                             capture_output=True, text=True)
        lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
        if run.returncode != 0 or not lines:
            raise SystemExit(f"mode {mode} failed:\n{run.stdout}\n{run.stderr[-3000:]}")
        out[mode] = json.loads(lines[-1])
    return out


def measure_mode(n_pool: int, mode: str) -> dict:
    """In this process: idle baseline, then train and score through the main window."""
    from PyQt6.QtCore import QEventLoop, QTimer
    from PyQt6.QtWidgets import QApplication

    from session_fixtures import fill_project
    from vo_al.core.session.project import Project
    from vo_al.core.session.settings import ProjectSettings
    from vo_al.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])  # noqa: F841  (kept alive while measuring)
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
            if window.worker.error is not None:
                raise RuntimeError(f"{step} failed: {window.worker.error!r}")
        g = np.array(gaps) * 1e3
        return {"max_ms": float(g.max()), "p99_ms": float(np.percentile(g, 99)), "ticks": len(g),
                "at_s": float(np.cumsum(g)[int(np.argmax(g))] / 1e3), "total_s": float(g.sum() / 1e3)}

    MainWindow.job_factory = FACTORIES[mode]
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        s = ProjectSettings.default()
        s.method.max_epochs = 3
        folder = Path(tmp) / "proj"
        project = Project.create(folder, folder / "pool", s)
        fill_project(project, n_train=2000, n_pool=n_pool)     # fixed seed: the same data
        project.close()
        window = MainWindow(folder)
        window.show()
        if mode == "thread":
            preload_backend()
        result["idle"] = measure(seconds=3)
        result["train"] = measure(step="train", window=window)
        result["score"] = measure(step="score", window=window)
        window.close()
    return result


def main(argv):
    import json

    n_pool = int(argv[0]) if argv and argv[0].isdigit() else 50_000
    only = [a.split("=", 1)[1] for a in argv if a.startswith("--only=")]
    if any(m not in MODES for m in only):
        raise SystemExit(f"--only must name one of {', '.join(MODES)}")
    if only and "--json" in argv:           # one mode, for run_modes
        print(json.dumps(measure_mode(n_pool, only[0])))
        return
    modes = only or list(MODES)
    results = {m: measure_mode(n_pool, m) for m in modes} if len(modes) == 1 else \
        run_modes(argv, modes)
    print(f"pool {n_pool:,}")
    rows = []
    for m in modes:
        r = results[m]
        print(f"{m}: {MODES[m]}")
        for k in ("idle", "train", "score"):
            print(f"  {k:6s} longest gap {r[k]['max_ms']:7.1f} ms  p99 {r[k]['p99_ms']:6.1f} ms  "
                  f"({r[k]['ticks']} ticks; longest at {r[k]['at_s']:.1f} of "
                  f"{r[k]['total_s']:.1f} s)")
            rows.append(f"| {m} | {k} | {r[k]['max_ms']:.1f} | {r[k]['p99_ms']:.1f} | "
                        f"{r[k]['max_ms'] / r['idle']['max_ms']:.1f} | {r[k]['total_s']:.1f} |")
    if "--write" in argv:
        sys.path.insert(0, str(HERE))
        from results import replace_section

        replace_section("GUI responsiveness", [
            f"Main window offscreen; a 5 ms QTimer on the GUI thread records the gaps between its "
            f"ticks. Training: 2 000 labelled spectra, 3 epochs; scoring: a pool of {n_pool:,}. "
            f"Each mode runs in a fresh process (its own idle baseline): "
            + "; ".join(f"{m}: {MODES[m]}" for m in modes) + ". Phase durations include the "
            "child's start-up and TensorFlow import.",
            "",
            "| mode | phase | longest gap (ms) | p99 gap (ms) | ratio of longest gap to idle | "
            "phase duration (s) |",
            "|---|---|---:|---:|---:|---:|",
            *rows,
            "",
            "Target: the longest stall under 50 ms.",
        ])


if __name__ == "__main__":
    main(sys.argv[1:])
