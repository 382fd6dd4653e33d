"""Key press → whole spectrum drawn, in the labelling view, with and without read-ahead.

The pool's sources are URLs on a loopback HTTP server that answers each file after DELAY seconds
(default 0.2 s: a remote archive's round trip; the local DaCHS answers in ~7.5 ms, see Harvest).
A simulated expert moves to the next spectrum every PACE seconds (default 0.5 s: a quick look),
and the script records the time from each key press until the whole spectrum is on screen.
Baseline, in the same run: read-ahead 0 (only the spectrum on screen is fetched, as before
prefetching). Each condition starts with an empty download cache and a fresh view.

Usage: python benchmarks/bench_labelling.py [--delay 0.2] [--pace 0.5] [--n 30] [--write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]
N_FILES = 40


def serve(www: Path, delay: float):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(delay)
            number = int(self.path.rsplit("-", 1)[-1].split(".")[0])
            body = (www / f"spec-{number % N_FILES}.fits").read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def make_project(folder: Path, base_url: str, n_pool: int):
    from session_fixtures import profile_rows, tiny_settings
    from vo_al.core.base.progress import run_job
    from vo_al.core.session.project import Project
    from vo_al.core.session.loop import ActiveLearningSession

    rng = np.random.default_rng(0)
    project = Project.create(folder, folder / "pool", tiny_settings(batch_size=60, max_epochs=1))
    y0 = rng.choice(3, 300, p=[0.47, 0.41, 0.12])
    project.training.add_rows(profile_rows(y0, rng), [{"name": f"t{i}"} for i in range(300)],
                              settings=project.settings.preprocess)
    project.store.set_training_labels([f"t{i}" for i in range(300)], y0)
    truth = rng.choice(3, n_pool, p=[0.9, 0.08, 0.02])
    project.pool.add_rows(profile_rows(truth, rng), [
        {"name": f"p{i}", "source": f"{base_url}/spec-{i}.fits"} for i in range(n_pool)],
        settings=project.settings.preprocess)
    session = ActiveLearningSession(project)
    run_job(session.train())
    run_job(session.score())
    session.query()
    return project, session


def measure(session, read_ahead: int, n: int, pace: float) -> np.ndarray:
    from PyQt6.QtCore import QEventLoop, QTimer

    from vo_al.core.vo.harvest import project_cache_folder
    from vo_al.core.session.preferences import UserPreferences
    from vo_al.gui.labelling import LabellingView

    shutil.rmtree(project_cache_folder(session.project.folder), ignore_errors=True)
    view = LabellingView()
    view.set_preferences(UserPreferences(prefetch=read_ahead))
    view.set_session(session)
    shown_at: dict[str, float] = {}
    view.spectrum_shown.connect(lambda source: shown_at.setdefault(source, time.perf_counter()))
    latencies = []
    loop = QEventLoop()
    QTimer.singleShot(int(pace * 1000), loop.quit)     # the first spectrum is looked at
    loop.exec()
    for _ in range(n):
        pressed = time.perf_counter()
        view.move(1)                                   # what the → key does
        source = view._source_on_screen
        while source not in shown_at:                  # until drawn (or its error shown)
            wait = QEventLoop()
            QTimer.singleShot(5, wait.quit)
            wait.exec()
        latencies.append(shown_at.pop(source) - pressed)
        shown_at.clear()
        rest = max(0.0, pace - latencies[-1])          # the expert looks at it
        wait = QEventLoop()
        QTimer.singleShot(int(rest * 1000), wait.quit)
        wait.exec()
    view.set_session(None)
    view.close()
    view.deleteLater()
    return np.array(latencies) * 1e3


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--pace", type=float, default=0.5)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)

    from PyQt6.QtWidgets import QApplication

    from vo_al.core.spectra.record import SpectrumMeta
    from vo_al.core.demo import make_lamost_spectrum, write_lamost_fits

    app = QApplication.instance() or QApplication([])  # noqa: F841
    with tempfile.TemporaryDirectory() as tmp:
        www = Path(tmp) / "www"
        www.mkdir()
        rng = np.random.default_rng(1)
        for i in range(N_FILES):
            wl, flux, ivar, andmask, ormask = make_lamost_spectrum(i % 3, rng)
            write_lamost_fits(www / f"spec-{i}.fits", wl, flux, ivar, andmask, ormask,
                              SpectrumMeta(name=f"spec-{i}", ra=10.0, dec=20.0))
        httpd = serve(www, args.delay)
        try:
            project, session = make_project(Path(tmp) / "proj",
                                            f"http://127.0.0.1:{httpd.server_port}", 2000)
            results = {k: measure(session, k, args.n, args.pace) for k in (0, 8)}
            project.close()
        finally:
            httpd.shutdown()
            httpd.server_close()

    lines = [f"Key press → whole spectrum drawn; files served over loopback HTTP with a "
             f"{args.delay * 1e3:.0f} ms delay each, the expert moving on every "
             f"{args.pace * 1e3:.0f} ms, {args.n} key presses per row "
             "(`benchmarks/bench_labelling.py`).", "",
             "| read-ahead | median ms | p90 ms | max ms | presses waiting > 50 ms |",
             "|---|---|---|---|---|"]
    for k, lat in results.items():
        lines.append(f"| {k} | {np.median(lat):.1f} | {np.percentile(lat, 90):.1f} | "
                     f"{lat.max():.1f} | {int((lat > 50).sum())} of {len(lat)} |")
    base, ahead = np.median(results[0]), np.median(results[8])
    lines += ["", f"Median wait with read-ahead 8: {ahead:.1f} ms = {ahead / base:.3f}× the "
                  f"baseline's {base:.0f} ms. Not counted: the spectrum shown when the view "
                  "opens, which nothing could read ahead of."]
    print("\n".join(lines))
    if args.write:
        from results import replace_section

        replace_section("Labelling: read-ahead of whole spectra", lines)


if __name__ == "__main__":
    main(sys.argv[1:])
