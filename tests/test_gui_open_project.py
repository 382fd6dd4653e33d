"""The app meets a broken project: a dialog names the file, and the window stays on the project
it had (its session and pool still open and working)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from gui_support import make_project, no_leaks  # noqa: E402,F401
from vo_al.gui.main_window import MainWindow  # noqa: E402


def _break(folder, what: str) -> str:
    """Damage one file of a project as a crash, a bad copy or an editor would; its name."""
    if what == "settings":
        path = folder / "settings.json"
        path.write_text(path.read_text()[:40])                   # cut mid-object
    elif what == "session":
        path = folder / "session.sqlite"
        path.write_bytes(b"this is not a database " * 100)
    else:
        path = sorted((folder / "pool").glob("seg-*.npy"))[0]
        path.write_bytes(path.read_bytes()[:-4096])              # a copy that stopped short
    return path.name


@pytest.mark.parametrize("what", ["settings", "session", "segment"])
def test_a_broken_project_gives_a_dialog_and_keeps_the_open_one(tmp_path, qtbot, no_leaks, what):
    good, _ = make_project(tmp_path / "good", n_train=40, n_pool=60)
    bad, _ = make_project(tmp_path / "bad", n_train=40, n_pool=60)
    broken = _break(bad, what)
    w = MainWindow(good)
    w.show()
    try:
        with qtbot.waitSignal(w.error_shown, timeout=5_000) as blocker:
            assert not w.open_project(bad)
        assert "Opening the project" in blocker.args[0] and broken in blocker.args[0]
        assert "Traceback" not in blocker.args[0]
        assert w.error_box is not None and w.error_box.isVisible()
        assert w.project.folder == good and str(good) in w.windowTitle()
        assert w.session.status()["pool_size"] == 60             # the old one still works
    finally:
        w.close()
        w.deleteLater()
