"""Helpers for the GUI tests: a tiny project built through the core, and a leak check."""

from __future__ import annotations

import gc

import pytest

from PyQt6.QtCore import QCoreApplication, QEvent
from PyQt6.QtWidgets import QApplication

from session_fixtures import fill_project
from session_fixtures import tiny_settings as session_tiny_settings
from vo_al.core.session.project import Project
from vo_al.core.session.settings import ProjectSettings


def tiny_settings(**method) -> ProjectSettings:
    """The session tests' tiny settings, smaller still: one epoch, batches of 10."""
    gui = dict(batch_size=10, precision_sample=5, max_epochs=1, long_max_epochs=1,
               long_patience=1)
    return session_tiny_settings(**{**gui, **method})


def make_project(folder, n_train=300, n_pool=2000, **method):
    """Create, fill and close a project; returns (folder, the pool's true labels)."""
    project = Project.create(folder, folder / "pool", tiny_settings(**method))
    try:
        truth = fill_project(project, n_train=n_train, n_pool=n_pool)
    finally:
        project.close()
    return folder, truth


def top_level_widgets() -> set:
    return set(QApplication.topLevelWidgets())


def flush_deletes() -> None:
    """Run pending deleteLater()s, then collect Python-owned widgets (pyqtgraph's menus)."""
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    QCoreApplication.processEvents()
    gc.collect()
    QCoreApplication.processEvents()


def assert_no_leaks(before: set) -> None:
    """Fails when a top-level widget made since `before` (top_level_widgets()) is still alive:
    shown, or parentless and so owned by nobody (pyqtgraph's menus of a window kept alive)."""
    flush_deletes()
    leaked = [w for w in top_level_widgets() - before if w.isVisible() or w.parent() is None]
    assert not leaked, f"leaked widgets: {leaked}"


@pytest.fixture
def no_leaks(qapp):
    """Fails the test when a top-level widget it made is still alive after it."""
    before = top_level_widgets()
    yield
    assert_no_leaks(before)


@pytest.fixture
def window(qtbot, qapp):
    """A shown main window with no project, as `[window]`: the list is emptied at teardown
    (pytest keeps fixture values until later), then the window is closed, deleted and
    leak-checked."""
    from vo_al.gui.main_window import MainWindow

    before = top_level_widgets()
    w = MainWindow()
    w.resize(1100, 850)
    w.show()
    qtbot.waitExposed(w)
    held = [w]
    yield held
    w.close()
    w.deleteLater()
    held.clear()
    del w
    assert_no_leaks(before)
