"""The spectrum of any row (issue 14): a double-click on a candidates or cross-match row opens
one spectrum window with the whole spectrum, the lines that fool the model marked and the
metadata; a source that cannot be read says why; the Label tab's grid mode labels through the
view's keys. Through the real widgets, offscreen, on a project whose pool rows point at real
FITS files (most), a missing file and a broken one."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

import pyqtgraph as pg  # noqa: E402
from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from gui_support import no_leaks, tiny_settings  # noqa: E402,F401
from session_fixtures import fill_project  # noqa: E402
from vo_al.core.base.errors import PoolError  # noqa: E402
from vo_al.core.base.progress import run_job  # noqa: E402
from vo_al.core.demo import make_lamost_spectrum, write_lamost_fits  # noqa: E402
from vo_al.core.jobs.crossmatch import SHIPPED_H16, SHIPPED_SIMBAD_LIKE  # noqa: E402
from vo_al.core.session.loop import ActiveLearningSession  # noqa: E402
from vo_al.core.session.project import Project  # noqa: E402
from vo_al.core.session.spectrum_details import spectrum_details  # noqa: E402
from vo_al.core.spectra.lines import MARKED_LINES, O2_B_BAND_VAC  # noqa: E402
from vo_al.core.spectra.readers import read_spectrum  # noqa: E402
from vo_al.core.spectra.record import SpectrumMeta  # noqa: E402
from vo_al.gui.label_grid import PAGE_SIZE, cell_name  # noqa: E402
from vo_al.gui.main_window import MainWindow  # noqa: E402
from vo_al.core.vo.prefetch import SpectrumPrefetcher  # noqa: E402
from vo_al.gui.spectrum_view import (FLUX_ARBITRARY, LINE_MARKS, WholeSpectrumPlot,  # noqa: E402
                                     fitting_labels)

WAIT_MS = 60_000
N_POOL = 300


def pool_source(files: Path, i: int) -> str:
    """Row i's source: a missing file every 10th row, a broken one the 5th of each ten, else one
    of three real LAMOST-like files."""
    if i % 10 == 0:
        return str(files / "gone.fits")
    if i % 10 == 5:
        return str(files / "broken.fits")
    return str(files / f"star-{i % 3}.fits")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A project built once through the core, trained, scored and queried (its batch and
    precision sample waiting), whose pool rows carry survey metadata and point at files."""
    root = tmp_path_factory.mktemp("spectra")
    files = root / "files"
    files.mkdir()
    for k in range(3):
        wl, flux, ivar, andmask, ormask = make_lamost_spectrum(1, np.random.default_rng(k))
        write_lamost_fits(files / f"star-{k}.fits", wl, flux, ivar, andmask, ormask,
                          SpectrumMeta(name=f"star-{k}", ra=10.0, dec=20.0))
    (files / "broken.fits").write_bytes(b"SIMPLE  = T" + b" " * 100)

    def meta(i):
        return {"designation": f"J{i:04d}+2000", "snr": 30.0 + i % 50, "cls": "STAR",
                "subclass": "A1V", "z": 1e-4, "obsid": str(900000 + i),
                "source": pool_source(files, i)}

    folder = root / "proj"
    project = Project.create(folder, folder / "pool", tiny_settings())
    try:
        fill_project(project, n_train=120, n_pool=N_POOL, pool_meta=meta)
        s = ActiveLearningSession(project)
        run_job(s.train())
        run_job(s.score())
        s.query()
        assert s.pending()
    finally:
        project.close()
    return folder, files


@pytest.fixture
def window(template, tmp_path, qtbot, no_leaks):
    """A window on a copy of the template (its sources are absolute paths: they stay valid)."""
    folder = tmp_path / "proj"
    shutil.copytree(template[0], folder)
    w = MainWindow(folder)
    w.resize(1100, 850)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: not w.dashboard.is_refreshing, timeout=WAIT_MS)
    held = [w]          # emptied at teardown: pytest keeps fixture values until later
    yield held
    w.close()
    w.deleteLater()
    held.clear()
    del w


def double_click_row(qtbot, table, row: int, column: int = 1) -> None:
    """As a person double-clicks: a click, then the double-click (QTest's mouseDClick alone
    sends no press first, and a view takes a double-click only on the row pressed)."""
    at = table.visualRect(table.model().index(row, column)).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=at)


def marked_wavelengths(plot) -> list[float]:
    return sorted(item.value() for item in plot.getPlotItem().items
                  if isinstance(item, pg.InfiniteLine))


# -- the row spectrum window ---------------------------------------------------------------------
def test_double_click_on_a_candidate_shows_its_spectrum_lines_and_metadata(window, qtbot):
    w = window[0]
    s = w.session
    for item in s.pending():           # the batch labelled target: candidates for sure
        if item.purpose == "query":
            s.label(item.pool_index, 1)
    w.dashboard.refresh(s)
    qtbot.waitUntil(lambda: not w.dashboard.is_refreshing, timeout=WAIT_MS)
    table, d = w.dashboard.table, w.dashboard
    w.tabs.setCurrentWidget(d)
    sources = d.model.table["source"]
    row = next(r for r in range(d.proxy.rowCount())
               if "star-" in sources[d.proxy.mapToSource(d.proxy.index(r, 0)).row()])
    pool_index = int(d.model.table["pool_index"][d.proxy.mapToSource(d.proxy.index(row, 0))
                                                 .row()])
    view = w.spectrum_window
    with qtbot.waitSignal(view.shown, timeout=WAIT_MS):
        double_click_row(qtbot, table, row)
    assert view.isVisible() and not view.isModal()
    name = s.project.pool.metadata(np.array([pool_index]), ["name"])["name"][0]
    assert view.details.pool_index == pool_index and name in view.title.text()
    panel = view.panel.text()
    for shown in (f"J{pool_index:04d}+2000", f"{30.0 + pool_index % 50:.1f}", "STAR / A1V",
                  "0.00010", str(900000 + pool_index), "p double peak", "iteration 1"):
        assert shown in panel, shown
    if pool_index in s.store.oracle_labels():
        assert "single peak (oracle)" in panel
    # the whole spectrum of its file, the lines that fool the model and the O₂ B band marked
    spectrum = read_spectrum(sources[d.proxy.mapToSource(d.proxy.index(row, 0)).row()])
    x, _ = view.whole.curve.getData()
    assert len(x) == len(spectrum.wavelength) and view.reason.text() == ""
    assert spectrum.flux_unit and view.whole.getAxis("left").labelText == \
        f"flux ({spectrum.flux_unit})"                                   # the file's BUNIT
    for plot in (view.whole, view.window_plot):
        np.testing.assert_allclose(marked_wavelengths(plot),
                                   sorted(line.wavelength for line in MARKED_LINES))
        regions = [i for i in plot.getPlotItem().items if isinstance(i, pg.LinearRegionItem)]
        assert [tuple(r.getRegion()) for r in regions] == [O2_B_BAND_VAC]
    # the labels are on the top axis, off the data; zoomed in, the close ones appear too
    qtbot.waitUntil(lambda: "Hα" in view.whole.getAxis("top").shown_labels(), timeout=5_000)
    view.whole.setXRange(6500, 6760, padding=0)
    qtbot.waitUntil(lambda: {"[N II]", "[S II]", "He I"}
                    <= set(view.whole.getAxis("top").shown_labels()), timeout=5_000)
    # the same window shows the next row asked for
    other = int(d.model.table["pool_index"][d.proxy.mapToSource(d.proxy.index(
        (row + 1) % d.proxy.rowCount(), 0)).row()])
    with qtbot.waitSignal(view.shown, timeout=WAIT_MS):
        w.show_spectrum(other)
    assert view.details.pool_index == other and w.spectrum_window is view
    # a label given while it is shown: the window says so after the window's refresh
    waiting = next(item for item in s.pending() if item.purpose == "precision")
    with qtbot.waitSignal(view.shown, timeout=WAIT_MS):
        w.show_spectrum(waiting.pool_index)
    assert "labelled" not in view.panel.text()
    s.label(waiting.pool_index, 2)
    w.refresh()
    assert "double peak (precision)" in view.panel.text()
    assert "labelled double peak (precision)" in view.title.text()


def test_a_source_that_cannot_be_read_says_why(window, template, qtbot):
    w, files = window[0], template[1]
    view = w.spectrum_window
    for pool_index, why in ((10, f"{files / 'gone.fits'}: file not found"),
                            (15, str(files / "broken.fits"))):
        with qtbot.waitSignal(view.shown, timeout=WAIT_MS):
            w.show_spectrum(pool_index)
        assert view.isVisible() and view.details.pool_index == pool_index
        assert why in view.reason.text() and "not available" in view.reason.text()
        assert "not available" in view.whole.getPlotItem().titleLabel.text
        assert view.whole.curve.getData()[0] is None or len(view.whole.curve.getData()[0]) == 0
        assert f"J{pool_index:04d}+2000" in view.panel.text()       # the metadata still shown
    # no such row: said in the window, nothing raised
    w.show_spectrum(N_POOL + 5)
    assert view.details is None and f"index {N_POOL + 5} out of range" in view.reason.text()


def test_another_project_leaves_nothing_in_the_spectrum_window(window, template, tmp_path,
                                                              qtbot):
    w = window[0]
    with qtbot.waitSignal(w.spectrum_window.shown, timeout=WAIT_MS):
        w.show_spectrum(1)
    other = tmp_path / "other"
    shutil.copytree(template[0], other)
    assert w.open_project(other)
    view = w.spectrum_window
    assert not view.isVisible() and view.details is None and view.panel.text() == ""
    assert view.whole.source == "" and view.session is w.session


def test_double_click_on_a_crossmatch_row_shows_its_spectrum(window, qtbot):
    w = window[0]
    panel = w.crossmatch
    panel.catalogue.setText(str(SHIPPED_SIMBAD_LIKE))
    panel.set_source("file")
    panel.h16.setText(str(SHIPPED_H16))
    with qtbot.waitSignal(panel.finished, timeout=300_000):
        assert panel.run() is not None
    assert panel.proxy.rowCount() > 0
    w.tabs.setCurrentWidget(panel)
    column = panel.model.columns.index("name")
    name = panel.proxy.index(0, column).data()
    with qtbot.waitSignal(w.spectrum_window.shown, timeout=WAIT_MS):
        double_click_row(qtbot, panel.table, 0, column)
    assert w.spectrum_window.details.name == name and name in w.spectrum_window.title.text()


def test_spectrum_details_are_the_pools_the_scores_and_the_person(template, tmp_path):
    folder = tmp_path / "proj"
    shutil.copytree(template[0], folder)
    project = Project.open(folder)
    try:
        s = ActiveLearningSession(project)
        item = s.pending()[0]
        before = spectrum_details(s, item.pool_index)
        assert before.label is None and before.scores == "iteration 1"
        np.testing.assert_allclose(before.probabilities,
                                   s.latest_scores()[0][item.pool_index], rtol=1e-6)
        assert before.meta["designation"] == f"J{item.pool_index:04d}+2000"
        assert before.meta["instrument"] == "lamost" and before.meta["cls"] == "STAR"
        s.label(item.pool_index, 2)
        after = spectrum_details(s, item.pool_index)
        assert (after.label, after.label_name) == (2, "double peak")
        assert after.label_origin == ("oracle" if item.purpose == "query" else "precision")
        with pytest.raises(PoolError, match=f"index {N_POOL} out of range"):
            spectrum_details(s, N_POOL)
    finally:
        project.close()


# -- line labels and flux units -------------------------------------------------------------------
def test_line_labels_never_overlap_and_appear_when_zoomed_in():
    def width(text):
        return 8 * len(text)

    whole = [label for label, _ in fitting_labels(LINE_MARKS, 3700, 9100, 900, width)]
    assert "Hα" in whole and "[N II]" not in whole      # 15 Å from Hα: 2 px at this zoom
    window = fitting_labels(LINE_MARKS, 6519, 6732, 600, width)
    assert [label for label, _ in window] == ["[N II]", "Hα", "[N II]", "He I", "[S II]"]
    scale = 600 / (6732 - 6519)
    spans = [((wl - 6519) * scale - width(t) / 2, (wl - 6519) * scale + width(t) / 2)
             for t, wl in window]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert fitting_labels(LINE_MARKS, 6519, 6732, 0, width) == []


def test_the_line_wavelengths_of_0_2_0_still_import_with_a_warning():
    from vo_al.core.spectra import lines, preprocess

    with pytest.warns(DeprecationWarning, match="moved to vo_al.core.spectra.lines"):
        assert preprocess.HALPHA_VAC == lines.HALPHA_VAC
    with pytest.raises(AttributeError):
        preprocess.NO_SUCH_LINE


def test_the_flux_unit_is_the_files(qtbot):
    from conftest import real_data_dir

    real = real_data_dir() or Path("../shared/data/real")
    ccd700, lamost = (real / "ondrejov" / "oe270005.fits",
                      real / "lamost-dr2" / "spec-55916-B5591606_sp01-001.fits")
    if not (ccd700.is_file() and lamost.is_file()):
        pytest.skip(f"{real} does not hold the real files ($VO_AL_REAL_DATA or "
                    f"../shared/data/real)")
    assert read_spectrum(ccd700).flux_unit == "ADU"          # its BUNIT
    assert read_spectrum(lamost).flux_unit == ""             # DR2 states none: relative flux
    plot = WholeSpectrumPlot()
    qtbot.addWidget(plot)
    prefetcher = SpectrumPrefetcher(None)
    try:
        for path, label in ((ccd700, "flux (ADU)"), (lamost, FLUX_ARBITRARY)):
            with qtbot.waitSignal(plot.shown, timeout=WAIT_MS):
                plot.show_source(str(path), prefetcher)
            assert plot.getAxis("left").labelText == label and plot.reason == ""
    finally:
        prefetcher.close()


# -- the grid ------------------------------------------------------------------------------------
def test_grid_mode_shows_a_page_and_a_click_and_a_key_label_that_spectrum(window, qtbot):
    w = window[0]
    view, grid = w.labelling, w.label_grid
    items = list(view.items)
    assert len(items) > PAGE_SIZE         # a batch of 10 and a sample of 5: two pages
    w.tabs.setCurrentWidget(view)
    w.activateWindow()
    qtbot.mouseClick(grid.toggle, Qt.MouseButton.LeftButton)
    assert grid.is_on and grid.isVisible() and not view.window_plot.isVisible()
    assert not view.full_plot.isVisible()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is view, timeout=5_000)
    titles = [cell.titleLabel.text for cell in grid.cells]
    assert all(cell_name(item.name) in title for item, title in zip(items[:PAGE_SIZE], titles))
    n_points = w.session.project.settings.preprocess.n_points
    assert all(len(c.getData()[0]) == n_points for c in grid.curves)
    assert "page 1 of 2" in grid.page_label.text()

    k = 5
    center = grid.mapFromScene(grid.cells[k].sceneBoundingRect().center())
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=center)
    assert view.current().pool_index == items[k].pool_index
    assert QApplication.focusWidget() is view                   # the keys label in the view
    qtbot.keyClick(QApplication.focusWidget(), "2")
    store, target = w.session.store, items[k]
    labels = (store.oracle_labels() if target.purpose == "query"
              else store.precision_labels(w.session.iteration))
    assert labels[target.pool_index] == 1
    assert "single peak" in grid.cells[k].titleLabel.text
    assert view.position == k + 1 and grid.page == 0            # the next cell, same page

    # the rest of the page: the grid stays on it until it is all labelled, then turns
    for _ in range(PAGE_SIZE - 1):
        assert grid.page == 0
        qtbot.keyClick(QApplication.focusWidget(), "1")
    assert all(item.label is not None for item in view.items[:PAGE_SIZE])
    assert grid.page == 1 and view.position == PAGE_SIZE
    shown = [cell.titleLabel.text for cell in grid.cells]
    assert all(cell_name(item.name) in t for item, t in zip(view.items[PAGE_SIZE:], shown))
    assert all(t == "" for t in shown[len(view.items) - PAGE_SIZE:])
    qtbot.mouseClick(grid.toggle, Qt.MouseButton.LeftButton)
    assert not grid.isVisible() and view.window_plot.isVisible()
