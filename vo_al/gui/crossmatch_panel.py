"""Cross-match panel: the paper's whole cross-match (Appendix B) of the candidates.

The widgets choose the catalogues and radii; `core.crossmatch_job` does the work (the same
core calls as `vo-al crossmatch`) and returns the four tables (known_h16, new_in_simbad,
new_unknown, rejected) with the multiple-exposure groups and the radius scan, shown here.
"Export tables…" writes them with `write_tables`.

Everything that reads a file or asks a service runs as a job on the panel's `JobRunner` (one at
a time), never on the GUI thread; a `ProgressLine` shows it, the widgets only show its result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QGridLayout,
                             QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget)

from vo_al.core import xmatch as xm
from vo_al.core.jobs.crossmatch import (ALL, SHIPPED_H16, SHIPPED_SIMBAD_LIKE, SIMBAD_SOURCES,
                                       CrossmatchRun, CrossmatchSettings, crossmatch_job,
                                       describe_groups, export_job)
from vo_al.core.demo.catalogues import project_catalogues
from vo_al.core.base.errors import ParameterError

from vo_al.gui.array_proxy import ArraySortFilterProxy
from vo_al.gui.dashboard import ColumnTableModel
from vo_al.gui.table_view import FilterBox, catalogue_table_view, coordinates_button
from vo_al.gui.progress_line import ProgressLine
from vo_al.gui.workers import JobRunner, JobWorker, call_job, error_text

EMPTY_COLUMNS = ("pool_index", "name", "designation", "ra", "dec")   # the table before a run
EMPTY_SCAN_COUNT = 10       # the count axis of the radius scan before one


def _scores_name(basis) -> str:
    """'final' or 'iteration N' from a candidates_basis (see there), 'unscored' without."""
    return basis[1][0] if basis and basis[1] else "unscored"


class RadiusScanPlot(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent, title="radius scan")
        self.setLabel("bottom", "radius (arcsec)")
        self.setLabel("left", "count")
        for side in ("left", "bottom"):                       # counts and arcsec, not "x0.001"
            self.getAxis(side).enableAutoSIPrefix(False)
        self.setLimits(yMin=0)
        # bottom right: the counts grow with the radius, so the curves end high on the right
        self.addLegend(offset=(-10, -10), brush=(0, 0, 0, 160))
        self.matched_curve = self.plot(pen="g", symbol="o", name="candidates with a match")
        self.pairs_curve = self.plot(pen=pg.mkPen("y", style=Qt.PenStyle.DashLine), symbol="s",
                                     name="objects within the radius")
        self.chosen_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("r"), label="radius {value:g}″",
                                           labelOpts={"position": 0.9, "color": "r"})
        self.addItem(self.chosen_line)
        self.clear_scan()

    def set_scan(self, scan, chosen: float) -> None:
        r = np.asarray(scan["radius"], float)
        self.matched_curve.setData(r, np.asarray(scan["n_matched"], float))
        self.pairs_curve.setData(r, np.asarray(scan["n_pairs"], float))
        self.chosen_line.setValue(chosen)
        self.chosen_line.show()
        self.enableAutoRange()

    def clear_scan(self) -> None:
        """No scan: the axes of one (the radii scanned, a few counts), not pyqtgraph's
        −400…400 of an empty plot."""
        self.matched_curve.setData([], [])
        self.pairs_curve.setData([], [])
        self.chosen_line.hide()                   # no radius chosen yet: not 'radius 0″'
        self.setXRange(min(xm.SCAN_RADII), max(xm.SCAN_RADII))
        self.setYRange(0, EMPTY_SCAN_COUNT)


def radius_box(value: float) -> QDoubleSpinBox:
    """A match radius in arcsec, limited to the range the core accepts (xmatch.check_radius)."""
    box = QDoubleSpinBox()
    box.setRange(xm.MIN_RADIUS, xm.MAX_RADIUS)
    box.setDecimals(1)
    box.setSuffix(" ″")
    box.setValue(value)
    return box


class CrossmatchPanel(QWidget):
    finished = pyqtSignal(object)        # the CrossmatchRun, after the widgets show it
    failed = pyqtSignal(str)             # what went wrong, as the status line says it
    cancelled = pyqtSignal()
    exported = pyqtSignal(list)          # the Paths written
    row_selected = pyqtSignal(int)       # pool_index of the result row made current
    row_activated = pyqtSignal(int)      # pool_index of a result row double-clicked: its spectrum

    def __init__(self, candidates: Callable[[], dict] | None = None, parent=None, *,
                 project_getter: Callable[[], object] | None = None,
                 basis_getter: Callable[[], object] | None = None):
        super().__init__(parent)
        self.candidates = candidates or (lambda: {})
        self.project_getter = project_getter or (lambda: None)
        # what the project's candidates are made from now (session.candidates.candidates_basis)
        self.basis_getter = basis_getter or (lambda: None)
        self.jobs = JobRunner(self)              # the match and the export, one at a time
        self.result: CrossmatchRun | None = None
        self.result_basis = None                 # the basis the shown result was made from
        self.stale: str | None = None            # why the shown result no longer holds, or None
        self._run_basis = None

        self.source = QComboBox()
        for key, text in SIMBAD_SOURCES:
            self.source.addItem(text, key)
        self.catalogue = QLineEdit(str(SHIPPED_SIMBAD_LIKE) if SHIPPED_SIMBAD_LIKE.is_file()
                                   else "")
        self.catalogue.setPlaceholderText("SIMBAD-like catalogue file (VOTable, FITS, CSV, "
                                          "ECSV)")
        self.browse_button = QPushButton("Browse…")
        self.tap_url = QLineEdit()
        self.tap_url.setPlaceholderText("TAP service URL (table basic: main_id, ra, dec, otype)")
        self.radius = radius_box(xm.DEFAULT_SIMBAD_RADIUS)
        self.h16_enabled = QCheckBox("H16")
        self.h16_enabled.setChecked(True)
        self.h16 = QLineEdit(str(SHIPPED_H16) if SHIPPED_H16.is_file() else "")
        self.h16.setPlaceholderText("H16 table (Hou et al. 2016: CSV as published, VOTable, "
                                    "FITS, ECSV)")
        self.h16_browse_button = QPushButton("Browse…")
        self.h16_radius = radius_box(xm.DEFAULT_H16_RADIUS)
        self.scan_enabled = QCheckBox("radius scan")
        self.scan_enabled.setChecked(True)
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.export_button = QPushButton("Export tables…")
        self.export_button.setEnabled(False)
        self.progress = ProgressLine(self.jobs)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        self.table_choice = QComboBox()
        self.groups_label = QLabel("")
        self.groups_label.setWordWrap(True)
        self.model = ColumnTableModel(columns=EMPTY_COLUMNS)
        self.proxy = ArraySortFilterProxy(self)      # numpy sorts: header clicks call sort()
        self.proxy.setSourceModel(self.model)
        self.filter_box = FilterBox(self.model, self.proxy,
                                    "filter: words and comparisons, e.g. simbad_sep <= 5 and "
                                    "p_double > 0.9 (Export writes the rows it keeps)")
        self.coordinates_button = coordinates_button(self.model)
        self.table = catalogue_table_view(self.proxy)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.doubleClicked.connect(self._row_double_clicked)
        self.plot = RadiusScanPlot()

        grid = QGridLayout()
        grid.addWidget(QLabel("SIMBAD"), 0, 0)
        grid.addWidget(self.source, 0, 1)
        grid.addWidget(self.catalogue, 0, 2)
        grid.addWidget(self.tap_url, 0, 2)
        grid.addWidget(self.browse_button, 0, 3)
        grid.addWidget(QLabel("radius"), 0, 4)
        grid.addWidget(self.radius, 0, 5)
        grid.addWidget(self.h16_enabled, 1, 0)
        grid.addWidget(self.h16, 1, 1, 1, 2)
        grid.addWidget(self.h16_browse_button, 1, 3)
        grid.addWidget(QLabel("H16 radius"), 1, 4)
        grid.addWidget(self.h16_radius, 1, 5)
        grid.setColumnStretch(2, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.scan_enabled)
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.export_button)
        choice = QHBoxLayout()
        choice.addWidget(QLabel("table"), 0, Qt.AlignmentFlag.AlignTop)
        choice.addWidget(self.table_choice, 1, Qt.AlignmentFlag.AlignTop)
        choice.addWidget(self.filter_box, 2)
        choice.addWidget(self.coordinates_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(choice)
        layout.addWidget(self.groups_label)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.plot, 1)

        self.source.currentIndexChanged.connect(self._source_changed)
        self.h16_enabled.toggled.connect(self._h16_toggled)
        self.browse_button.clicked.connect(self.choose_catalogue)
        self.h16_browse_button.clicked.connect(self.choose_h16)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(self.choose_export_folder)
        self.table_choice.currentIndexChanged.connect(lambda _i: self._show_table())
        self.table.selectionModel().currentRowChanged.connect(self._current_row_changed)
        self._source_changed()

    # -- settings --------------------------------------------------------------------------------
    def set_source(self, key: str) -> None:
        index = self.source.findData(key)
        if index < 0:
            raise ParameterError("SIMBAD source", key, ", ".join(k for k, _ in SIMBAD_SOURCES))
        self.source.setCurrentIndex(index)

    def use_project_catalogues(self, project_folder) -> bool:
        """Choose the catalogues a project's `catalogues/` folder holds (the demo writes its own
        sky there); True when it had any. The user can still change them."""
        found = project_catalogues(project_folder)
        if "simbad" in found:
            self.catalogue.setText(str(found["simbad"]))
            self.set_source("file")
        if "h16" in found:
            self.h16.setText(str(found["h16"]))
            self.h16_enabled.setChecked(True)
        return bool(found)

    def _source_changed(self, *_):
        key = self.source.currentData()
        self.catalogue.setVisible(key == "file")
        self.browse_button.setVisible(key == "file")
        self.tap_url.setVisible(key == "url")

    def _h16_toggled(self, on: bool) -> None:
        self.h16.setEnabled(on)
        self.h16_browse_button.setEnabled(on)

    def settings(self) -> CrossmatchSettings:
        return CrossmatchSettings(
            simbad_source=self.source.currentData(), simbad_file=self.catalogue.text().strip(),
            tap_url=self.tap_url.text().strip(),
            h16_file=self.h16.text().strip() if self.h16_enabled.isChecked() else "",
            radius=self.radius.value(), h16_radius=self.h16_radius.value(),
            scan=self.scan_enabled.isChecked())

    def choose_catalogue(self) -> None:
        self._choose_file(self.catalogue, "SIMBAD-like catalogue to cross-match",
                          "Catalogues (*.vot *.xml *.fits *.fit *.csv *.ecsv);;All files (*)")

    def choose_h16(self) -> None:
        self._choose_file(self.h16, "H16 table (Hou et al. 2016)",
                          "Catalogues (*.csv *.vot *.xml *.fits *.fit *.ecsv);;All files (*)")

    def _choose_file(self, field: QLineEdit, title: str, filters: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, title, field.text(), filters)
        if path:
            field.setText(path)

    # -- the match -------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self.jobs.is_running

    def run(self) -> JobWorker | None:
        """Start the cross-match job; None (and `failed`) when it cannot start."""
        if self.is_running:
            return None
        settings = self.settings()
        if settings.simbad_source == "file" and not settings.simbad_file:
            self._fail("choose a SIMBAD catalogue file first")
            return None
        if settings.simbad_source == "url" and not settings.tap_url:
            self._fail("give the URL of a TAP service first")
            return None
        if self.h16_enabled.isChecked() and not settings.h16_file:
            self._fail("choose an H16 file first (or untick H16)")
            return None
        project = self.project_getter()
        candidates = None
        if project is None:
            candidates = dict(self.candidates() or {})
            if not candidates or len(candidates.get("ra", ())) == 0:
                self._fail("no candidates to cross-match yet (score the pool first)")
                return None
        # taken before the job reads the candidates: a change while it runs makes it stale
        self._run_basis = self.basis_getter() if project is not None else None
        worker = self.jobs.start(
            "crossmatch", lambda token: crossmatch_job(token, settings, project, candidates))
        # every ending is handled at `finished`, when the worker no longer counts as running:
        # a slot of `finished`/`failed` may start the next run at once
        worker.finished.connect(lambda: self._match_ended(worker))
        what = "the project's candidates and rejected spectra" if project is not None else \
            f"{len(candidates['ra'])} candidates"
        self._set_status(f"cross-matching {what}…")
        self._busy()
        return worker

    def cancel(self) -> None:
        self.jobs.cancel()

    def _busy(self) -> None:
        self.run_button.setEnabled(False)
        self.export_button.setEnabled(False)
        self.cancel_button.setEnabled(True)

    def _idle(self) -> None:
        if self.is_running:
            return
        self.run_button.setEnabled(True)
        self.export_button.setEnabled(self.result is not None and self.stale is None)
        self.cancel_button.setEnabled(False)

    # -- what the result describes ---------------------------------------------------------------
    def clear(self, why: str = "") -> None:
        """Forget the result on screen (another project is open): none of it stays shown, and
        Export has nothing to write. `why` goes to the status line."""
        self.result = self.result_basis = self._run_basis = None
        self.stale = None
        self.table_choice.blockSignals(True)
        self.table_choice.clear()
        self.table_choice.blockSignals(False)
        self.model.set_table({c: np.array([]) for c in EMPTY_COLUMNS}, columns=EMPTY_COLUMNS)
        self.groups_label.setText("")
        self.plot.clear_scan()
        self.progress.reset()
        self._set_status(why)
        self._idle()

    def check_stale(self) -> str | None:
        """Mark the shown result stale when the project's candidates are no longer the ones it
        was made from (a new scoring, the finish, a label); returns why, or None. A stale result
        stays on screen, said to be stale, and is not exported: its tables would carry the
        provenance of candidates the project no longer has."""
        if self.result is None or self.result_basis is None or self.stale is not None:
            return self.stale
        now = self.basis_getter()
        if now == self.result_basis:
            return None
        then_scores, now_scores = _scores_name(self.result_basis), _scores_name(now)
        if then_scores != now_scores:
            change = f"the candidates now come from the {now_scores} scores"
        else:
            change = "labels changed since"
        self.stale = (f"STALE: these results are of the {then_scores} candidates; {change}. "
                      "Run the cross-match again (Export is off until then).")
        self._set_status(self.stale)
        self._idle()
        return self.stale

    def _set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color:#e06c00; font-weight:bold" if self.stale else "")

    def _match_ended(self, worker: JobWorker) -> None:
        if worker.was_aborted:
            self._idle()
            self._aborted()
        elif worker.error is not None:
            self._idle()
            self._fail(error_text(worker.error))
        else:
            self.result_basis, self._run_basis = self._run_basis, None
            self.stale = None
            self._show(worker.result)
            self._idle()
            self.finished.emit(worker.result)
            self.check_stale()            # a step or a label may have changed them meanwhile

    def _show(self, run: CrossmatchRun) -> None:
        self.result = run
        counts = run.counts
        previous = self.table_choice.currentData() or ALL
        self.table_choice.blockSignals(True)
        self.table_choice.clear()
        self.table_choice.addItem(f"all ({len(run.result.table)})", ALL)
        for name in xm.TABLE_NAMES:
            self.table_choice.addItem(f"{name} ({counts[name]})", name)
            self.table_choice.setItemData(self.table_choice.count() - 1, xm.TABLE_TITLES[name],
                                          Qt.ItemDataRole.ToolTipRole)
        self.table_choice.setCurrentIndex(max(0, self.table_choice.findData(previous)))
        self.table_choice.blockSignals(False)
        self._show_table()
        p = run.result.params
        self.groups_label.setText(describe_groups(run.result.groups,
                                                  p.get("group_radius_arcsec",
                                                        xm.DEFAULT_GROUP_RADIUS)))
        if run.scan is not None:
            self.plot.set_scan(run.scan, run.settings.radius)
        else:
            self.plot.clear_scan()
        h16 = (f", {p['h16_catalogue']} within {p['h16_radius_arcsec']:g}″"
               if p["h16_catalogue"] != "none" else ", no H16")
        self._set_status(
            f"{p['n_candidates']} candidates and {p['n_rejected']} rejected spectra matched "
            f"with {p['simbad_catalogue']} within {p['simbad_radius_arcsec']:g}″{h16}: "
            + ", ".join(f"{name} {counts[name]}" for name in xm.TABLE_NAMES))

    def _show_table(self) -> None:
        if self.result is None:
            return
        view = self.result.views[self.table_choice.currentData() or ALL]
        self.model.set_table(view, columns=list(view))

    def _current_row_changed(self, current, _previous) -> None:
        if not current.isValid() or "pool_index" not in self.model.columns:
            return
        row = self.proxy.mapToSource(current).row()
        self.row_selected.emit(int(self.model.table["pool_index"][row]))

    def _row_double_clicked(self, index) -> None:
        row = self.proxy.mapToSource(index).row()
        if row >= 0 and "pool_index" in self.model.columns:
            self.row_activated.emit(int(self.model.table["pool_index"][row]))

    def current_pool_index(self) -> int | None:
        index = self.table.currentIndex()
        if not index.isValid() or "pool_index" not in self.model.columns:
            return None
        return int(self.model.table["pool_index"][self.proxy.mapToSource(index).row()])

    # -- export ------------------------------------------------------------------------------------
    def choose_export_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the cross-match tables")
        if folder:
            self.export_tables(Path(folder))

    def export_tables(self, folder, formats=("votable", "csv")) -> JobWorker | None:
        """Write the tables (write_tables) and the radius scan into `folder` on a worker; a
        filter in the box leaves in each table only the rows it keeps."""
        if self.is_running:
            return None
        if self.result is None:
            self._fail("nothing to export yet: run the cross-match first")
            return None
        if self.check_stale() is not None:
            self._fail(f"not exported: {self.stale}")
            return None
        run, folder, formats = self.result, Path(folder), tuple(formats)
        shown = self.proxy.table_filter()
        where = "" if shown.is_empty else shown.expression
        worker = self.jobs.start("crossmatch export", call_job(
            "export", lambda: export_job(run, folder, formats, where)))
        worker.finished.connect(lambda: self._export_ended(worker, folder, shown.describe()))
        self._set_status(f"writing the tables to {folder}…")
        self._busy()
        return worker

    def _export_ended(self, worker: JobWorker, folder: Path, selection: str = "") -> None:
        self._idle()
        if worker.was_aborted:
            self._aborted()
        elif worker.error is not None:
            self._fail(f"export to {folder}: {error_text(worker.error)}")
        else:
            shown = f" ({selection})" if selection else ""
            self._set_status(f"wrote {len(worker.result)} files to {folder}{shown}")
            self.exported.emit(list(worker.result))

    # -- endings -----------------------------------------------------------------------------------
    def _fail(self, text: str) -> None:
        self._set_status(f"cross-match: {text}")
        self.failed.emit(text)

    def _aborted(self) -> None:
        self._set_status("cross-match: cancelled")
        self.cancelled.emit()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        self.jobs.shutdown(timeout_s)
