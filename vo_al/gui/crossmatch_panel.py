"""Cross-match panel: the candidates against a local catalogue file within a radius (5-300″),
the nearest object per candidate in a table, and the radius scan as a plot.

The match (reading the catalogue, the k-d tree, the scan) runs as a job on a `JobWorker`,
never on the GUI thread; the widgets only show its result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit,
                             QPushButton, QTableView, QVBoxLayout, QWidget)

from vo_al.core.crossmatch import (DEFAULT_SIMBAD_RADIUS, MAX_RADIUS, MIN_RADIUS, SCAN_RADII,
                                   LocalCatalogue, check_radius, crossmatch, radius_scan)

from .dashboard import ColumnTableModel
from .workers import JobWorker, call_job

CANDIDATE_COLUMNS = ("pool_index", "name", "designation", "ra", "dec")
MATCH_PREFIX = "cat"


def match_job(candidates: dict, catalogue_path: Path, radius: float):
    """The job's body (worker thread): {'table': columns, 'scan': astropy Table, ...}."""
    radius = check_radius(radius)
    catalogue = LocalCatalogue.from_file(catalogue_path)
    ra = np.asarray(candidates["ra"], float)
    dec = np.asarray(candidates["dec"], float)
    result = crossmatch(catalogue, ra, dec, radius)
    table = {c: np.asarray(candidates[c]) for c in CANDIDATE_COLUMNS if c in candidates}
    table.update(result.columns(MATCH_PREFIX))
    radii = sorted(set(SCAN_RADII) | {radius})
    return {"table": table, "scan": radius_scan(catalogue, ra, dec, radii), "radius": radius,
            "catalogue": catalogue.name, "n_matched": int(result.matched.sum()),
            "n_candidates": int(ra.size)}


class RadiusScanPlot(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent, title="radius scan")
        self.setLabel("bottom", "radius (arcsec)")
        self.setLabel("left", "count")
        self.addLegend()
        self.matched_curve = self.plot(pen="g", symbol="o", name="candidates with a match")
        self.pairs_curve = self.plot(pen=pg.mkPen("y", style=Qt.PenStyle.DashLine), symbol="s",
                                     name="objects within the radius")
        self.chosen_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("r"), label="radius",
                                           labelOpts={"position": 0.9})
        self.addItem(self.chosen_line)

    def set_scan(self, scan, chosen: float) -> None:
        r = np.asarray(scan["radius"], float)
        self.matched_curve.setData(r, np.asarray(scan["n_matched"], float))
        self.pairs_curve.setData(r, np.asarray(scan["n_pairs"], float))
        self.chosen_line.setValue(chosen)


class CrossmatchPanel(QWidget):
    finished = pyqtSignal(object)        # the job's result dict, after the widgets show it
    failed = pyqtSignal(str)

    def __init__(self, candidates: Callable[[], dict] | None = None, parent=None):
        super().__init__(parent)
        self.candidates = candidates or (lambda: {})
        self.worker: JobWorker | None = None
        self.result: dict | None = None
        self.radius = QDoubleSpinBox()
        self.radius.setRange(MIN_RADIUS, MAX_RADIUS)
        self.radius.setDecimals(1)
        self.radius.setSuffix(" ″")
        self.radius.setValue(DEFAULT_SIMBAD_RADIUS)
        self.catalogue = QLineEdit()
        self.catalogue.setPlaceholderText("catalogue file (VOTable, FITS, CSV, ECSV)")
        self.browse_button = QPushButton("Browse…")
        self.run_button = QPushButton("Run")
        self.status = QLabel("")
        self.model = ColumnTableModel(columns=CANDIDATE_COLUMNS)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.plot = RadiusScanPlot()
        row = QHBoxLayout()
        row.addWidget(QLabel("radius"))
        row.addWidget(self.radius)
        row.addWidget(self.catalogue, 1)
        row.addWidget(self.browse_button)
        row.addWidget(self.run_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.plot, 1)
        self.browse_button.clicked.connect(self.choose_catalogue)
        self.run_button.clicked.connect(self.run)

    def choose_catalogue(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Catalogue to cross-match", "",
            "Catalogues (*.vot *.xml *.fits *.fit *.csv *.ecsv);;All files (*)")
        if path:
            self.catalogue.setText(path)

    @property
    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running

    def run(self) -> JobWorker | None:
        if self.is_running:
            return None
        path = self.catalogue.text().strip()
        if not path:
            self._fail("choose a catalogue file first")
            return None
        candidates = dict(self.candidates() or {})
        if not candidates or "ra" not in candidates or len(candidates["ra"]) == 0:
            self._fail("no candidates to cross-match yet (score the pool first)")
            return None
        radius = self.radius.value()
        if self.worker is not None:
            self.worker.deleteLater()
        worker = JobWorker(call_job("crossmatch",
                                    lambda: match_job(candidates, Path(path), radius)),
                           name="crossmatch", parent=self)
        worker.returned.connect(self._show)
        worker.errored.connect(lambda exc: self._fail(f"{type(exc).__name__}: {exc}"))
        worker.finished.connect(lambda: self.run_button.setEnabled(True))
        self.worker = worker
        self.run_button.setEnabled(False)
        self.status.setText(f"cross-matching {len(candidates['ra'])} candidates within "
                            f"{radius:g}″…")
        worker.start()
        return worker

    def _show(self, result: dict) -> None:
        self.result = result
        self.model.set_table(result["table"], columns=list(result["table"]))
        self.plot.set_scan(result["scan"], result["radius"])
        self.status.setText(f"{result['n_matched']} of {result['n_candidates']} candidates "
                            f"matched in {result['catalogue']} within {result['radius']:g}″")
        self.finished.emit(result)

    def _fail(self, text: str) -> None:
        self.status.setText(f"cross-match: {text}")
        self.failed.emit(text)

    def shutdown(self, timeout_s: float = 30.0) -> None:
        if self.is_running:
            self.worker.cancel()
            self.worker.wait(timeout_s)
