"""The data sources panel, offscreen, against the project's real DaCHS server (tests/dachs_server.py):
SSAP and TAP searches fill the result table, a harvest fills a project's pool (cancel, resume),
errors are shown, a local folder of FITS files is ingested, and the pool is touched only between
iterations."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")
pytest.importorskip("pyvo")

from PyQt6.QtCore import Qt  # noqa: E402

from gui_support import make_project, no_leaks  # noqa: E402,F401
from vo_al.core.demo import make_pool  # noqa: E402
from vo_al.core.vo import query as vo_query  # noqa: E402
from vo_al.core.base.progress import run_job  # noqa: E402
from vo_al.core.session.project import Project  # noqa: E402
from vo_al.core.session.loop import ActiveLearningSession  # noqa: E402
from vo_al.core.vo.services import SIZE_RADIUS, VOService  # noqa: E402
from vo_al.gui.sources_panel import SourcesPanel, pool_gate  # noqa: E402

pytestmark = pytest.mark.timeout(600)

JOB_MS = 120_000
N_POOL = 2000


@pytest.fixture(autouse=True)
def own_services_file(tmp_path, monkeypatch):
    """No user's vo_services.json: the panel lists the defaults (the local DaCHS)."""
    monkeypatch.setenv("VO_AL_CONFIG_DIR", str(tmp_path / "config"))



@pytest.fixture
def project(tmp_path):
    folder, _ = make_project(tmp_path / "proj", n_pool=N_POOL)
    p = Project.open(folder)
    yield p
    p.close()


@pytest.fixture
def panel(project, qtbot, no_leaks):
    """[panel, state]: state['session'] is what the panel sees, state['busy'] the window's job."""
    state = {"session": ActiveLearningSession(project), "busy": False}
    w = SourcesPanel(lambda: state["session"], busy_elsewhere=lambda: state["busy"])
    w.show()
    qtbot.waitExposed(w)
    held = [w, state]
    yield held
    assert w.shutdown(30)
    w.close()
    w.deleteLater()
    held.clear()
    del w


def click_and_wait(qtbot, panel, button, signal=None):
    """Click `button`, wait until the panel's job is done; returns the worker."""
    assert button.isEnabled(), button.toolTip()
    with qtbot.waitSignal(panel.job_done, timeout=JOB_MS):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    return panel.worker


def tap_search(qtbot, panel, adql, url=None, maxrec=0):
    panel.forms.setCurrentWidget(panel.tap)
    if url is not None:
        panel.tap.service.url.setText(url)
    panel.tap.adql.setPlainText(adql)
    panel.tap.maxrec.setValue(maxrec)
    return click_and_wait(qtbot, panel, panel.search_button)


def first_position(dachs):
    tap = VOService("t-tap", "tap", dachs.tap_url)
    first = vo_query.tap_query(tap, "SELECT TOP 1 ra, dec FROM lamost.data ORDER BY obsid")
    return float(first["ra"][0]), float(first["dec"][0])


# -- searching ---------------------------------------------------------------------------------
def test_ssap_search_fills_the_table(dachs, panel, qtbot):
    w, _ = panel
    # the default services are the local DaCHS the fixture serves
    assert w.ssap.service.combo.currentText() == "local-ssap"
    assert w.ssap.service.url.text() == dachs.ssap_url
    ra, dec = first_position(dachs)
    w.forms.setCurrentWidget(w.ssap)
    w.ssap.ra.setValue(ra)
    w.ssap.dec.setValue(dec)
    w.ssap.radius.setValue(1.0)
    w.ssap.radius_unit.setCurrentText("deg")
    with qtbot.waitSignal(w.searched, timeout=JOB_MS) as blocker:
        qtbot.mouseClick(w.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.is_running, timeout=JOB_MS)
    direct = vo_query.ssap_search(VOService("t-ssap", "ssap", dachs.ssap_url,
                                            ssa_size=SIZE_RADIUS),
                                  (w.ssap.ra.value(), w.ssap.dec.value()), 1.0)
    assert len(direct) > 0 and w.model.rowCount() == len(direct) == len(blocker.args[0])
    assert w.model.columns == list(direct.colnames)
    assert set(w.model.table["accref"]) == set(direct["accref"])
    # a multidimensional column (the SSA position) is shown as text
    loc = w.model.index(0, w.model.columns.index("ssa_location")).data()
    assert "," in loc and w.overflow.isHidden()
    assert f"{len(direct)} rows" in w.status.text()
    assert w.harvest_button.isEnabled() and w.search_button.isEnabled()

    # the same cone in arcmin; then a MAXREC that truncates the result
    w.ssap.radius.setValue(60.0)
    w.ssap.radius_unit.setCurrentText("arcmin")
    click_and_wait(qtbot, w, w.search_button)
    assert w.model.rowCount() == len(direct)
    w.ssap.maxrec.setValue(5)
    click_and_wait(qtbot, w, w.search_button)
    assert w.model.rowCount() == 5 and w.result.meta["overflow"]
    assert w.overflow.isVisible() and "Truncated" in w.overflow.text()


def test_tap_query_fills_the_table(dachs, panel, qtbot):
    w, _ = panel
    assert w.tap.service.url.text() == dachs.tap_url
    worker = tap_search(qtbot, w, "SELECT TOP 20 * FROM lamost.data")
    assert worker.error is None, worker.error
    direct = vo_query.tap_query(VOService("t-tap", "tap", dachs.tap_url),
                                "SELECT TOP 20 * FROM lamost.data")
    assert w.model.rowCount() == 20 and w.model.columns == list(direct.colnames)
    assert "accref" in w.model.columns and w.overflow.isHidden()
    # an unbounded query truncated at max. rows: the warning is shown
    tap_search(qtbot, w, "SELECT obsid, accref FROM lamost.data", maxrec=10)
    assert w.model.rowCount() == 10 and w.overflow.isVisible()


def test_errors_are_shown_and_the_panel_stays_usable(dachs, panel, qtbot):
    w, _ = panel
    with qtbot.waitSignal(w.failed, timeout=JOB_MS) as blocker:
        worker = tap_search(qtbot, w, "SELECT FROM WHERE")
    assert worker.error is not None
    assert blocker.args[0].startswith("Search failed: VOQueryError")
    assert dachs.tap_url in blocker.args[0] and blocker.args[0] == w.status.text()

    with qtbot.waitSignal(w.failed, timeout=JOB_MS) as blocker:
        tap_search(qtbot, w, "SELECT TOP 5 * FROM lamost.data", url="http://127.0.0.1:9/tap")
    text = blocker.args[0]
    assert "VOServiceError" in text and "127.0.0.1:9/tap" in text and "unreachable" in text
    assert w.search_button.isEnabled() and not w.cancel_button.isEnabled()

    # a form that cannot be sent is refused before any job starts
    w.tap.service.url.setText("")
    with qtbot.waitSignal(w.failed, timeout=5_000) as blocker:
        assert w.search() is None
    assert "Search not started" in blocker.args[0] and "URL" in blocker.args[0]

    # the same panel then runs a good query
    worker = tap_search(qtbot, w, "SELECT TOP 5 obsid FROM lamost.data", url=dachs.tap_url)
    assert worker.error is None and w.model.rowCount() == 5
    # ... whose result has no access URL to harvest: the harvest says so
    with qtbot.waitSignal(w.failed, timeout=JOB_MS) as blocker:
        click_and_wait(qtbot, w, w.harvest_button)
    assert blocker.args[0].startswith("Harvest failed: ParameterError")
    assert "access URL" in blocker.args[0] and w.harvest_button.isEnabled()


# -- harvesting --------------------------------------------------------------------------------
def test_harvest_the_tap_result_into_the_pool(dachs, panel, project, qtbot):
    w, _ = panel
    tap_search(qtbot, w, "SELECT TOP 20 * FROM lamost.data")
    names = {str(n) for n in w.result["filename"]}
    assert len(project.pool) == N_POOL and w.harvest_button.isEnabled()
    seen = []
    with qtbot.waitSignal(w.pool_changed, timeout=JOB_MS) as changed:
        with qtbot.waitSignal(w.job_done, timeout=JOB_MS):
            qtbot.mouseClick(w.harvest_button, Qt.MouseButton.LeftButton)
            assert w.is_running and w.cancel_button.isEnabled()
            assert not w.harvest_button.isEnabled() and not w.search_button.isEnabled()
            w.worker.progress.connect(lambda p: seen.append((p.stage, p.done, p.total)))
    assert w.worker.error is None, w.worker.error
    # a spectrum that preprocessing rejects on its own (a served 'gap' artefact) is not added
    unusable = dachs.unusable(w.result["accref"])
    k = 20 - len(unusable)
    assert changed.args == [k] and len(project.pool) == N_POOL + k
    assert seen and seen[-1] == ("harvest", 20, 20)
    assert w.progress.bar.value() == w.progress.bar.maximum()
    assert w.last_report.added == k and {u for u, _ in w.last_report.failed} == unusable
    # the status line says what went wrong where something did, else what was added
    assert ("not usable" in w.status.text()) if unusable else (f"added {k}" in w.status.text())
    added = project.pool.metadata(list(range(N_POOL, N_POOL + k)), ["name", "source"])
    assert set(added["source"]) == {str(u) for u in w.result["accref"]} - unusable
    assert set(added["name"]) == names - {dachs.local_file(u).name for u in unusable}
    assert (project.folder / "harvest" / "harvest.json").is_file()
    # the same result again: nothing new
    with qtbot.waitSignal(w.job_done, timeout=JOB_MS):
        w.harvest()
    assert w.last_report.added == 0 and w.last_report.skipped == k
    assert len(project.pool) == N_POOL + k


def test_cancel_stops_a_harvest_and_the_next_one_resumes(dachs, panel, project, qtbot):
    w, _ = panel
    n = min(400, dachs.n_spectra)
    tap_search(qtbot, w, f"SELECT TOP {n} * FROM lamost.data")
    assert len(w.result) == n and w.overflow.isHidden()
    w.harvest_options = {"workers": 1, "retries": 1}           # slow enough to cancel mid-way

    def cancel_early(p):
        if p.stage == "harvest" and p.done >= 5:
            qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)

    with qtbot.waitSignal(w.job_done, timeout=JOB_MS):
        worker = w.harvest()
        worker.progress.connect(cancel_early)
    assert worker.was_aborted and worker.error is None
    first = len(project.pool) - N_POOL
    assert 0 <= first < n
    assert "harvest cancelled" in w.status.text() and not w.cancel_button.isEnabled()
    assert w.harvest_button.isEnabled()

    w.harvest_options = {"workers": 4, "retries": 1}
    worker = click_and_wait(qtbot, w, w.harvest_button)
    assert worker.error is None and not worker.was_aborted
    report = w.last_report
    unusable = dachs.unusable(w.result["accref"])       # rejected by preprocessing, not added
    usable = n - len(unusable)
    assert report.skipped == first and report.added == usable - first
    assert {u for u, _ in report.failed} == unusable
    assert len(project.pool) == N_POOL + usable
    names = project.pool.metadata(list(range(N_POOL, N_POOL + usable)), ["name"])["name"]
    assert len(set(names)) == usable


# -- a local folder ----------------------------------------------------------------------------
def test_local_folder_ingest_adds_rows(panel, project, qtbot, tmp_path):
    w, _ = panel
    folder = make_pool(tmp_path / "fits", n=12, seed=7, broken=2)
    seen = []
    with qtbot.waitSignal(w.pool_changed, timeout=JOB_MS) as changed, \
            qtbot.waitSignal(w.failed, timeout=JOB_MS) as failure:
        with qtbot.waitSignal(w.job_done, timeout=JOB_MS):
            worker = w.ingest_folder(folder)
            worker.progress.connect(lambda p: seen.append(p.stage))
    assert worker.error is None, worker.error
    assert changed.args == [12] and len(project.pool) == N_POOL + 12
    assert "ingest" in seen and w.progress.bar.value() == w.progress.bar.maximum()
    # the broken files are rejected, named, and the batch carried on
    assert "2 files rejected" in failure.args[0] and "broken-0000.fits" in failure.args[0]
    assert w.last_report.added == 12 and len(w.last_report.rejected) == 2

    # a folder that does not exist: the error names it, the pool is untouched
    with qtbot.waitSignal(w.failed, timeout=JOB_MS) as failure:
        with qtbot.waitSignal(w.job_done, timeout=JOB_MS):
            w.ingest_folder(tmp_path / "nowhere")
    assert failure.args[0].startswith("Ingest failed") and "nowhere" in failure.args[0]
    assert len(project.pool) == N_POOL + 12 and w.folder_button.isEnabled()

    # a folder without spectrum files: the core's PoolError (as `vo-al ingest` says it), naming
    # the folder and the patterns
    empty = tmp_path / "no-spectra"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a spectrum")
    with qtbot.waitSignal(w.failed, timeout=JOB_MS) as failure:
        with qtbot.waitSignal(w.job_done, timeout=JOB_MS):
            w.ingest_folder(empty)
    assert failure.args[0].startswith("Ingest failed") and str(empty) in failure.args[0]
    assert "*.fits" in failure.args[0] and len(project.pool) == N_POOL + 12


# -- when the pool may grow --------------------------------------------------------------------
def test_pool_buttons_only_between_iterations(panel, project, qtbot, tmp_path):
    w, state = panel
    session = state["session"]
    assert session.next_step() == "train" and pool_gate(session) is None
    assert w.folder_button.isEnabled() and w.search_button.isEnabled()
    assert not w.harvest_button.isEnabled() and "search first" in w.harvest_button.toolTip()

    # the window runs a job: the pool is not touched from here either
    state["busy"] = True
    w.refresh()
    assert not w.folder_button.isEnabled() and "window" in w.folder_button.toolTip()
    state["busy"] = False

    # no project
    state["session"] = None
    w.refresh()
    assert not w.folder_button.isEnabled() and "open a project" in w.folder_button.toolTip()
    assert w.search_button.isEnabled()            # searching never touches a pool
    state["session"] = session

    # a trained iteration: its scores will cover the pool as it is now
    run_job(session.train())
    assert session.next_step() == "score"
    w.refresh()
    assert not w.folder_button.isEnabled() and not w.harvest_button.isEnabled()
    assert "'score'" in w.folder_button.toolTip()
    with qtbot.waitSignal(w.failed, timeout=5_000) as blocker:
        assert w.ingest_folder(tmp_path) is None
    assert blocker.args[0].startswith("Ingest not started") and "'score'" in blocker.args[0]
    assert len(project.pool) == N_POOL
