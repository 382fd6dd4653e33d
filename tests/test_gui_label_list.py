"""The Label tab's label list (issue 14): the whole batch and sample beside the spectrum, a click
or the arrows to any of them, keys that relabel, a line saying what each key did, labels
locked after the estimate, and a blind precision sample. Through the real widgets, offscreen."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from gui_support import make_project, no_leaks  # noqa: E402,F401
from vo_al.core.base.progress import run_job  # noqa: E402
from vo_al.core.learning.classes import CLASS_NAMES  # noqa: E402
from vo_al.core.session.loop import (PRECISION_PURPOSE, QUERY_PURPOSE,  # noqa: E402
                                     ActiveLearningSession)
from vo_al.core.session.preferences import UserPreferences, load_preferences  # noqa: E402
from vo_al.core.session.project import Project  # noqa: E402
from vo_al.gui.labelling import BLIND_TEXT, WAITING  # noqa: E402
from vo_al.gui.main_window import MainWindow  # noqa: E402

WAIT_MS = 60_000
KEYS = {0: Qt.Key.Key_1, 1: Qt.Key.Key_2, 2: Qt.Key.Key_3}


@pytest.fixture(scope="module")
def queried(tmp_path_factory):
    """A project trained, scored and queried once (10 for the oracle, a precision sample)."""
    folder, truth = make_project(tmp_path_factory.mktemp("label-list") / "queried",
                                 n_train=120, n_pool=400, threshold_hits=5)
    project = Project.open(folder)
    try:
        s = ActiveLearningSession(project)
        run_job(s.train())
        run_job(s.score())
        s.query()
        assert any(p.purpose == PRECISION_PURPOSE for p in s.pending())
    finally:
        project.close()
    return folder, truth


@pytest.fixture
def opened(queried, tmp_path, qtbot, no_leaks):
    """[window, truth] on a copy of the queried project; emptied and closed at teardown."""
    template, truth = queried
    folder = tmp_path / "proj"
    shutil.copytree(template, folder)
    w = MainWindow(folder)
    w.resize(1100, 850)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: not w.dashboard.is_refreshing, timeout=WAIT_MS)
    held = [w, truth]
    yield held
    w.close()
    w.deleteLater()
    held.clear()


def click_row(qtbot, view, row: int) -> None:
    table = view.label_list
    rect = table.visualItemRect(table.item(row, 1))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def list_labels(view) -> list[str]:
    return [view.label_list.item(r, 3).text() for r in range(view.label_list.rowCount())]


def other_class(label: int) -> int:
    return (label + 1) % 3


def test_a_click_on_the_list_jumps_back_and_a_key_relabels(opened, qtbot):
    w, truth = opened
    view, session = w.labelling, w.session
    items = session.batch_labels()
    assert view.label_list.rowCount() == len(items)
    assert [view.label_list.item(r, 1).text() for r in range(len(items))] == \
        [b.name for b in items]
    assert set(list_labels(view)) == {WAITING}

    for item in items[:3]:
        assert view.current().pool_index == item.pool_index
        qtbot.keyClick(view, KEYS[int(truth[item.pool_index])])
        name = CLASS_NAMES[int(truth[item.pool_index])]
        assert view.notice.text() == f"{int(truth[item.pool_index]) + 1} {name} → {item.name}"
    assert view.current().pool_index == items[3].pool_index
    assert view.label_list.currentRow() == 3                  # the one on screen is selected
    assert list_labels(view)[:4] == [CLASS_NAMES[int(truth[b.pool_index])]
                                     for b in items[:3]] + [WAITING]

    # a click on the first row shows it again; the keys stay with the view
    click_row(qtbot, view, 0)
    first = items[0]
    assert view.current().pool_index == first.pool_index
    assert view.current().label == int(truth[first.pool_index])
    assert QApplication.focusWidget() is view
    assert "labelled" in view.title.text() and first.name in view.title.text()
    new = other_class(int(truth[first.pool_index]))
    qtbot.keyClick(view, KEYS[new])
    assert session.store.oracle_labels()[first.pool_index] == new
    assert view.notice.text() == (f"{new + 1} {CLASS_NAMES[new]} → {first.name} "
                                  f"(was {CLASS_NAMES[int(truth[first.pool_index])]})")
    assert list_labels(view)[0] == CLASS_NAMES[new]
    assert view.current().pool_index == items[3].pool_index   # back to the first one waiting
    # the next iteration trains on the new label
    x, y = session.training_data()
    n0 = len(session.project.training_arrays()[1])
    assert y[n0 + sorted(session.store.oracle_labels()).index(first.pool_index)] == new

    # the arrows move over labelled spectra too
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert view.current().pool_index == items[2].pool_index
    qtbot.keyClick(view, Qt.Key.Key_Down)
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert view.current().pool_index == items[4].pool_index


def test_backspace_says_what_it_undid(opened, qtbot):
    w, truth = opened
    view = w.labelling
    first = view.current()
    qtbot.keyClick(view, Qt.Key.Key_Backspace)
    assert view.notice.text().startswith("Backspace: nothing to undo")
    qtbot.keyClick(view, Qt.Key.Key_2)
    assert view.current() != first
    qtbot.keyClick(view, Qt.Key.Key_Backspace)
    assert first.pool_index not in w.session.store.oracle_labels()
    assert view.current() == first                            # shown again, waiting
    assert view.notice.text() == (f"Backspace: removed single peak from {first.name} (oracle "
                                  "batch); it waits for a label again")
    assert list_labels(view)[0] == WAITING


def test_after_the_estimate_the_list_is_read_only_and_keys_say_why(opened, qtbot):
    w, truth = opened
    view, session = w.labelling, w.session
    for item in session.pending():
        session.label(item.pool_index, int(truth[item.pool_index]))
    view.refresh()
    w.refresh()
    assert w.panel.buttons["estimate"].isEnabled()
    with qtbot.waitSignal(w.job_done, timeout=WAIT_MS):
        w.panel.buttons["estimate"].click()
    assert w.worker.error is None, w.worker.error
    before = session.store.oracle_labels()
    assert view.label_list.rowCount() == len(session.batch_labels())  # still there to review
    assert WAITING not in list_labels(view)
    assert view.help.text().startswith("read only: iteration 1's precision estimate")

    click_row(qtbot, view, 1)
    item = view.current()
    qtbot.keyClick(view, KEYS[other_class(item.label)])
    assert session.store.oracle_labels() == before
    assert view.notice.text().startswith(f"{other_class(item.label) + 1}: nothing recorded — "
                                         "iteration 1's precision estimate is recorded: its "
                                         "labels are locked")
    assert w.status_label.text().startswith("iteration 1's precision estimate is recorded")
    assert w.error_box is None and view.current() == item


def test_the_blind_precision_sample_hides_the_probabilities_there_only(opened, qtbot):
    w, _ = opened
    view = w.labelling
    items = view.items
    oracle_row = next(r for r, b in enumerate(items) if b.purpose == QUERY_PURPOSE)
    precision_row = next(r for r, b in enumerate(items) if b.purpose == PRECISION_PURPOSE)
    colours = {view.label_list.item(r, 2).background().color().name()
               for r in (oracle_row, precision_row)}
    assert colours == {"#1f5f99", "#b35900"}                  # the banners' colours

    # the preference, through the settings dialog
    dialog = w.open_settings()
    assert not dialog.blind_precision_sample.isChecked()
    dialog.blind_precision_sample.setChecked(True)
    assert dialog.apply()
    dialog.deleteLater()
    assert load_preferences().blind_precision_sample and view.blind_precision_sample

    click_row(qtbot, view, precision_row)
    assert view.info.text() == BLIND_TEXT
    click_row(qtbot, view, oracle_row)
    assert "entropy" in view.info.text() and "single peak 0." in view.info.text()

    view.set_preferences(UserPreferences(blind_precision_sample=False))
    click_row(qtbot, view, precision_row)
    assert "entropy" in view.info.text()
