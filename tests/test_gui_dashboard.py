"""The dashboard tab: plots, candidates table and catalogue export, built on a worker thread."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil  # noqa: E402
import subprocess  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402

from gui_support import assert_no_leaks, flush_deletes, make_project, no_leaks, top_level_widgets  # noqa: E402,F401
from vo_al.core.session.candidates import candidate_table  # noqa: E402
from vo_al.core.session.candidates import session_candidates  # noqa: E402
from vo_al.core.base.progress import run_job  # noqa: E402
from vo_al.core.session.project import Project  # noqa: E402
from vo_al.core.session.loop import ActiveLearningSession  # noqa: E402
from vo_al.core.learning.strategies import entropy_score  # noqa: E402
from vo_al.core.jobs.dashboard import ENTROPY_BINS, MAX_ENTROPY, entropy_edges  # noqa: E402
from vo_al.gui.dashboard import Dashboard  # noqa: E402

WAIT_MS = 60_000
N_POOL = 2000


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A project through two scored iterations, built once through the core (then copied):
    iteration 0 trained, scored, queried, labelled (the truth), estimated; iteration 1 trained
    and scored."""
    folder, truth = make_project(tmp_path_factory.mktemp("dash") / "proj", n_pool=N_POOL)
    project = Project.open(folder)
    try:
        s = ActiveLearningSession(project)
        run_job(s.train())
        run_job(s.score())
        s.query()
        for item in s.pending():
            s.label(item.pool_index, int(truth[item.pool_index]))
        s.estimate()
        run_job(s.train())
        run_job(s.score())
        assert s.next_step() == "query"
    finally:
        project.close()
    return folder


@pytest.fixture
def session(template, tmp_path):
    folder = tmp_path / "proj"
    shutil.copytree(template, folder)
    project = Project.open(folder)
    yield ActiveLearningSession(project)
    project.close()


@pytest.fixture
def dash(qtbot, qapp):
    before = top_level_widgets()
    d = Dashboard()
    d.resize(1200, 800)
    d.show()
    qtbot.waitExposed(d)
    held = [d]          # emptied at teardown: pytest keeps fixture values until later
    yield held
    d.close()                 # shuts the workers down
    d.deleteLater()
    held.clear()
    del d
    assert_no_leaks(before)


def refresh_and_wait(qtbot, d, session):
    d.refresh(session)
    qtbot.waitUntil(lambda: not d.is_refreshing, timeout=WAIT_MS)
    return d.data


def assert_tables_equal(shown: dict, expected: dict):
    assert list(shown) == list(expected)
    for column, values in expected.items():
        np.testing.assert_array_equal(shown[column], values, err_msg=column)


def label_pending_as_targets(session) -> list[int]:
    """Query the next batch and label its oracle part as single-peak stars (candidates for
    sure, whatever the 1-epoch model predicts)."""
    session.query()
    labelled = []
    for item in session.pending():
        if item.purpose == "query":
            session.label(item.pool_index, 1)
            labelled.append(item.pool_index)
    return labelled


# -- what the dashboard shows ---------------------------------------------------------------------
def test_refresh_runs_on_a_worker_and_shows_everything(dash, qtbot, session):
    d = dash[0]
    with qtbot.waitSignal(d.refreshed, timeout=WAIT_MS) as blocker:
        assert d.refresh(session) is None
        # refresh() returned with the work still to do on the worker thread
        assert d.is_refreshing and d.data is None and d.model.rowCount() == 0
    data = blocker.args[0]
    assert data is d.data

    # class counts per iteration: the labelled set of each model, the pool predictions of each
    rows = session.store.iterations()
    assert list(d.counts_plot.iterations) == [0, 1]
    for k, row in enumerate(rows):
        assert list(d.counts_plot.labelled[k]) == row["training_json"]["class_counts"]
        proba = np.load(session.project.folder / row["scores_path"])
        expected = np.bincount(np.argmax(proba, axis=1), minlength=3)
        assert list(d.counts_plot.predicted[k]) == list(expected)
        for c in range(3):
            assert d.counts_plot.predicted_curves[c].yData[k] == expected[c]
            assert d.counts_plot.labelled_curves[c].yData[k] == \
                row["training_json"]["class_counts"][c]
    # the second model was trained on the first one's oracle labels too
    assert sum(rows[1]["training_json"]["class_counts"]) == \
        sum(rows[0]["training_json"]["class_counts"]) + len(session.store.oracle_labels())

    # entropy histogram of the latest scores: every pool spectrum counted once
    latest = np.asarray(session.latest_probabilities())
    x, y = d.entropy_plot.curve.xData, d.entropy_plot.curve.yData
    assert len(x) == ENTROPY_BINS + 1 and len(y) == ENTROPY_BINS
    assert y.sum() == len(session.project.pool) == N_POOL
    independent, _ = np.histogram(np.clip(entropy_score(latest), 0, MAX_ENTROPY),
                                  bins=entropy_edges())
    assert np.abs(independent - y).sum() <= 2          # only rows on a bin edge may move
    assert "scores/iter-001.npy" in d.entropy_plot.plotItem.titleLabel.text

    # the candidates table is candidate_table's, row for row
    expected = candidate_table(session.project.pool, latest, session.store.oracle_labels(),
                               session.store.reviewed_labels())
    assert_tables_equal(d.model.table, expected)
    assert d.model.rowCount() == len(expected["pool_index"])
    assert f"{len(expected['pool_index'])} candidates" in d.summary.text()
    assert "precision" in d.summary.text()
    xs, ys = d.plot.precision_curve.getData()
    estimates = [e for e in session.estimates() if e["sample_size"]]
    assert list(ys if ys is not None else []) == pytest.approx([e["precision"] for e in estimates])


def test_unscored_project_shows_no_candidates(dash, qtbot, tmp_path):
    folder, _ = make_project(tmp_path / "fresh", n_train=60, n_pool=50)
    project = Project.open(folder)
    try:
        d = dash[0]
        d.model.set_table({c: np.array(["stale"]) for c in d.model.columns})
        data = refresh_and_wait(qtbot, d, ActiveLearningSession(project))
        assert data.candidates is None and data.entropy_counts is None
        assert d.model.rowCount() == 0                   # the previous project's rows are gone
        assert len(d.counts_plot.iterations) == 0
        assert "not scored yet" in d.summary.text()
        assert d.status.text() == ""
    finally:
        project.close()


def test_scores_files_are_read_once_and_again_when_replaced(dash, qtbot, session):
    d = dash[0]
    stages = []

    def refresh():
        d.refresh(session)
        d.refresh_worker.progress.connect(lambda p: stages.append(p.stage))
        qtbot.waitUntil(lambda: not d.is_refreshing, timeout=WAIT_MS)
        seen = sorted(set(stages))
        stages.clear()
        return seen

    assert refresh() == ["candidates", "scores of iteration 1", "scores of iteration 2"]
    predicted = d.counts_plot.predicted.copy()
    assert len(d._summaries) == 2         # the latest scores are iteration 1's: one pass each

    # nothing changed (as after a precision-sample label): nothing read, the table not reset
    resets = []
    d.model.modelReset.connect(lambda: resets.append(1))
    table = d.model.table
    assert refresh() == [] and d.model.table is table and resets == []

    # a label changes the candidates, not the scores: no scores file is read again
    label_pending_as_targets(session)
    assert refresh() == ["candidates"] and resets == [1]
    assert np.array_equal(d.counts_plot.predicted, predicted)
    assert_tables_equal(d.model.table, candidate_table(
        session.project.pool, session.latest_probabilities(), session.store.oracle_labels(),
        session.store.reviewed_labels()))

    # a scores file replaced (here: rewritten in place, a new mtime) is read again
    path = session.project.folder / "scores/iter-000.npy"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert refresh() == ["scores of iteration 1"]       # not the latest: same candidates
    assert np.array_equal(d.counts_plot.predicted, predicted)


def test_quick_refreshes_are_coalesced_and_the_last_state_shown(dash, qtbot, session):
    d = dash[0]
    session.query()
    targets = [p.pool_index for p in session.pending() if p.purpose == "query"][:2]
    shown = []
    d.refreshed.connect(shown.append)
    d.refresh(session)
    session.label(targets[0], 1)
    d.refresh(session)
    session.label(targets[1], 2)
    d.refresh(session)
    qtbot.waitUntil(lambda: not d.is_refreshing, timeout=WAIT_MS)
    assert d.refresh_runs == 2 and 1 <= len(shown) <= 2
    expected = candidate_table(session.project.pool, session.latest_probabilities(),
                               session.store.oracle_labels(), session.store.reviewed_labels())
    assert_tables_equal(d.model.table, expected)
    index = list(d.model.table["pool_index"])
    for pool_index, cls in zip(targets, ("single peak", "double peak")):
        row = index.index(pool_index)
        assert d.model.table["origin"][row] == "oracle" and d.model.table["class"][row] == cls


def test_sort_filter_and_selection_survive_a_refresh(dash, qtbot, session):
    d = dash[0]
    labelled = label_pending_as_targets(session)
    refresh_and_wait(qtbot, d, session)
    col = d.model.columns.index("p_single")
    d.table.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    d.filter.setText("oracle")
    n_oracle = int(np.sum(d.model.table["origin"] == "oracle"))   # this and earlier batches
    assert d.proxy.rowCount() == n_oracle >= len(labelled)
    keep = labelled[-1]
    assert d.select_pool_index(keep) and d.selected_pool_index() == keep

    # a new label: one more oracle row, the rest of the table rebuilt
    session.undo_label()
    session.label(keep, 2)
    with qtbot.waitSignal(d.refreshed, timeout=WAIT_MS):
        d.refresh(session)
    assert d.filter.text() == "oracle" and d.proxy.rowCount() == n_oracle
    header = d.table.horizontalHeader()
    assert header.sortIndicatorSection() == col
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    values = [d.proxy.index(r, col).data(Qt.ItemDataRole.UserRole)
              for r in range(d.proxy.rowCount())]
    assert values == sorted(values, reverse=True)
    assert d.selected_pool_index() == keep
    current = d.proxy.mapToSource(d.table.currentIndex()).row()
    assert d.model.table["class"][current] == "double peak"

    # a row that is no longer there is not selected
    session.undo_label()
    session.label(keep, 0)                 # rejected: no longer a candidate
    refresh_and_wait(qtbot, d, session)
    assert keep not in list(d.model.table["pool_index"])
    assert d.selected_pool_index() != keep


# -- export ---------------------------------------------------------------------------------------
def stilts(*args) -> str:
    if shutil.which("stilts") is None:
        pytest.skip("STILTS not installed (scripts/dachs.sh install)")
    out = subprocess.run(["stilts", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def export(qtbot, d, path, rejected=False) -> str:
    with qtbot.waitSignal(d.exported, timeout=WAIT_MS) as blocker:
        worker = d.export_catalogue(path, rejected=rejected)
        assert worker is not None and d.is_exporting
        assert not d.export_button.isEnabled()
    qtbot.waitUntil(lambda: not d.is_exporting, timeout=WAIT_MS)
    assert d.export_button.isEnabled()
    return blocker.args[0]


def test_export_votable_and_csv(dash, qtbot, session, tmp_path):
    from astropy.io.votable import parse_single_table
    from astropy.table import Table

    d = dash[0]
    label_pending_as_targets(session)
    refresh_and_wait(qtbot, d, session)
    found = session_candidates(session)
    candidates, rejected = found.candidates, found.rejected
    n = len(candidates["ra"])
    assert n == d.model.rowCount() and n > 0

    path = export(qtbot, d, tmp_path / "out" / "candidates.vot")
    assert path == str(tmp_path / "out" / "candidates.vot")
    assert f"wrote {n} candidates to {path}" == d.status.text()
    vt = parse_single_table(path)
    assert len(vt.to_table()) == n
    params = {p.name: p.value for p in vt.params}
    assert params["table"] == "candidates" and params["iteration"] == session.iteration
    assert params["project"] == str(session.project.folder)
    assert params["model"] == "models/iter-001.keras"
    assert params["n_oracle_labels"] == len(session.store.oracle_labels())
    fields = {f.name: f for f in vt.fields}
    assert fields["ra"].unit == "deg" and fields["ra"].ucd == "pos.eq.ra;meta.main"
    assert list(vt.to_table()["pool_index"]) == list(candidates["pool_index"])
    assert f"rows: {n}" in stilts("tpipe", f"in={path}", "ifmt=votable", "omode=count")

    csv = export(qtbot, d, tmp_path / "candidates.csv")
    back = Table.read(csv, format="ascii.csv")
    assert len(back) == n and list(back["name"]) == list(candidates["name"])

    # the rejected spectra: the oracle's non-target labels
    n_rejected = sum(1 for v in session.store.oracle_labels().values() if v == 0)
    assert len(rejected["ra"]) == n_rejected
    rej = export(qtbot, d, tmp_path / "rejected.ecsv", rejected=True)
    back = Table.read(rej, format="ascii.ecsv")
    assert len(back) == n_rejected and back.meta["table"] == "rejected"


def test_export_errors_name_the_path(dash, qtbot, session, tmp_path):
    d = dash[0]
    # no session yet
    with qtbot.waitSignal(d.failed, timeout=5_000) as blocker:
        assert d.export_catalogue(tmp_path / "c.vot") is None
    assert "no project open" in blocker.args[0] and str(tmp_path / "c.vot") in blocker.args[0]

    refresh_and_wait(qtbot, d, session)
    blocker_file = tmp_path / "a-file"
    blocker_file.write_text("not a folder")
    bad = blocker_file / "candidates.vot"               # its folder cannot be made
    with qtbot.waitSignal(d.failed, timeout=WAIT_MS) as blocker:
        assert d.export_catalogue(bad) is not None
    assert str(bad) in blocker.args[0] and blocker.args[0] == d.status.text()
    assert "exporting the candidates" in d.status.text()
    assert not bad.exists()

    qtbot.waitUntil(lambda: not d.is_exporting, timeout=WAIT_MS)
    with qtbot.waitSignal(d.failed, timeout=WAIT_MS) as blocker:
        d.export_catalogue(tmp_path / "c.txt")
    assert "c.txt" in blocker.args[0] and "format" in blocker.args[0]


def test_export_before_scoring_says_so(dash, qtbot, tmp_path):
    folder, _ = make_project(tmp_path / "fresh", n_train=60, n_pool=50)
    project = Project.open(folder)
    try:
        d = dash[0]
        refresh_and_wait(qtbot, d, ActiveLearningSession(project))
        path = tmp_path / "c.vot"
        with qtbot.waitSignal(d.failed, timeout=WAIT_MS) as blocker:
            d.export_catalogue(path)
        assert str(path) in blocker.args[0] and "not been scored" in blocker.args[0]
        assert not path.exists()
    finally:
        project.close()


# -- shutdown -------------------------------------------------------------------------------------
def test_shutdown_cancels_and_waits(dash, qtbot, session):
    d = dash[0]
    shown = []
    d.refreshed.connect(shown.append)
    d.refresh(session)
    d.refresh(session)                     # a pending one, which must not start after shutdown
    worker = d.refresh_worker
    assert d.shutdown(30) and worker._thread.isFinished()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=WAIT_MS)
    flush_deletes()
    assert d.refresh_runs == 1 and not d.is_refreshing and shown == []
    # a later refresh works again
    refresh_and_wait(qtbot, d, session)
    assert d.data is not None and len(shown) == 1



def test_closing_the_window_during_a_refresh(qtbot, template, tmp_path, no_leaks):
    from vo_al.gui.main_window import MainWindow

    folder = tmp_path / "proj"
    shutil.copytree(template, folder)
    w = MainWindow(folder)               # opening the project starts a dashboard refresh
    w.show()
    worker = w.dashboard.refresh_worker
    assert worker is not None and worker.is_running
    w.close()                            # the dashboard's workers end before the project closes
    assert worker._thread.isFinished() and w.project is None
    w.deleteLater()


@pytest.mark.parametrize("low, high, labelled", [
    (40, 4000, [100, 1000]),                  # two decades in view: numbers at the decades only
    (1, 100_000, [1, 10, 100, 1000, 10_000, 100_000]),
    (60, 400, None),                          # one decade: every tick keeps its number
])
def test_log_count_axes_number_the_decades_without_overlap(qtbot, low, high, labelled):
    from vo_al.gui.dashboard import ClassCountsPlot
    plot = ClassCountsPlot()
    qtbot.addWidget(plot)
    plot.resize(400, 220)
    plot.setYRange(np.log10(low), np.log10(high), padding=0)
    axis = plot.getAxis("left")
    levels = axis.tickValues(*axis.range, 180)
    numbered = [round(10 ** v) for v in levels[0][1]]
    if labelled is None:
        assert len(levels) == 1 and len(numbered) >= 3
    else:
        assert numbered == labelled
        assert axis.style["maxTextLevel"] == 0                    # the other ticks: no number


# -- the plots' small faults and the filtered export ----------------------------------------------
def test_legends_sit_outside_the_curves_and_the_entropy_plot_marks_the_batch(dash, qtbot,
                                                                             session):
    d = dash[0]
    data = refresh_and_wait(qtbot, d, session)
    qtbot.wait(50)                                  # the layout of the shown data
    for plot in (d.plot, d.counts_plot):
        view = plot.plotItem.vb.sceneBoundingRect()
        legend = plot.legend.sceneBoundingRect()
        assert legend.height() > 0 and not legend.intersects(view), type(plot).__name__
        assert [label.text for _, label in plot.legend.items]        # every entry named
    assert [label.text for _, label in d.counts_plot.legend.items] == \
        ["non-target", "single peak", "double peak"]

    # the title of a scores file's name fits the plot at the dashboard's size
    title = d.entropy_plot.plotItem.titleLabel
    assert "scores/iter-001.npy" in title.text
    assert title.item.boundingRect().width() <= d.entropy_plot.width()

    # the batch a query would take: the 10 most uncertain spectra no one labelled
    h = np.sort(np.delete(entropy_score(np.asarray(session.latest_probabilities())),
                          list(session.store.oracle_labels())))[::-1]
    line = d.entropy_plot.batch_line
    assert line.isVisible() and data.batch_size == session.method.batch_size == 10
    assert line.value() == pytest.approx(h[9])
    assert line.label.format == f"next batch (10): H ≥ {h[9]:.3f}"
    batch = session.query()["batch"]
    refresh_and_wait(qtbot, d, session)
    assert line.label.format.startswith("oracle batch (10): H ≥ ")
    assert line.value() == pytest.approx(
        entropy_score(np.asarray(session.latest_probabilities())[batch]).min())
    d.clear()                                                     # another project: no mark
    assert not line.isVisible()


def test_export_follows_a_numeric_filter(dash, qtbot, session, tmp_path):
    from astropy.table import Table

    d = dash[0]
    refresh_and_wait(qtbot, d, session)
    t = d.model.table
    d.filter.setText("p_double > 0.3 and p_single < 0.6")
    kept = (t["p_double"] > 0.3) & (t["p_single"] < 0.6)
    assert 0 < kept.sum() < len(kept) and d.proxy.rowCount() == kept.sum()
    path = export(qtbot, d, tmp_path / "filtered.ecsv")
    back = Table.read(path, format="ascii.ecsv")
    assert sorted(back["pool_index"]) == sorted(t["pool_index"][kept])
    assert back.meta["selection"] == (f"{kept.sum()} of {len(kept)} candidates "
                                      "(filter: 'p_double > 0.3 and p_single < 0.6')")
    assert d.status.text().startswith(f"wrote {kept.sum()} of {len(kept)} candidates")
