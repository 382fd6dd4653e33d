"""The desktop application, driven offscreen with pytest-qt (issue 5)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import time  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt, QTimer  # noqa: E402

from gui_support import make_project, no_leaks  # noqa: E402,F401
from vo_al.core.base.progress import Progress  # noqa: E402
from vo_al.gui.labelling import PRECISION_BANNER, QUERY_BANNER  # noqa: E402
from vo_al.gui.main_window import MainWindow  # noqa: E402
from vo_al.gui.progress_line import EtaClock, ProgressLine, format_eta, progress_text  # noqa: E402
from vo_al.gui.workers import JobRunner, JobWorker  # noqa: E402

JOB_TIMEOUT_MS = 120_000
KEYS = {0: Qt.Key.Key_1, 1: Qt.Key.Key_2, 2: Qt.Key.Key_3}



@pytest.fixture
def window(tmp_path, qtbot, no_leaks):
    folder, truth = make_project(tmp_path / "proj")
    w = MainWindow(folder)
    w.show()
    qtbot.waitExposed(w)
    held = [w, truth]          # emptied at teardown: pytest keeps fixture values until later
    yield held
    w.close()
    w.deleteLater()
    held.clear()
    del w


def run_step(qtbot, w, name):
    button = w.panel.buttons[name]
    assert button.isEnabled(), f"{name} disabled; next step {w.session.next_step()}"
    with qtbot.waitSignal(w.job_done, timeout=JOB_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert blocker.args == [name]
    assert w.worker.error is None, w.worker.error


def enabled(w):
    return {n for n, b in w.panel.buttons.items() if b.isEnabled()}


# -- the worker ---------------------------------------------------------------------------------
def counting_job(token, n=None, pause=0.005, fail_at=None):
    i = 0
    while n is None or i < n:
        if fail_at is not None and i == fail_at:
            raise ValueError(f"broken at step {i}")
        time.sleep(pause)            # the work, on the worker thread
        i += 1
        yield Progress("count", i, n)
    return i


def test_worker_returns_and_emits_in_order(qtbot):
    worker = JobWorker(lambda token: counting_job(token, n=5))
    seen = []
    worker.progress.connect(lambda p: seen.append(p.done))
    with qtbot.waitSignals([worker.started, worker.returned, worker.finished], order="strict",
                           timeout=10_000):
        worker.start()
    assert seen == [1, 2, 3, 4, 5] and worker.result == 5 and not worker.is_running


def test_worker_cancel_aborts_between_yields(qtbot):
    worker = JobWorker(lambda token: counting_job(token))      # endless until cancelled
    worker.progress.connect(lambda p: worker.cancel() if p.done == 3 else None)
    returned = []
    worker.returned.connect(returned.append)
    with qtbot.waitSignals([worker.aborted, worker.finished], order="strict", timeout=10_000):
        worker.start()
    assert worker.was_aborted and not returned and worker.error is None


def test_worker_error_is_delivered_not_swallowed(qtbot):
    worker = JobWorker(lambda token: counting_job(token, n=10, fail_at=2))
    with qtbot.waitSignals([worker.errored, worker.finished], order="strict", timeout=10_000):
        worker.start()
    assert isinstance(worker.error, ValueError) and "step 2" in str(worker.error)


def test_eta_clock():
    t = iter([0.0, 10.0])
    clock = EtaClock(lambda: next(t))
    assert clock.update(Progress("score", 0, 100)) is None
    assert clock.update(Progress("score", 25, 100)) == pytest.approx(30.0)
    assert format_eta(30.0) == "ETA 30s" and format_eta(125) == "ETA 2m05s"


def test_progress_text():
    assert progress_text(Progress("train", 3, 10, "loss 0.12"), "ETA 5s") == \
        "train: 3/10 loss 0.12 ETA 5s"
    assert progress_text(Progress("scan", 0, None, "looking in /x")) == "scan looking in /x"
    assert progress_text(Progress("ingest", 7)) == "ingest: 7"


def test_runner_refuses_while_running_and_names_the_signals(qtbot):
    runner = JobRunner()
    seen = []
    for signal in ("started", "returned", "finished"):
        getattr(runner, signal).connect(lambda *args, s=signal: seen.append((s, *args)))
    with qtbot.waitSignal(runner.finished, timeout=10_000):
        worker = runner.start("count", lambda token: counting_job(token, n=5, pause=0.02))
        assert runner.is_running and runner.start("other", counting_job) is None
    assert seen == [("started", "count"), ("returned", "count", 5), ("finished", "count", "done")]
    assert not runner.is_running and runner.worker is worker and worker.outcome == "done"


def test_queueing_runner_runs_in_order_and_replaces_a_waiting_job(qtbot):
    runner = JobRunner(queue=True)
    ended, results = [], []
    runner.finished.connect(lambda name, outcome: ended.append(name))
    runner.start("first", lambda token: counting_job(token, n=3, pause=0.05))
    runner.start("send", lambda token: counting_job(token, n=1), on_returned=results.append)
    runner.start("send", lambda token: counting_job(token, n=2), on_returned=results.append,
                 replace=True)
    runner.start("last", lambda token: counting_job(token, n=1))
    assert runner.busy
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert ended == ["first", "send", "last"] and results == [2]


def test_progress_line_follows_a_job_to_its_end(qtbot):
    runner = JobRunner()
    line = ProgressLine(runner)
    qtbot.addWidget(line)
    assert line.text() == "" and line.bar.text() == ""            # no job yet
    cancelled = []

    def on_progress(p):
        if p.done == 3 and not cancelled:
            cancelled.append(runner.cancel())
            assert line.text() == "count: cancelling at the next step…"

    runner.progress.connect(on_progress)
    with qtbot.waitSignal(runner.finished, timeout=10_000):
        runner.start("count", lambda token: counting_job(token, n=1000, pause=0.01))
        assert line.text() == "count…" and line.bar.maximum() == 0          # busy
    assert cancelled == [True]
    assert line.text() == "count: cancelled" and line.bar.value() == 0
    with qtbot.waitSignal(runner.finished, timeout=10_000):
        runner.start("count", lambda token: counting_job(token, n=4))
    assert line.text() == "count: done" and line.bar.value() == line.bar.maximum()
    with qtbot.waitSignal(runner.finished, timeout=10_000):
        runner.start("count", lambda token: counting_job(token, n=4, fail_at=2))
    assert line.text() == "count: failed" and runner.worker.outcome == "failed"


# -- the main window ----------------------------------------------------------------------------
def test_one_iteration_through_the_window(window, qtbot):
    w, truth = window
    session, store = w.session, w.session.store
    assert enabled(w) == {"train"}

    # the event loop keeps running while the model trains on the worker thread
    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    run_step(qtbot, w, "train")
    timer.stop()
    gaps = np.diff(ticks)
    assert len(ticks) >= 5 and gaps.max() < 2.0, f"{len(ticks)} ticks, longest gap {gaps.max()}"
    device = w.panel.device.text()
    assert device.startswith("device: ") and "reported when" not in device

    assert enabled(w) == {"score"}
    run_step(qtbot, w, "score")
    assert w.dashboard.model.rowCount() >= 0      # candidates table filled from the scores
    run_step(qtbot, w, "query")

    view = w.labelling
    assert w.tabs.currentWidget() is view          # the next move is labelling: it is in front
    pending = session.pending()
    assert pending and enabled(w) == set()
    n_query = sum(p.purpose == "query" for p in pending)
    assert n_query == 10
    assert view.current() == pending[0] and view.banner.text() == QUERY_BANNER
    assert "entropy" in view.info.text()
    assert len(view.window_curve.getData()[0]) == 140

    # Right / Left move without labelling
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.current() == pending[1]
    qtbot.keyClick(view, Qt.Key.Key_Left)
    assert view.current() == pending[0]

    # label the first one, undo it with Backspace, label it again
    first = pending[0]
    qtbot.keyClick(view, KEYS[int(truth[first.pool_index])])
    assert store.oracle_labels()[first.pool_index] == truth[first.pool_index]
    assert view.current() == pending[1]
    qtbot.keyClick(view, Qt.Key.Key_Backspace)
    assert first.pool_index not in store.oracle_labels()
    assert view.current() == first

    saw_precision_banner = False
    for item in pending:
        assert view.current() == item
        if item.purpose == "precision":
            saw_precision_banner |= view.banner.text() == PRECISION_BANNER
        qtbot.keyClick(view, KEYS[int(truth[item.pool_index])])
    # nothing waits; the last one stays on screen, the whole list still there to review
    assert session.pending() == [] and view.waiting() == []
    assert view.current().pool_index == pending[-1].pool_index
    assert view.label_list.rowCount() == len(pending)
    oracle = store.oracle_labels()
    precision = store.precision_labels(session.iteration)
    for item in pending:
        stored = oracle if item.purpose == "query" else precision
        assert stored[item.pool_index] == truth[item.pool_index]
    assert saw_precision_banner == (len(pending) > n_query)

    assert enabled(w) == {"estimate"}
    run_step(qtbot, w, "estimate")
    assert "precision" in w.status_label.text()
    qtbot.waitUntil(lambda: not w.dashboard.is_refreshing, timeout=JOB_TIMEOUT_MS)
    estimates = session.estimates()
    assert len(estimates) == 1
    if estimates[0]["sample_size"]:
        xs, ys = w.dashboard.plot.precision_curve.getData()
        assert list(ys) == pytest.approx([estimates[0]["precision"]])
    assert "train" in enabled(w) and "finish" in enabled(w)


def test_cancel_training_from_the_window(tmp_path, qtbot, no_leaks):
    folder, _ = make_project(tmp_path / "proj", max_epochs=200, patience=200)
    w = MainWindow(folder)
    w.show()
    try:
        # cancel as soon as the first epoch is reported
        def on_progress(p):
            if p.stage == "train":
                qtbot.mouseClick(w.panel.cancel_button, Qt.MouseButton.LeftButton)

        with qtbot.waitSignal(w.job_done, timeout=JOB_TIMEOUT_MS):
            qtbot.mouseClick(w.panel.buttons["train"], Qt.MouseButton.LeftButton)
            w.worker.progress.connect(on_progress)
            assert w.panel.cancel_button.isEnabled() and enabled(w) == set()
        assert w.worker.was_aborted and w.worker.error is None
        assert "cancelled" in w.status_label.text()
        assert w.session.next_step() == "train" and enabled(w) == {"train"}
    finally:
        w.close()
        w.deleteLater()


def test_open_failure_is_shown_naming_what_failed(tmp_path, qtbot, no_leaks):
    w = MainWindow()
    try:
        with qtbot.waitSignal(w.error_shown, timeout=5_000) as blocker:
            assert not w.open_project(tmp_path / "nothing-here")
        assert "Opening the project" in blocker.args[0] and "nothing-here" in blocker.args[0]
        assert w.error_box is not None and w.error_box.isVisible()
        assert enabled(w) == set()
    finally:
        w.close()
        w.deleteLater()


def test_candidates_table_sorts_and_filters(window, qtbot):
    w, _ = window
    run_step(qtbot, w, "train")
    run_step(qtbot, w, "score")
    d = w.dashboard
    # the dashboard builds its table on a worker after the job: wait for it to be shown
    qtbot.waitUntil(lambda: not d.is_refreshing, timeout=JOB_TIMEOUT_MS)
    assert d.data is not None and d.data.candidates is not None
    n = d.model.rowCount()
    if n == 0:
        pytest.skip("the 1-epoch model predicts no targets")
    col = d.model.columns.index("p_single")
    d.table.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    values = [d.proxy.index(r, col).data(Qt.ItemDataRole.UserRole) for r in range(n)]
    assert values == sorted(values, reverse=True)
    name = d.proxy.index(0, d.model.columns.index("name")).data()
    d.filter.setText(name)
    assert d.proxy.rowCount() == 1
    d.filter.setText("")
    assert d.proxy.rowCount() == n
    assert np.all(np.isin(d.model.table["class"], ["single peak", "double peak"]))


def test_whole_spectrum_from_a_local_file(tmp_path, qtbot, no_leaks):
    from vo_al.core.spectra.record import SpectrumMeta
    from vo_al.core.demo import make_lamost_spectrum, write_lamost_fits
    from vo_al.gui.labelling import LabellingView

    wl, flux, ivar, andmask, ormask = make_lamost_spectrum(1, np.random.default_rng(3))
    path = write_lamost_fits(tmp_path / "spec.fits", wl, flux, ivar, andmask, ormask,
                             SpectrumMeta(name="spec", ra=10.0, dec=20.0))
    view = LabellingView()
    title = view.full_plot.plotItem.titleLabel
    try:
        with qtbot.waitSignal(view.spectrum_shown, timeout=JOB_TIMEOUT_MS):
            view.show_source(str(path))           # read on a prefetch thread, drawn when done
        x, _ = view.full_curve.getData()
        assert len(x) == len(wl) and "spec.fits" in title.text
        # nothing listens on port 9 of the loopback: a clear message, not an exception
        with qtbot.waitSignal(view.spectrum_shown, timeout=JOB_TIMEOUT_MS):
            view.show_source("http://127.0.0.1:9/spec/1.fits")
        assert view.full_curve.getData()[0] is None or len(view.full_curve.getData()[0]) == 0
        assert "not available" in title.text and "127.0.0.1:9/spec/1.fits" in title.text
    finally:
        view.close()
        view.deleteLater()


def test_demo_project_shows_whole_spectra(tmp_path, qtbot, no_leaks):
    from vo_al.core.demo.simulate import SimulationConfig

    w = MainWindow()
    try:
        config = SimulationConfig(n_train=150, n_pool=200, target_fraction=0.1, workers=1)
        with qtbot.waitSignal(w.job_done, timeout=JOB_TIMEOUT_MS):
            w.create_demo(tmp_path / "demo", config)
        qtbot.waitUntil(lambda: w.session is not None, timeout=5_000)
        assert w.worker.error is None, w.worker.error
        # the demo's 'gap' artefacts with a mostly dead H-alpha window are rejected
        pool = w.project.pool
        assert len(pool) + len(pool.rejected()) == 200 and len(pool) > 190
        assert enabled(w) == {"train"}
        # the pool's sources are local FITS files: the labelling view can read them
        source = w.project.pool.metadata(np.array([0]), ["source"])["source"][0]
        with qtbot.waitSignal(w.labelling.spectrum_shown, timeout=JOB_TIMEOUT_MS):
            w.labelling.show_source(source)
        assert len(w.labelling.full_curve.getData()[0]) > 1000
    finally:
        w.close()
        w.deleteLater()


def test_failed_job_is_shown_naming_the_step(window, qtbot):
    w, _ = window
    # a real failure, in the training child process: the checkpoint cannot be written
    (w.project.folder / "models").write_text("a file where the models folder should be")
    with qtbot.waitSignal(w.error_shown, timeout=JOB_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(w.panel.buttons["train"], Qt.MouseButton.LeftButton)
    assert blocker.args[0].startswith("Train failed") and "models" in blocker.args[0]
    qtbot.waitUntil(lambda: not w.worker.is_running, timeout=JOB_TIMEOUT_MS)
    assert w.error_box.isVisible() and enabled(w) == {"train"}


def test_closing_during_a_job_cancels_it(tmp_path, qtbot, no_leaks):
    folder, _ = make_project(tmp_path / "proj", max_epochs=500, patience=500)
    w = MainWindow(folder)
    w.show()
    with qtbot.waitSignal(w.panel.buttons["train"].clicked):
        qtbot.mouseClick(w.panel.buttons["train"], Qt.MouseButton.LeftButton)
    worker = w.worker
    qtbot.waitSignal(worker.progress, timeout=JOB_TIMEOUT_MS).wait()
    w.close()                      # cancels, waits for the thread, closes the project
    assert worker._thread.isFinished() and w.project is None
    w.deleteLater()


def test_app_main_opens_the_project_and_returns(tmp_path, qapp, no_leaks):
    from vo_al.gui.app import main

    folder, _ = make_project(tmp_path / "proj", n_train=60, n_pool=50)
    seen = []

    def close_windows():
        for widget in qapp.topLevelWidgets():
            if isinstance(widget, MainWindow):
                seen.append(widget.project.folder)
                widget.close()
        qapp.quit()

    QTimer.singleShot(0, close_windows)
    assert main([str(folder)]) == 0
    assert seen == [folder]


def test_no_display_is_a_clear_error_not_an_abort(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    run = subprocess.run([sys.executable, "-m", "vo_al.cli", "gui"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "no display" in run.stderr and "xvfb-run" in run.stderr
