"""The app never shows a stale or half state (issue 14): panels are cleared when another project
opens and marked stale when the candidates they describe change; a damaged session database is
refused before the window switches; keys reach the labelling view; exports and SAMP follow the
filter; Finish before the stop rule asks first, and after it the window describes the final
model. Through the real widgets, offscreen."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil  # noqa: E402
import sqlite3  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from gui_support import make_project, no_leaks, window  # noqa: E402,F401
from samp_peers import Receiver, pyvo_hub, samp_lockfile  # noqa: E402,F401
from vo_al.core.base.errors import ProjectError  # noqa: E402
from vo_al.core.base.progress import run_job  # noqa: E402
from vo_al.core.jobs.crossmatch import SHIPPED_H16, SHIPPED_SIMBAD_LIKE  # noqa: E402
from vo_al.core.session.loop import ActiveLearningSession  # noqa: E402
from vo_al.core.session.project import Project  # noqa: E402
from vo_al.core.session.store import SessionStore  # noqa: E402
from vo_al.gui.main_window import MainWindow  # noqa: E402

WAIT_MS = 60_000
JOB_MS = 300_000
N_POOL = 400
# five estimates at or above the threshold end the active phase: never in these tests
METHOD = dict(threshold_hits=5)


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """Two project states built once through the core, copied by each test: 'queried' (trained,
    scored, a batch and a precision sample waiting) and 'labelled' (the same, every spectrum
    labelled with its truth: the estimate is next)."""
    root = tmp_path_factory.mktemp("state")
    folder, truth = make_project(root / "queried", n_train=120, n_pool=N_POOL, **METHOD)
    project = Project.open(folder)
    try:
        s = ActiveLearningSession(project)
        run_job(s.train())
        run_job(s.score())
        s.query()
        assert s.pending()
    finally:
        project.close()
    labelled = root / "labelled"
    shutil.copytree(folder, labelled)
    project = Project.open(labelled)
    try:
        s = ActiveLearningSession(project)
        for item in s.pending():
            s.label(item.pool_index, int(truth[item.pool_index]))
        assert s.next_step() == "estimate"
    finally:
        project.close()
    return {"queried": folder, "labelled": labelled}


def copy_of(templates, which: str, tmp_path):
    folder = tmp_path / which
    shutil.copytree(templates[which], folder)
    return folder


def open_window(qtbot, folder) -> MainWindow:
    w = MainWindow(folder)
    w.resize(1100, 850)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: not w.dashboard.is_refreshing, timeout=WAIT_MS)
    return w


def close_window(w) -> None:
    w.close()
    w.deleteLater()


def run_crossmatch(qtbot, w):
    panel = w.crossmatch
    panel.catalogue.setText(str(SHIPPED_SIMBAD_LIKE))
    panel.set_source("file")
    panel.h16.setText(str(SHIPPED_H16))
    with qtbot.waitSignal(panel.finished, timeout=JOB_MS):
        assert panel.run() is not None
    assert panel.result is not None and panel.export_button.isEnabled()
    assert panel.model.rowCount() > 0


def run_step(qtbot, w, name):
    with qtbot.waitSignal(w.job_done, timeout=JOB_MS) as blocker:
        w.panel.buttons[name].click()
    assert blocker.args == [name]
    assert w.worker.error is None, w.worker.error


# -- 1. nothing carried over; stale results said to be stale ------------------------------------
def test_another_project_clears_every_panel(templates, tmp_path, qtbot, no_leaks):
    a = copy_of(templates, "labelled", tmp_path)
    b, _ = make_project(tmp_path / "b", n_train=40, n_pool=60)
    w = open_window(qtbot, a)
    try:
        run_crossmatch(qtbot, w)
        run_step(qtbot, w, "estimate")
        assert "precision" in w.panel.result.text()            # under the buttons
        assert w.panel.progress.text() == "estimate: done"
        out = tmp_path / "a-candidates.vot"
        with qtbot.waitSignal(w.dashboard.exported, timeout=WAIT_MS):
            w.dashboard.export_catalogue(out)
        assert "wrote" in w.dashboard.status.text()

        assert w.open_project(b)
        xm = w.crossmatch
        assert xm.result is None and xm.model.rowCount() == 0 and xm.table_choice.count() == 0
        assert str(b) in xm.status.text() and xm.progress.text() == ""
        assert not xm.export_button.isEnabled() and xm.export_tables(tmp_path / "x") is None
        assert w.panel.progress.text() == "" and w.panel.result.text() == ""
        assert "reported when" in w.panel.device.text()
        assert w.dashboard.status.text() == ""
        qtbot.waitUntil(lambda: not w.dashboard.is_refreshing, timeout=WAIT_MS)
        assert w.dashboard.model.rowCount() == 0                # b is not scored
        assert "not scored yet" in w.dashboard.summary.text()
        assert str(b) in w.status_label.text()
    finally:
        close_window(w)


def test_a_changed_label_makes_the_crossmatch_stale(templates, tmp_path, qtbot, no_leaks):
    w = open_window(qtbot, copy_of(templates, "labelled", tmp_path))
    try:
        run_crossmatch(qtbot, w)
        assert w.crossmatch.stale is None
        w.tabs.setCurrentWidget(w.labelling)
        qtbot.keyClick(w.labelling, Qt.Key.Key_Backspace)       # undo the last label
        assert w.labelling.current() is not None
        xm = w.crossmatch
        assert xm.stale is not None and "STALE" in xm.status.text()
        assert "labels changed" in xm.status.text()
        assert xm.model.rowCount() > 0                          # still shown, said stale
        assert not xm.export_button.isEnabled()
        with qtbot.waitSignal(xm.failed, timeout=WAIT_MS) as blocker:
            assert xm.export_tables(tmp_path / "stale") is None
        assert "not exported" in blocker.args[0]
        assert not (tmp_path / "stale").exists()
    finally:
        close_window(w)


# -- 2. a damaged session database --------------------------------------------------------------
def _damage(path, how: str) -> None:
    db = sqlite3.connect(path)
    try:
        if how == "json":            # an iteration's record cut short
            db.execute("UPDATE iterations SET query_json = '[1, 2, ' WHERE iteration = 0")
        elif how == "utf8":          # a label's name whose bytes are not UTF-8
            db.execute("UPDATE training_labels SET name = CAST(x'7472ff61696e' AS TEXT) "
                       "WHERE rowid = (SELECT MIN(rowid) FROM training_labels)")
        else:                        # a column renamed: the schema parses, the store cannot use it
            db.execute("ALTER TABLE oracle_labels RENAME COLUMN label TO lbl")
        db.commit()
    finally:
        db.close()


@pytest.mark.parametrize("how", ["json", "utf8", "column"])
def test_a_damaged_value_is_a_project_error_naming_the_file(templates, tmp_path, how):
    folder = copy_of(templates, "queried", tmp_path)
    path = folder / "session.sqlite"
    _damage(path, how)
    before = path.read_bytes()
    with pytest.raises(ProjectError) as info:
        SessionStore(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before                           # left as it is


def test_a_damaged_session_keeps_the_window_on_its_project(templates, tmp_path, qtbot, no_leaks):
    good = copy_of(templates, "labelled", tmp_path)
    bad = copy_of(templates, "queried", tmp_path)
    _damage(bad / "session.sqlite", "json")
    w = open_window(qtbot, good)
    try:
        title = w.windowTitle()
        with qtbot.waitSignal(w.error_shown, timeout=5_000) as blocker:
            assert not w.open_project(bad)
        assert "session.sqlite" in blocker.args[0] and "Traceback" not in blocker.args[0]
        assert w.error_box is not None and w.error_box.isVisible()
        assert w.windowTitle() == title and w.project.folder == good
        assert w.panel.buttons["estimate"].isEnabled()           # the old one still works
        run_step(qtbot, w, "estimate")
    finally:
        close_window(w)


# -- 3. keys reach the labelling view -------------------------------------------------------------
def test_keys_label_as_soon_as_a_project_with_spectra_waiting_opens(templates, tmp_path, qtbot,
                                                                   no_leaks):
    folder = copy_of(templates, "queried", tmp_path)
    w = open_window(qtbot, folder)                 # as `vo-al gui FOLDER` opens it
    try:
        w.activateWindow()
        qtbot.waitUntil(lambda: QApplication.focusWidget() is w.labelling, timeout=5_000)
        assert w.tabs.currentWidget() is w.labelling
        first = w.labelling.current()
        qtbot.keyClick(QApplication.focusWidget(), "1")          # where a key press goes
        assert w.session.store.oracle_labels().get(first.pool_index) == 0 or \
            w.session.store.precision_labels(0).get(first.pool_index) == 0
        # another tab and back: the view has the keys again (not the tab bar)
        w.tabs.setCurrentWidget(w.dashboard)
        w.tabs.setCurrentWidget(w.labelling)
        assert QApplication.focusWidget() is w.labelling
        second = w.labelling.current()
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Right)
        assert w.labelling.current() != second and w.tabs.currentWidget() is w.labelling

        # opened from the menu over another project: the same
        other = tmp_path / "other"
        shutil.copytree(templates["queried"], other)
        w.tabs.setCurrentWidget(w.dashboard)
        assert w.open_project(other)
        assert w.tabs.currentWidget() is w.labelling
        assert QApplication.focusWidget() is w.labelling
    finally:
        close_window(w)


# -- 4. the filter decides what is exported and sent --------------------------------------------
def test_export_writes_the_filtered_rows_and_says_so(templates, tmp_path, qtbot, no_leaks):
    from astropy.table import Table

    w = open_window(qtbot, copy_of(templates, "queried", tmp_path))
    try:
        d = w.dashboard
        total = d.model.rowCount()
        classes = set(d.model.table["class"].tolist())
        assert total > 0 and classes
        word = sorted(classes)[0].split()[0]          # e.g. 'single'
        d.filter.setText(word)
        shown = d.proxy.rowCount()
        assert 0 < shown
        out = tmp_path / "filtered.ecsv"
        with qtbot.waitSignal(d.exported, timeout=WAIT_MS):
            d.export_catalogue(out)
        table = Table.read(out, format="ascii.ecsv")
        assert len(table) == shown
        wanted = sorted(int(d.model.table["pool_index"][d.proxy.mapToSource(d.proxy.index(r, 0))
                                                        .row()]) for r in range(shown))
        assert sorted(int(i) for i in table["pool_index"]) == wanted
        assert f"{shown} of {total} candidates (filter: '{word}')" in d.status.text()
        assert table.meta["selection"] == f"{shown} of {total} candidates (filter: '{word}')"
    finally:
        close_window(w)


def _candidates(n: int = 8) -> dict:
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(3), n)
    return {"pool_index": np.arange(n) * 10,
            "name": np.array([f"spec-{i}" for i in range(n)]),
            "designation": np.array([f"J{i:04d}" for i in range(n)]),
            "ra": 10.0 + np.arange(n) * 0.1, "dec": -5.0 + np.arange(n) * 0.1,
            "class": np.array(["single peak" if i % 3 == 0 else "double peak" for i in range(n)]),
            "origin": np.array(["predicted"] * n),
            "p_non_target": p[:, 0], "p_single": p[:, 1], "p_double": p[:, 2],
            "snr": rng.uniform(5, 50, n), "source": np.array([""] * n)}


def test_samp_sends_the_filtered_table_and_says_a_highlight_is_hidden(window, qtbot, pyvo_hub):
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    from astropy.table import Table

    w = window[0]
    d, panel = w.dashboard, w.samp
    d.model.set_table(_candidates())
    peer = Receiver("peer", ["table.load.votable"])
    try:
        with qtbot.waitSignal(panel.connected_changed, timeout=WAIT_MS):
            panel.connect_hub()
        qtbot.waitUntil(lambda: panel.link.candidates is not None and not panel.busy,
                        timeout=WAIT_MS)
        full = panel.link.candidates                         # the peer's table before a filter
        d.filter.setText("single")                           # rows 0, 3, 6
        assert d.proxy.rowCount() == 3

        # TOPCAT highlights row 1 of the whole table: hidden by the filter, and said so
        with qtbot.waitSignal(panel.notice, timeout=WAIT_MS) as blocker:
            peer.notify(panel.link.self_id, "table.highlight.row",
                        {"table-id": full.table_id, "url": full.url, "row": "1"})
        assert "hidden by the filter 'single'" in blocker.args[0]
        assert "hidden by the filter" in w.status_label.text()
        assert d.filter.text() == "single"                   # the expert's filter stays

        # Send table: the filtered rows, and the panel says how many of how many
        panel.send_table()
        qtbot.waitUntil(lambda: any(g[2] == "table.load.votable" for g in peer.got),
                        timeout=WAIT_MS)
        qtbot.waitUntil(lambda: "sent" in panel.status.text(), timeout=WAIT_MS)
        assert "sent 3 of 8 candidates (filter: 'single')" in panel.status.text()
        params = next(g[3] for g in peer.got if g[2] == "table.load.votable")
        sent = Table.read(url2pathname(urlparse(params["url"]).path), format="votable")
        assert sorted(int(i) for i in sent["pool_index"]) == [0, 30, 60]

        # a highlight of row 2 of the table sent is the candidate of pool index 60
        table = panel.link.candidates
        with qtbot.waitSignal(panel.row_selected, timeout=WAIT_MS) as blocker:
            peer.notify(panel.link.self_id, "table.highlight.row",
                        {"table-id": table.table_id, "url": table.url, "row": "2"})
        assert d.selected_pool_index() == 60
    finally:
        peer.close()
        panel.disconnect_hub()
        qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)


# -- 5. what cannot be undone is asked; after Finish the window describes the final model -------
def test_finish_before_the_stop_rule_asks_and_then_describes_the_final_model(
        templates, tmp_path, qtbot, no_leaks):
    w = open_window(qtbot, copy_of(templates, "labelled", tmp_path))
    try:
        run_step(qtbot, w, "estimate")
        assert "below the stop rule" in w.panel.result.text()
        assert not w.session.stop_rule_met()
        run_crossmatch(qtbot, w)

        # Backspace after the estimate: said in the view, no error dialog
        w.tabs.setCurrentWidget(w.labelling)
        qtbot.keyClick(w.labelling, Qt.Key.Key_Backspace)
        assert "nothing undone" in w.labelling.notice.text() and w.error_box is None

        # Finish: a question first; No leaves the project as it was
        w.panel.buttons["finish"].click()
        box = w.finish_question
        assert box is not None and box.isVisible() and "stop rule is not met" in box.text()
        assert not w.jobs.is_running
        box.button(QMessageBox.StandardButton.No).click()
        assert not w.jobs.is_running and w.session.next_step() != "done"

        # Yes: the finish runs
        w.panel.buttons["finish"].click()
        with qtbot.waitSignal(w.job_done, timeout=JOB_MS) as blocker:
            w.finish_question.button(QMessageBox.StandardButton.Yes).click()
        assert blocker.args == ["finish"] and w.worker.error is None, w.worker.error
        assert w.session.next_step() == "done"
        qtbot.waitUntil(lambda: not w.dashboard.is_refreshing, timeout=WAIT_MS)

        assert "finished" in w.panel.result.text()
        assert w.labelling.title.text().startswith("finished: the candidates come from the "
                                                   "final model")
        assert w.dashboard.summary.text().startswith("finished: candidates from the final model")
        xm = w.crossmatch
        assert xm.stale is not None and "final scores" in xm.status.text()
        assert not xm.export_button.isEnabled()
    finally:
        close_window(w)
