"""Dashboard: precision estimate per iteration (with its lower bound and the threshold) and the
candidates table (sortable, filterable)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PyQt6.QtWidgets import QLabel, QLineEdit, QTableView, QVBoxLayout, QWidget

from vo_al.core.candidates import COLUMNS, candidate_table
from vo_al.core.errors import ProjectError


class ColumnTableModel(QAbstractTableModel):
    """A read-only Qt model over a column-oriented table {name: array}."""

    def __init__(self, table: dict | None = None, columns=COLUMNS, parent=None):
        super().__init__(parent)
        self.columns = list(columns)
        self.table = table or {c: np.array([]) for c in self.columns}

    def set_table(self, table: dict, columns=None) -> None:
        self.beginResetModel()
        if columns is not None:
            self.columns = list(columns)
        self.table = table
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.table[self.columns[0]])

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        value = self.table[self.columns[index.column()]][index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            if isinstance(value, (float, np.floating)):
                return f"{value:.4g}"
            return str(value)
        if role == Qt.ItemDataRole.UserRole:       # the raw value, for numeric sorting
            return value.item() if isinstance(value, np.generic) else value
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section]
        return None


class PrecisionPlot(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent, title="precision of the predicted targets")
        self.setLabel("bottom", "iteration")
        self.setLabel("left", "precision")
        self.setYRange(0, 1.05)
        self.getAxis("bottom").enableAutoSIPrefix(False)
        self.getAxis("bottom").setTickSpacing(1, 1)
        self.addLegend()
        self.precision_curve = self.plot(pen="g", symbol="o", name="precision")
        self.lower_curve = self.plot(pen=pg.mkPen("y", style=Qt.PenStyle.DashLine), symbol="t",
                                     name="lower bound")
        self.threshold_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("r"), label="threshold",
                                              labelOpts={"position": 0.95})
        self.addItem(self.threshold_line)

    def set_estimates(self, estimates: list[dict], threshold: float) -> None:
        rows = [e for e in estimates if e.get("sample_size")]
        it = np.array([e["iteration"] for e in rows], dtype=float)
        self.precision_curve.setData(it, np.array([e["precision"] for e in rows], dtype=float))
        self.lower_curve.setData(it, np.array([e["lower_bound"] for e in rows], dtype=float))
        self.threshold_line.setValue(threshold)
        if len(it):
            self.setXRange(it.min() - 0.5, it.max() + 0.5)


class Dashboard(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = PrecisionPlot()
        self.summary = QLabel("")
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter candidates (any column)")
        self.model = ColumnTableModel()
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.summary)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 2)

    def refresh(self, session) -> None:
        if session is None:
            return
        estimates = session.estimates()
        self.plot.set_estimates(estimates, session.method.precision_threshold)
        if estimates:
            e = estimates[-1]
            self.summary.setText(
                f"iteration {e['iteration']}: precision {e['precision']:.3f} "
                f"(≥ {e['lower_bound']:.3f} at {e['confidence']:.0%}) on {e['sample_size']} "
                f"spectra; threshold {session.method.precision_threshold:.2f}, "
                f"hits {session.threshold_hits()}/{session.method.threshold_hits}")
        try:
            proba = session.latest_probabilities()
        except ProjectError:
            return
        self.model.set_table(candidate_table(session.project.pool, proba,
                                             session.store.oracle_labels()))
