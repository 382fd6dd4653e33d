"""Settings, preferences, recent projects, the first-run demo offer and read-ahead in the app."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QMessageBox  # noqa: E402

from gui_support import make_project, no_leaks  # noqa: E402,F401
from vo_al.core.session.preferences import load_preferences, save_preferences  # noqa: E402
from vo_al.core.session.settings import ProjectSettings  # noqa: E402
from vo_al.core.demo.simulate import SimulationConfig  # noqa: E402
from vo_al.gui.main_window import MainWindow  # noqa: E402

JOB_TIMEOUT_MS = 120_000



@pytest.fixture
def open_window(qtbot, no_leaks):
    made = []

    def open_(folder=None):
        w = MainWindow(folder)
        w.show()
        qtbot.waitExposed(w)
        made.append(w)
        return w

    yield open_
    while made:
        w = made.pop()
        w.close()
        w.deleteLater()
        del w                       # no reference may outlive the window (the leak check)


def run_step(qtbot, w, name):
    assert w.panel.buttons[name].isEnabled(), f"{name}: next step {w.session.next_step()}"
    with qtbot.waitSignal(w.job_done, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(w.panel.buttons[name], Qt.MouseButton.LeftButton)
    assert w.worker.error is None, w.worker.error


def test_method_settings_are_edited_validated_and_saved(tmp_path, open_window):
    folder, _ = make_project(tmp_path / "proj")
    w = open_window(folder)
    dialog = w.open_settings()
    editors = dialog.method_form.editors
    assert editors["batch_size"].text() == str(w.session.method.batch_size)
    # the pool holds spectra: preprocessing is shown but cannot be edited
    assert not dialog.preprocess_form.editors["n_points"].isEnabled()

    editors["batch_size"].setText("abc")
    editors["max_epochs"].setText("7")
    assert dialog.apply() is False
    assert "batch_size" in dialog.error.text() and "abc" in dialog.error.text()
    saved = ProjectSettings.load(folder / "settings.json")
    assert saved.method.max_epochs != 7                        # all or nothing
    assert dialog.isVisible()

    editors["batch_size"].setText("7")
    assert dialog.apply() is True
    assert not dialog.isVisible()
    assert ProjectSettings.load(folder / "settings.json").method.batch_size == 7
    assert w.session.method.batch_size == 7 and w.session.method.max_epochs == 7
    dialog.deleteLater()


def test_label_keys_from_the_preferences_drive_the_labelling_view(tmp_path, qtbot, open_window):
    folder, truth = make_project(tmp_path / "proj")
    w = open_window(folder)
    dialog = w.open_settings()
    dialog.label_keys.setText("jkl")
    assert dialog.apply()
    dialog.deleteLater()
    assert load_preferences().label_keys == "jkl"
    assert w.labelling.help.text().startswith("j non-target · k single peak · l double peak")
    for step in ("train", "score", "query"):
        run_step(qtbot, w, step)
    view = w.labelling
    first = view.current()
    qtbot.keyClick(view, Qt.Key.Key_1)              # no longer a label key
    assert first.pool_index not in w.session.store.oracle_labels()
    qtbot.keyClick(view, Qt.Key.Key_K)
    assert w.session.store.oracle_labels()[first.pool_index] == 1
    assert view.current() != first


def test_recent_projects_are_remembered_across_windows(tmp_path, qtbot, open_window):
    a, _ = make_project(tmp_path / "a", n_train=50, n_pool=50)
    b, _ = make_project(tmp_path / "b", n_train=50, n_pool=50)
    w = open_window(a)
    assert w.open_project(b)
    assert load_preferences().recent_projects[:2] == [str(b.resolve()), str(a.resolve())]
    w2 = open_window()
    w2.fill_recent_menu()
    entries = [act.text() for act in w2.recent_menu.actions()]
    assert entries[:2] == [str(b.resolve()), str(a.resolve())]
    w2.recent_menu.actions()[1].trigger()
    assert w2.project is not None and w2.project.folder.resolve() == a.resolve()


def test_unreadable_preferences_are_reported_not_fatal(tmp_path, open_window):
    from vo_al.core.session.preferences import preferences_path

    preferences_path().parent.mkdir(parents=True, exist_ok=True)
    preferences_path().write_text("not json")
    w = open_window()
    assert "unreadable preferences" in w.status_label.text()
    assert w.prefs.recent_projects == []


def test_first_run_offers_the_demo_once(tmp_path, qtbot, open_window):
    w = open_window()
    config = SimulationConfig(n_train=150, n_pool=200, target_fraction=0.1, workers=1)
    box = w.offer_demo_if_first_run(tmp_path / "demo", config)
    assert box is not None and box.isVisible() and "offline demo" in box.text()
    # it names the folder Project › Open… accepts, as the demo makes it
    assert f"holding project.json: the demo's is\n{tmp_path / 'demo' / 'project'}" in box.text()
    assert load_preferences().demo_offered            # saved at once: asked only once
    with qtbot.waitSignal(w.job_done, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.session is not None, timeout=10_000)
    assert w.project.folder == tmp_path / "demo" / "project"
    # the demo's 'gap' artefacts with a mostly dead H-alpha window are rejected
    pool = w.project.pool
    assert len(pool) + len(pool.rejected()) == 200 and len(pool) > 190
    assert w.session.next_step() == "train"
    # the demo uses the same shortened training as `vo-al demo`
    assert w.session.method.max_epochs == 12 and w.session.method.batch_size == 50

    again = open_window()
    assert again.offer_demo_if_first_run(tmp_path / "demo2", config) is None


def test_a_declined_offer_is_not_repeated(tmp_path, qtbot, open_window):
    w = open_window()
    box = w.offer_demo_if_first_run(tmp_path / "demo")
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.No), Qt.MouseButton.LeftButton)
    assert w.worker is None and not (tmp_path / "demo").exists()
    assert open_window().offer_demo_if_first_run(tmp_path / "demo") is None


def test_next_spectra_are_read_ahead_so_a_key_press_never_waits(tmp_path, qtbot, open_window):
    prefs = load_preferences()
    prefs.prefetch = 4
    save_preferences(prefs)
    w = open_window()
    config = SimulationConfig(n_train=200, n_pool=300, target_fraction=0.1, workers=1)
    with qtbot.waitSignal(w.job_done, timeout=JOB_TIMEOUT_MS):
        w.create_demo(tmp_path / "demo", config)
    qtbot.waitUntil(lambda: w.session is not None, timeout=10_000)
    w.project.change_settings({"max_epochs": "1", "batch_size": "10", "precision_sample": "5"})
    for step in ("train", "score", "query"):
        run_step(qtbot, w, step)
    view = w.labelling
    items = view.items
    assert len(items) >= 5
    sources = w.project.pool.metadata(np.array([p.pool_index for p in items[:5]]),
                                      ["source"])["source"]
    # the one on screen and the next four were asked for; wait until they are read
    futures = [view.prefetcher.request(str(s)) for s in sources]
    qtbot.waitUntil(lambda: all(f.done() for f in futures), timeout=JOB_TIMEOUT_MS)
    shown = []
    view.spectrum_shown.connect(shown.append)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    # drawn during the key press itself: no waiting on a file
    assert shown == [str(sources[1])]
    assert len(view.full_curve.getData()[0]) > 1000
    assert str(sources[1]).rsplit("/", 1)[-1] in view.full_plot.plotItem.titleLabel.text


def test_window_layout_is_remembered(tmp_path, qtbot, open_window):
    w = open_window()
    w.samp_dock.show()
    w.resize(1000, 700)
    qtbot.waitUntil(lambda: w.size().height() == 700, timeout=5_000)
    w.close()
    prefs = load_preferences()
    assert prefs.window_geometry and prefs.window_state
    again = open_window()
    assert again.size().height() != 700
    assert again.restore_layout()
    # the height and the docks come back (the offscreen platform's 800x600 "screen" clamps a
    # restored width to the window's minimum, so the width is not compared)
    qtbot.waitUntil(lambda: again.size().height() == 700, timeout=5_000)
    assert again.samp_dock.isVisible()


def test_two_windows_do_not_undo_each_others_preferences(tmp_path, open_window):
    a, _ = make_project(tmp_path / "a", n_train=50, n_pool=50)
    b, _ = make_project(tmp_path / "b", n_train=50, n_pool=50)
    first, second = open_window(), open_window()      # each loads the preferences once
    first.open_project(a)
    second.open_project(b)
    first.close()                                      # saves its layout: from disk, not its copy
    assert set(load_preferences().recent_projects[:2]) == {str(a.resolve()), str(b.resolve())}
